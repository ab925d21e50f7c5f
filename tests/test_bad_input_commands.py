"""Bad input to every command but `run` (tests/test_cli_bad_input.py has run's table): one line on
stderr naming the culprit, exit 2, no traceback, and the files already there left as they were."""

import json

import pytest

PROMPTS = '{"instruction": "hi"}\n'
UF = json.dumps({"instruction": "q", "completions": [
    {"model": "a", "response": "r1", "annotations": {"helpfulness": {"Rating": "5", "Rationale": "ok"}}},
    {"model": "b", "response": "r2", "annotations": {"helpfulness": {"Rating": "2", "Rationale": "meh"}}}]}) + "\n"
FILES = {"p.jsonl": PROMPTS, "uf.jsonl": UF, "runx/manifest.json": "{bad", "curated/data.parquet": "not parquet",
         "bad.yaml": "steps: [\n", "mine/keep.txt": "mine"}

CASES = [  # (id, argv, culprit)
    ("mt-bench-no-questions", "eval mt-bench --model embedded --judge embedded --questions nope.jsonl --out o", "--questions nope.jsonl"),
    ("mt-bench-not-questions", "eval mt-bench --model embedded --judge embedded --questions p.jsonl --out o", "question_id"),
    ("mt-bench-bad-ids", "eval mt-bench --model embedded --judge embedded --questions p.jsonl --question-ids x --out o", "p.jsonl"),
    ("winrate-no-annotations", "eval winrate --annotations nope.json", "--annotations nope.json"),
    ("winrate-not-annotations", "eval winrate --annotations p.jsonl", "output_1"),
    ("winrate-no-baseline-file", "eval winrate --instructions p.jsonl --model embedded --baseline nope.json --judge embedded --out o", "--baseline nope.json"),
    ("winrate-bad-judge-spec", "eval winrate --instructions p.jsonl --model embedded --baseline embedded --judge gpt-4 --out o", "gpt-4"),
    ("compare-no-folder", "eval compare nope1 nope2 --out o", "nope1"),
    ("harness-no-model", "eval harness --model /nope --tasks arc_easy", "--model /nope"),
    ("report-not-curate", "report p.jsonl", "p.jsonl"),
    ("report-no-folder", "report nope", "nope"),
    ("show-no-folder", "show nope", "nope"),
    ("show-corrupt-manifest", "show runx", "runx/manifest.json"),
    ("show-a-file", "show p.jsonl", "p.jsonl"),
    ("audit-no-input", "curate audit nope.jsonl --out o", "nope.jsonl"),
    ("audit-unknown-shape", "curate audit p.jsonl --out o", "p.jsonl"),
    ("audit-bad-parquet", "curate audit curated/data.parquet --out o", "data.parquet"),
    ("binarize-bad-strategy", "curate binarize uf.jsonl --out o --strategy nope", "nope"),
    ("decontaminate-no-benchmark", "curate decontaminate uf.jsonl --out o --benchmark nope.jsonl", "nope.jsonl"),
    ("audit-foreign-out", "curate audit uf.jsonl --out mine", "mine"),
    ("train-unknown-recipe", "train dpo --recipe nope", "recipe 'nope'"),
    ("train-unknown-key", "train dpo --recipe quickstart-dpo --set nope=1", "nope"),
    ("train-no-data", "train dpo --recipe quickstart-dpo --data nope.jsonl --out o", "--data"),
    ("train-foreign-out", "train dpo --recipe quickstart-dpo --out mine", "--out"),
    ("run-bad-yaml", "run bad.yaml", "bad.yaml"),
    ("recipes-extra-arg", "recipes nope", "nope"),
]


def _snapshot(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case_id, argv, culprit", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_named_line_and_exit_2(cli, tmp_path, case_id, argv, culprit):
    for name, text in FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    before = _snapshot(tmp_path)
    result = cli(*argv.split(), cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and len(lines) == 1, result.stderr
    assert result.returncode == 2 and lines[0].startswith("error: ") and culprit in lines[0], lines[0]
    assert _snapshot(tmp_path) == before
    assert not (tmp_path / "o").exists()


def test_the_tables_cover_every_command():
    commands = {c[1].split()[0] if c[1].split()[0] not in ("eval", "curate", "train") else " ".join(c[1].split()[:2])
                for c in CASES}
    assert {"eval mt-bench", "eval winrate", "eval compare", "eval harness", "report", "show", "curate audit",
            "curate binarize", "curate decontaminate", "train dpo", "run"} <= commands
    assert len(CASES) >= 25
