"""Per-step progress bars (rows, rows/s, ETA, failures) and the per-step stats record."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


@dataclass
class StepStats:
    rows_in: int = 0
    rows_out: int = 0
    rows_failed: int = 0  # rows that failed in this step
    rows_cached: int = 0  # rows loaded from a committed batch instead of computed
    batches: int = 0
    # Wall time while at least one of this step's batches was computing: batches in flight
    # together count once (steps still overlap one another).
    seconds: float = 0.0
    commit_seconds: float = 0.0  # time spent committing them to the run folder
    tokens: int = 0
    started: float = field(default_factory=time.perf_counter, repr=False)
    active: int = field(default=0, repr=False)
    busy_since: float = field(default=0.0, repr=False)

    def begin(self) -> None:
        if self.active == 0:
            self.busy_since = time.perf_counter()
        self.active += 1

    def end(self) -> None:
        self.active -= 1
        if self.active == 0:
            self.seconds += time.perf_counter() - self.busy_since

    def record(self):
        data = asdict(self)
        for internal in ("started", "active", "busy_since"):
            data.pop(internal)
        data["seconds"] = round(self.seconds, 3)
        data["commit_seconds"] = round(self.commit_seconds, 3)
        data["rows_per_s"] = round(self.rows_in / self.seconds, 1) if self.seconds > 0 else None
        return data


class RateColumn(TextColumn):
    def __init__(self):
        super().__init__("")

    def render(self, task):
        speed = task.finished_speed or task.speed
        failed = task.fields.get("failed", 0)
        text = f"{speed:,.0f} rows/s" if speed else "- rows/s"
        return text + (f"  [red]{failed} failed[/red]" if failed else "")


class StepProgress:
    """One bar per step; silent when the console is not a terminal (CI logs, pipes)."""

    def __init__(self, step_names: list[str], total: int | None, enabled: bool = True, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.enabled = enabled and self.console.is_terminal
        self.progress = Progress(
            TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(), RateColumn(), TimeRemainingColumn(),
            console=self.console, disable=not self.enabled, transient=False,
        )
        self.tasks = {name: self.progress.add_task(name[:24], total=total, failed=0) for name in step_names}

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)

    def advance(self, step: str, rows: int, failed_total: int) -> None:
        self.progress.update(self.tasks[step], advance=rows, failed=failed_total)
