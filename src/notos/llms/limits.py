"""Pacing for remote LLM calls: retry delays, Retry-After, a requests-per-minute gate."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time

RETRIABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 521, 522, 524, 529})
MAX_RETRY_AFTER = 300.0  # a server asking for more than five minutes is treated as asking for five


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random = random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)].
    Full jitter spreads a burst of failed requests out instead of retrying them in lockstep."""
    return rng.uniform(0, min(cap, base * (2 ** attempt)))


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), or None when absent/garbled."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class RequestPacer:
    """Spaces request starts at least 60/rpm seconds apart, and holds every start while the
    server has asked us to back off (a 429 with Retry-After pauses the whole client, not just
    the one request that got it: the others would only earn 429s of their own)."""

    def __init__(self, rpm: float | None = None):
        self.interval = 60.0 / rpm if rpm else 0.0
        self.next_start = 0.0
        self.resume_at = 0.0

    def pause_for(self, seconds: float) -> None:
        self.resume_at = max(self.resume_at, time.monotonic() + seconds)

    async def wait_turn(self) -> None:
        if not self.interval and not self.resume_at:  # no pace asked and no pause ever: no clock to read
            return
        while True:
            now = time.monotonic()
            if now < self.resume_at:
                await asyncio.sleep(self.resume_at - now)
                continue
            slot = max(now, self.next_start)
            self.next_start = slot + self.interval  # reserve the slot before sleeping
            if slot > now:
                await asyncio.sleep(slot - now)
            if time.monotonic() >= self.resume_at:  # no pause began while we slept
                return
