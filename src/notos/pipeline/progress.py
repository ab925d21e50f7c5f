"""Per-step progress bars (rows, rows/s, ETA, failures) and the per-step stats record.

`RunStats` is the only thing that changes a run's numbers: executors and the shared batch
code call its methods, so what each counter means is written down once, here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
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
    rows_unparsed: int = 0  # rows computed here with an answer the step could not read
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


class RunStats:
    """A run's counters, one `StepStats` per step, mirrored on the progress bars if shown.

    rows_in      rows a step computed on in this run (not the rows it loaded or kept)
    rows_out     rows a step passed on (or, for a leaf, wrote): computed or loaded
    rows_failed  rows that failed in this step (rows failed upstream pass through uncounted)
    rows_cached  rows loaded from a committed batch, or kept from one by `retry_failed`
    rows_unparsed  rows computed here whose answer the step could not read (not failed: the
                 row goes on with the reason in its `*_error` column; `--retry-unparsed` asks again)
    batches      batches a step passed on with rows
    """

    def __init__(self, step_names: list[str]):
        self.steps = {name: StepStats() for name in step_names}
        self.bars: StepProgress | None = None

    def computed(self, step: str, rows_in: int, failed: int = 0, tokens: int = 0, unparsed: int = 0) -> None:
        stats = self.steps[step]
        stats.rows_in += rows_in
        stats.rows_failed += failed
        stats.tokens += tokens
        stats.rows_unparsed += unparsed

    def kept(self, step: str, rows: int) -> None:
        """Rows a retried batch keeps from its committed version instead of computing again."""
        self.steps[step].rows_cached += rows

    @contextmanager
    def busy(self, step: str) -> Iterator[None]:
        """Time a step's computation; overlapping batches of one step count once."""
        stats = self.steps[step]
        stats.begin()
        try:
            yield
        finally:
            stats.end()

    def committed(self, step: str, seconds: float) -> None:
        self.steps[step].commit_seconds += seconds

    def passed(self, step: str, rows: int, cached: bool = False) -> None:
        """A batch leaves the step: computed here, or loaded (`cached`) from an earlier run."""
        stats = self.steps[step]
        stats.rows_out += rows
        stats.batches += 1
        if cached:
            stats.rows_cached += rows
        if self.bars is not None:
            self.bars.advance(step, rows, stats.rows_failed)

    def record(self) -> dict[str, dict]:
        return {name: stats.record() for name, stats in self.steps.items()}


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
        width = min(32, max((len(n) for n in step_names), default=8))  # names whole, up to 32 characters
        self.progress = Progress(
            TextColumn(f"{{task.description:<{width}}}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
            TimeRemainingColumn(), console=self.console, disable=not self.enabled, transient=False,
        )
        self.tasks = {name: self.progress.add_task(name[:width], total=total, failed=0) for name in step_names}

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        if exc[0] is None:  # a finished run: each bar ends at what its step received (a routed
            for task in self.progress.tasks:  # branch gets a share of the rows, not all of them)
                self.progress.update(task.id, total=task.completed)
        self.progress.__exit__(*exc)

    def advance(self, step: str, rows: int, failed_total: int) -> None:
        self.progress.update(self.tasks[step], advance=rows, failed=failed_total)
