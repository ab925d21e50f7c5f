"""One queue in front of one loaded model: every step that names the model (three generators and
a judge, say) hands its rows here, and one worker thread decodes whatever is waiting as one
batch, between log-prob jobs.

Steps share one backend instance per spec (`spec.get_llm`), so concurrent `generate` calls from
several steps meet in this queue: a row waits for a free place in the running batch (up to
`max_rows`), not for another step's whole call to finish. Scoring jobs (a judge prompt, one
forward pass) run one per decode step, so a judge is never starved by long generations.

Rows come with a decoder (the model to run them on: the backend sends greedy rows to its
float32 model, sampled ones to its bfloat16 copy); each decoder has its own running batch, a
lane, and the lanes take turns step by step.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

from notos.llms.decode import Batch, Row, can_join, choose_tokens


class ModelQueue:
    def __init__(self, name: str, max_rows: int):
        self.max_rows = max_rows
        self._lanes: dict[int, Lane] = {}  # by id of the decoder
        self._jobs: deque[tuple] = deque()
        self._guard = threading.Lock()  # guards the lanes' waiting rows, the jobs and `_draining`
        self._draining = False
        # One worker of its own: the model computes one thing at a time anyway, and waiting
        # work must not fill the event loop's default pool that commits and reads use.
        self._worker = ThreadPoolExecutor(1, thread_name_prefix=f"notos-{name[:20]}")

    def submit_rows(self, rows: list[Row], decoder) -> None:
        """Queue rows for decoding; each row's future gets the row back, finished."""
        with self._guard:
            lane = self._lanes.setdefault(id(decoder), Lane(decoder))
            lane.waiting.extend(rows)
            self._start()

    def submit_job(self, fn, *args) -> Future:
        """Run fn(*args) on the model's thread, between two decode steps."""
        future: Future = Future()
        with self._guard:
            self._jobs.append((future, fn, args))
            self._start()
        return future

    def _start(self) -> None:
        if not self._draining:
            self._draining = True
            self._worker.submit(self._drain)

    def _drain(self) -> None:
        while True:
            with self._guard:
                job = self._jobs.popleft() if self._jobs else None
                busy = [lane for lane in self._lanes.values() if lane.waiting or lane.batch]
                if job is None and not busy:
                    self._draining = False
                    return
            if job is not None:
                _run_job(*job)
            for lane in busy:
                try:
                    self._decode_once(lane)
                except BaseException as exc:  # noqa: BLE001 - the rows learn why; the queue goes on
                    lane.fail(exc)

    def _take_waiting(self, lane: Lane, room: int) -> list[Row]:
        taken = []
        with self._guard:
            while lane.waiting and len(taken) < room:
                row = lane.waiting.popleft()
                if not row.future.cancelled():
                    taken.append(row)
        return taken

    def _decode_once(self, lane: Lane) -> None:
        decoder = lane.decoder
        if lane.batch is None:
            lane.batch = Batch(decoder.model, decoder.pad_id, decoder.cache_name)
        batch = lane.batch
        # New rows join a running batch only where its cache can be stacked; else they wait.
        room = self.max_rows - len(batch) if (not len(batch) or can_join(batch.cache)) else 0
        fresh = self._take_waiting(lane, room) if room > 0 else []
        with decoder.lock, _inference():
            if fresh:  # their first token now; everyone steps together from the next call
                admitted = self._admit(batch, fresh)
                if admitted:
                    rows = [row for row, _ in admitted]
                    self._append(decoder, rows, *choose_tokens(_stack([logits for _, logits in admitted]), rows))
            elif len(batch):
                logits = batch.step([row.tokens[-1] for row in batch.rows])
                self._append(decoder, batch.rows, *choose_tokens(logits, batch.rows))
            batch.keep([k for k, row in enumerate(batch.rows) if not row.future.done()])
        if not len(batch):
            lane.batch = None

    def _admit(self, batch: Batch, rows: list[Row]) -> list:
        """Prefill rows together; where that fails, one at a time so only the bad row fails."""
        try:
            return batch.admit(rows)
        except Exception as exc:  # noqa: BLE001
            if len(rows) == 1:
                rows[0].future.set_exception(exc)
                return []
            admitted = []
            for row in rows:
                admitted += self._admit(batch, [row])
            return admitted

    @staticmethod
    def _append(decoder, rows: list[Row], tokens: list[int], logprobs) -> None:
        for k, (row, token) in enumerate(zip(rows, tokens)):
            if row.future.done():
                continue
            if token in decoder.eos:
                row.ended_by_eos = True
            else:
                row.tokens.append(token)
                if logprobs is not None:
                    row.logprobs.append(logprobs[k])
            stop = row.params.stop and _has_stop(decoder.tokenizer, row)
            if row.ended_by_eos or stop or len(row.tokens) >= row.params.max_new_tokens:
                row.future.set_result(row)


class Lane:
    """The rows of one decoder: those waiting for a place, and the running batch."""

    def __init__(self, decoder):
        self.decoder = decoder
        self.waiting: deque[Row] = deque()
        self.batch: Batch | None = None

    def fail(self, exc: BaseException) -> None:
        for row in self.batch.rows if self.batch else []:
            if not row.future.done():
                row.future.set_exception(exc)
        self.batch = None


def _inference():
    import torch

    return torch.inference_mode()


def _run_job(future: Future, fn, args) -> None:
    if future.cancelled():
        return
    try:
        future.set_result(fn(*args))
    except BaseException as exc:  # noqa: BLE001 - handed to the caller
        future.set_exception(exc)


def _has_stop(tokenizer, row: Row) -> bool:
    text = tokenizer.decode(row.tokens, skip_special_tokens=True)
    return any(s and s in text for s in row.params.stop)


def _stack(rows_of_logits):
    import torch

    return torch.stack(list(rows_of_logits))
