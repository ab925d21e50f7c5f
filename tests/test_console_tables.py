"""The run's stats table at 80 columns: step names and counts are never cut; columns give way."""

from rich.console import Console

from notos.report.console import stats_table, unread_warnings


def render(stats, width):
    console = Console(width=width, record=True, color_system=None)
    console.print(stats_table(stats, "run finished", width=width))
    return console.export_text()


STEP = {"rows_in": 123_456, "rows_out": 123_400, "rows_failed": 56, "rows_unparsed": 7, "rows_cached": 100,
        "seconds": 1234.5, "tokens": 12_345_678}
NAMES = ["prompts", "answer_helpful", "answer_honest", "answer_terse", "rate_with_a_longer_name"]


def test_names_and_counts_survive_80_columns():
    text = render({n: dict(STEP) for n in NAMES} | {"_totals": {}}, 80)
    assert all(len(line) <= 80 for line in text.splitlines())
    assert all(name in text for name in NAMES) and "…" not in text
    assert "123,456" in text and "56" in text and "12.3M" in text and "_totals" not in text


def test_a_wide_terminal_shows_every_column():
    text = render({n: dict(STEP) for n in NAMES}, 140)
    for header in ("in", "out", "failed", "unread", "cached", "rows/s", "tokens"):
        assert f" {header} " in text
    assert "123,400" in text and "1234.5" in text


def test_a_step_that_reads_few_answers_is_called_out():
    stats = {"rate": {**STEP, "rows_in": 10, "rows_failed": 0, "rows_unparsed": 9},
             "critique": {**STEP, "rows_in": 10, "rows_failed": 0, "rows_unparsed": 1}}
    lines = unread_warnings(stats)
    assert len(lines) == 1 and "'rate'" in lines[0] and "9 of 10" in lines[0] and "--retry-unparsed" in lines[0]


def test_bars_of_a_finished_run_end_at_what_each_step_received():
    import io

    from notos.pipeline.progress import StepProgress

    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    with StepProgress(["prompts", "a_routed_branch_name"], total=40, console=console) as bars:
        bars.advance("prompts", 40, 0)
        bars.advance("a_routed_branch_name", 24, 0)  # a branch that got 24 of the 40 rows
    totals = {t.description: (t.completed, t.total) for t in bars.progress.tasks}
    assert totals == {"prompts": (40, 40), "a_routed_branch_name": (24, 24)}
    assert "24/24" in console.file.getvalue()


def test_show_reads_curate_train_and_eval_folders(cli, tmp_path):
    import json

    folders = {"cur": ("stats.json", {"command": "binarize", "pairs": 1234, "strategy": {"name": "mean", "ties": 3}}),
               "trn": ("notos-train.json", {"stage": "dpo", "metrics": {"train_loss": 0.6931}}),
               "evl": ("summary.json", {"win_rate": 0.5625, "n": 16, "per_category": [{"c": 1}] * 8})}
    for name, (marker, content) in folders.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / marker).write_text(json.dumps(content))
    (tmp_path / "cur" / "report.html").write_text("<html></html>")
    shown = {name: cli("show", tmp_path / name) for name in folders}
    assert all(r.returncode == 0 for r in shown.values()), {k: r.stderr for k, r in shown.items()}
    assert "curation output" in shown["cur"].stdout and "pairs: 1234" in shown["cur"].stdout
    assert "strategy.name: mean" in shown["cur"].stdout and "report.html" in shown["cur"].stdout
    assert "training output" in shown["trn"].stdout and "metrics.train_loss: 0.6931" in shown["trn"].stdout
    assert "win_rate: 0.5625" in shown["evl"].stdout and "per_category: 8 entries" in shown["evl"].stdout
    (tmp_path / "empty").mkdir()
    nothing = cli("show", tmp_path / "empty")
    assert nothing.returncode == 2 and "not a notos output folder" in nothing.stderr
