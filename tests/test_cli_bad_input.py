"""Bad input at the command line: one line on stderr, no traceback, a non-zero exit code
(2: a user error), a message that names the culprit, and nothing already written is lost.

Each case writes its own files under tmp_path and runs `notos run ...` through `notos.cli.main`,
as a user would (in this process: the `cli` fixture). Errors that fire while the pipeline is checked are run with `--dry-run` (fast);
`test_validation_errors_fire_without_dry_run` shows the same errors stop a real run too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

GOOD_ROWS = [
    {"id": "r1", "instruction": "Explain why the sky is blue.", "category": "science"},
    {"id": "r2", "instruction": "Write a haiku about rain.", "category": "creative"},
    {"id": "r3", "instruction": "What is a Python tuple?", "category": "coding"},
]
GOOD_JSONL = "".join(json.dumps(r) + "\n" for r in GOOD_ROWS)

# A small step module that cases place beside their YAML (module names differ per case).
STEPS_PY = '''
from notos.pipeline import step


@step(inputs={"instruction": "str"}, outputs=["n_words"])
def count_words(row, minimum=0):
    return {"n_words": len(row["instruction"].split())}


def not_a_step(row):
    return {}
'''


def pipeline_yaml(*steps: str, name: str = "bad", extra: str = "") -> str:
    body = "".join(f"  - {s}\n" for s in steps)
    return f"name: {name}\n{extra}steps:\n{body}"


SOURCE = "{name: src, type: load_data, path: data.jsonl}"
SOURCE_ID = "{name: src, type: load_data, path: data.jsonl, id_column: id}"
KEEP = "{name: keep, type: keep_columns, columns: [instruction], after: src}"


@dataclass
class Case:
    id: str
    files: dict[str, str | bytes]
    args: list[str]  # after `notos run`; "{tmp}" is replaced by tmp_path
    culprit: list[str]  # each must appear in the one error line
    dry_run: bool = True  # add --dry-run (the error fires while the pipeline is checked)
    code: int = 2


def _good(**more) -> dict:
    return {"data.jsonl": GOOD_JSONL, **more}


CASES = [
    # --- the pipeline file -------------------------------------------------------------------
    Case("missing-pipeline-file", {}, ["nope.yaml"], ["nope.yaml"]),
    Case("yaml-syntax", _good(**{"p.yaml": "name: bad\nsteps:\n  - {name: src, type: load_data\n  - [unclosed\n"}),
         ["p.yaml"], ["p.yaml", "invalid YAML", "line"]),
    Case("yaml-tab-indent", _good(**{"p.yaml": "name: bad\nsteps:\n\t- {name: src}\n"}), ["p.yaml"], ["p.yaml", "invalid YAML"]),
    Case("yaml-not-a-mapping", _good(**{"p.yaml": "- name: src\n  type: load_data\n"}), ["p.yaml"], ["p.yaml", "mapping"]),
    Case("yaml-empty-file", _good(**{"p.yaml": ""}), ["p.yaml"], ["p.yaml"]),
    Case("yaml-not-utf8", _good(**{"p.yaml": b"name: caf\xe9\nsteps:\n  - {name: src, type: load_data, path: data.jsonl}\n"}),
         ["p.yaml"], ["p.yaml", "UTF-8"]),
    Case("missing-steps", _good(**{"p.yaml": "name: bad\nbatch_size: 10\n"}), ["p.yaml"], ["p.yaml", "steps"]),
    Case("steps-empty-list", _good(**{"p.yaml": "name: bad\nsteps: []\n"}), ["p.yaml", ], ["p.yaml", "steps"]),
    Case("unknown-top-level-key", _good(**{"p.yaml": pipeline_yaml(SOURCE, extra="stpes_typo: 1\n")}),
         ["p.yaml"], ["p.yaml", "stpes_typo"]),
    Case("bad-batch-size-zero", _good(**{"p.yaml": pipeline_yaml(SOURCE, extra="batch_size: 0\n")}),
         ["p.yaml"], ["p.yaml", "batch_size"]),
    Case("bad-batch-size-text", _good(**{"p.yaml": pipeline_yaml(SOURCE, extra="batch_size: lots\n")}),
         ["p.yaml"], ["p.yaml", "batch_size", "lots"]),
    # --- steps -------------------------------------------------------------------------------
    Case("step-without-name", _good(**{"p.yaml": pipeline_yaml(SOURCE, "{type: keep_columns, columns: [instruction], after: src}")}),
         ["p.yaml"], ["p.yaml", "step 2", "name"]),
    Case("duplicate-step-names", _good(**{"p.yaml": pipeline_yaml(SOURCE, KEEP, "{name: keep, type: drop_columns, columns: [category], after: src}")}),
         ["p.yaml"], ["'keep'"]),
    Case("unknown-step-type", _good(**{"p.yaml": pipeline_yaml(SOURCE, "{name: gen, type: generate_magic, after: src}")}),
         ["p.yaml"], ["'gen'", "generate_magic"]),
    Case("step-without-type", _good(**{"p.yaml": pipeline_yaml(SOURCE, "{name: gen, after: src}")}),
         ["p.yaml"], ["'gen'", "type"]),
    Case("unknown-option-builtin", _good(**{"p.yaml": pipeline_yaml(SOURCE, "{name: keep, type: keep_columns, columns: [instruction], colums_typo: [x], after: src}")}),
         ["p.yaml"], ["'keep'", "colums_typo"]),
    Case("unknown-option-source", _good(**{"p.yaml": pipeline_yaml("{name: src, type: load_data, path: data.jsonl, spilt: train}")}),
         ["p.yaml"], ["'src'", "spilt"]),
    Case("missing-required-option", _good(**{"p.yaml": pipeline_yaml(SOURCE, "{name: keep, type: keep_columns, after: src}")}),
         ["p.yaml"], ["'keep'", "columns"]),
    Case("unknown-filter-op", _good(**{"p.yaml": pipeline_yaml(SOURCE, "{name: flt, type: filter_rows, column: instruction, op: '~=', value: 3, after: src}")}),
         ["p.yaml"], ["'flt'", "~="]),
    Case("bad-workers-setting", _good(**{"p.yaml": pipeline_yaml(SOURCE, "{name: keep, type: keep_columns, columns: [instruction], workers: gpu, after: src}")}),
         ["p.yaml"], ["'keep'", "workers"]),
    Case("unknown-option-python", _good(**{"steps_a.py": STEPS_PY, "p.yaml": pipeline_yaml(SOURCE, "{name: words, type: python, fn: steps_a:count_words, minimun: 2, after: src}")}),
         ["p.yaml"], ["'words'", "minimun"]),
    Case("fn-not-importable", _good(**{"p.yaml": pipeline_yaml(SOURCE, "{name: words, type: python, fn: no_such_module_xyz:count_words, after: src}")}),
         ["p.yaml"], ["'words'", "no_such_module_xyz"]),
    Case("fn-missing-attribute", _good(**{"steps_b.py": STEPS_PY, "p.yaml": pipeline_yaml(SOURCE, "{name: words, type: python, fn: steps_b:count_wrds, after: src}")}),
         ["p.yaml"], ["'words'", "count_wrds"]),
    Case("fn-without-colon", _good(**{"p.yaml": pipeline_yaml(SOURCE, "{name: words, type: python, fn: steps_c.count_words, after: src}")}),
         ["p.yaml"], ["'words'", "fn"]),
    Case("fn-not-a-step", _good(**{"steps_d.py": STEPS_PY, "p.yaml": pipeline_yaml(SOURCE, "{name: words, type: python, fn: steps_d:not_a_step, after: src}")}),
         ["p.yaml"], ["'words'", "not_a_step"]),
    Case("fn-module-syntax-error", _good(**{"steps_e.py": "def broken(:\n    pass\n", "p.yaml": pipeline_yaml(SOURCE, "{name: words, type: python, fn: steps_e:broken, after: src}")}),
         ["p.yaml"], ["'words'", "steps_e"]),
    Case("after-missing-step", _good(**{"p.yaml": pipeline_yaml(SOURCE, "{name: keep, type: keep_columns, columns: [instruction], after: scr}")}),
         ["p.yaml"], ["'keep'", "scr"]),
    Case("step-not-connected", _good(**{"p.yaml": pipeline_yaml(SOURCE, "{name: keep, type: keep_columns, columns: [instruction]}")}),
         ["p.yaml"], ["'keep'", "connected"]),
    Case("source-after-step", _good(**{"p.yaml": pipeline_yaml(SOURCE, "{name: src2, type: load_data, path: data.jsonl, after: src}")}),
         ["p.yaml"], ["'src2'", "source"]),
    # a and b feed each other; a also reads the source, so the graph is connected and cyclic.
    Case("cycle-through-source", _good(**{"p.yaml": pipeline_yaml(
        SOURCE, "{name: a, type: keep_columns, columns: [instruction], after: [src, b]}",
        "{name: b, type: keep_columns, columns: [instruction], after: a}")}),
        ["p.yaml"], ["cycle", "'a'"]),
    # a and b only feed each other: the loop is cut off from the source, so it shows as steps
    # not connected to the source (either wording is fine as long as it names the step).
    Case("cycle-detached-from-source", _good(**{"p.yaml": pipeline_yaml(
        SOURCE, "{name: a, type: keep_columns, columns: [instruction], after: b}",
        "{name: b, type: keep_columns, columns: [instruction], after: a}")}),
        ["p.yaml"], ["'a'"]),
    # --- columns -----------------------------------------------------------------------------
    Case("missing-input-column", {"data.jsonl": '{"prompt": "Explain rain."}\n', "steps_f.py": STEPS_PY,
                                  "p.yaml": pipeline_yaml(SOURCE, "{name: words, type: python, fn: steps_f:count_words, after: src}")},
         ["p.yaml"], ["'words'", "'instruction'"]),
    Case("missing-column-builtin", _good(**{"p.yaml": pipeline_yaml(SOURCE, "{name: flt, type: filter_rows, column: n_words, op: '>=', value: 3, after: src}")}),
         ["p.yaml"], ["'flt'", "'n_words'"]),
    Case("wrong-column-type", {"data.jsonl": '{"instruction": 42}\n{"instruction": 7}\n', "steps_g.py": STEPS_PY,
                               "p.yaml": pipeline_yaml(SOURCE, "{name: words, type: python, fn: steps_g:count_words, after: src}")},
         ["p.yaml"], ["'words'", "'instruction'", "int", "str"]),
    # --- data files --------------------------------------------------------------------------
    Case("missing-data-file", {"p.yaml": pipeline_yaml("{name: src, type: load_data, path: absent.jsonl}", KEEP)},
         ["p.yaml"], ["absent.jsonl"]),
    # Relative paths are read from the YAML file's folder (README): a file of that name in the
    # current folder must not be picked up instead.
    Case("missing-data-file-beside-yaml", {"sub/p.yaml": pipeline_yaml("{name: src, type: load_data, path: absent.jsonl}", KEEP),
                                           "absent.jsonl": GOOD_JSONL},
         ["sub/p.yaml"], ["absent.jsonl"]),
    Case("empty-data-file", {"data.jsonl": "", "p.yaml": pipeline_yaml(SOURCE, KEEP)}, ["p.yaml"], ["data.jsonl", "empty"]),
    Case("blank-lines-data-file", {"data.jsonl": "\n\n   \n", "p.yaml": pipeline_yaml(SOURCE, KEEP)}, ["p.yaml"], ["data.jsonl", "no rows"]),
    Case("jsonl-not-utf8", {"data.jsonl": b'{"instruction": "caf\xe9 au lait"}\n', "p.yaml": pipeline_yaml(SOURCE, KEEP)},
         ["p.yaml"], ["data.jsonl", "UTF-8", "line 1"]),
    Case("csv-not-utf8", {"data.csv": b"instruction,category\ncaf\xe9 au lait,food\n", "p.yaml": pipeline_yaml(
        "{name: src, type: load_data, path: data.csv}", KEEP)}, ["p.yaml"], ["data.csv", "UTF-8"]),
    Case("jsonl-malformed-line", {"data.jsonl": GOOD_JSONL + '{"instruction": "oops",,}\n', "p.yaml": pipeline_yaml(SOURCE, KEEP)},
         ["p.yaml"], ["data.jsonl", "line 4", "JSON"]),
    Case("jsonl-line-not-object", {"data.jsonl": GOOD_JSONL + '["a", "list"]\n', "p.yaml": pipeline_yaml(SOURCE, KEEP)},
         ["p.yaml"], ["data.jsonl", "line 4"]),
    Case("json-array-malformed", {"data.json": '[{"instruction": "a"}, {"instruction": }]', "p.yaml": pipeline_yaml(
        "{name: src, type: load_data, path: data.json}", KEEP)}, ["p.yaml"], ["data.json", "JSON"]),
    Case("parquet-corrupt", {"data.parquet": b"PAR1 this is not really parquet", "p.yaml": pipeline_yaml(
        "{name: src, type: load_data, path: data.parquet}", KEEP)}, ["p.yaml"], ["data.parquet", "Parquet"]),
    Case("unknown-extension", {"data.xlsx": "instruction\nhello\n", "p.yaml": pipeline_yaml(
        "{name: src, type: load_data, path: data.xlsx}", KEEP)}, ["p.yaml"], ["data.xlsx", ".xlsx"]),
    Case("id-column-missing", _good(**{"p.yaml": pipeline_yaml("{name: src, type: load_data, path: data.jsonl, id_column: uid}", KEEP)}),
         ["p.yaml", "--out", "{tmp}/out"], ["'uid'"], dry_run=False),
    Case("id-column-duplicate", {"data.jsonl": GOOD_JSONL + json.dumps({"id": "r2", "instruction": "again"}) + "\n",
                                 "p.yaml": pipeline_yaml(SOURCE_ID, KEEP)},
         ["p.yaml", "--out", "{tmp}/out", "--no-progress"], ["'id'", "'r2'"], dry_run=False),
    # --input replaces the source's file; the source's id_column still says which column is the id.
    Case("input-duplicate-id", {"data.jsonl": GOOD_JSONL, "p.yaml": pipeline_yaml(SOURCE_ID, KEEP),
                                "dup.jsonl": GOOD_JSONL + json.dumps({"id": "r2", "instruction": "again"}) + "\n"},
         ["p.yaml", "--input", "dup.jsonl", "--out", "{tmp}/out", "--no-progress"], ["'id'", "'r2'"], dry_run=False),
    # --- command-line options ----------------------------------------------------------------
    Case("input-missing-file", _good(**{"p.yaml": pipeline_yaml(SOURCE, KEEP)}), ["p.yaml", "--input", "gone.jsonl"], ["--input", "gone.jsonl"]),
    Case("input-not-utf8", {"data.jsonl": GOOD_JSONL, "other.jsonl": b'{"instruction": "\xff\xfe"}\n', "p.yaml": pipeline_yaml(SOURCE, KEEP)},
         ["p.yaml", "--input", "other.jsonl"], ["other.jsonl", "UTF-8"]),
    Case("set-unknown-step", _good(**{"p.yaml": pipeline_yaml(SOURCE, KEEP)}), ["p.yaml", "--set", "kepp.columns=[category]"], ["--set", "kepp"]),
    Case("set-malformed", _good(**{"p.yaml": pipeline_yaml(SOURCE, KEEP)}), ["p.yaml", "--set", "keep.columns"], ["--set", "keep.columns"]),
    Case("set-unknown-option", _good(**{"p.yaml": pipeline_yaml(SOURCE, KEEP)}), ["p.yaml", "--set", "keep.colour=red"], ["'keep'", "colour"]),
    Case("set-unknown-pipeline-key", _good(**{"p.yaml": pipeline_yaml(SOURCE, KEEP)}), ["p.yaml", "--set", "bach_size=3"], ["--set", "bach_size"]),
    Case("set-bad-batch-size", _good(**{"p.yaml": pipeline_yaml(SOURCE, KEEP)}), ["p.yaml", "--set", "batch_size=-4"], ["batch_size"]),
    Case("limit-zero", _good(**{"p.yaml": pipeline_yaml(SOURCE, KEEP)}), ["p.yaml", "--limit", "0"], ["--limit"]),
    Case("limit-not-a-number", _good(**{"p.yaml": pipeline_yaml(SOURCE, KEEP)}), ["p.yaml", "--limit", "ten"], ["--limit"]),
    Case("unknown-cli-option", _good(**{"p.yaml": pipeline_yaml(SOURCE, KEEP)}), ["p.yaml", "--dryrun"], ["--dryrun"], dry_run=False),
    Case("unknown-recipe-name", {}, ["no_such_recipe"], ["no_such_recipe"]),
    Case("out-not-empty-foreign-folder", _good(**{"p.yaml": pipeline_yaml(SOURCE, KEEP), "mine/thesis.txt": "my precious work\n"}),
         ["p.yaml", "--out", "{tmp}/mine", "--no-progress"], ["--out", "mine"], dry_run=False),
    Case("out-is-a-file", _good(**{"p.yaml": pipeline_yaml(SOURCE, KEEP), "notes.txt": "my notes\n"}),
         ["p.yaml", "--out", "{tmp}/notes.txt", "--no-progress"], ["--out", "notes.txt"], dry_run=False),
]


def _write_files(root: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _one_error_line(result) -> str:
    err = result.stderr.strip()
    assert "Traceback" not in result.stderr, result.stderr
    assert err, f"no error message (rc={result.returncode}, stdout={result.stdout!r})"
    assert len(err.splitlines()) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    return err


def run_case(cli, tmp_path: Path, case: Case, dry_run: bool):
    args = [a.replace("{tmp}", str(tmp_path)) for a in case.args]
    if dry_run:
        args.append("--dry-run")
    return cli("run", *args, cwd=tmp_path)


def check_error(result, case: Case) -> str:
    line = _one_error_line(result)
    assert result.returncode != 0, f"exit code 0 for bad input; stderr: {line}"
    assert result.returncode == case.code, f"exit code {result.returncode}, expected {case.code}; stderr: {line}"
    for culprit in case.culprit:
        assert culprit in line, f"error does not name {culprit!r}: {line}"
    return line


def test_cases_are_distinct():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 22


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_exit_2(cli, tmp_path, case):
    _write_files(tmp_path, case.files)
    before = _snapshot(tmp_path)
    result = run_case(cli, tmp_path, case, case.dry_run)
    check_error(result, case)
    # Every file the user had (pipeline, data, step modules, a foreign --out folder) is untouched.
    after = _snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before


VALIDATION_BOTH_WAYS = ["yaml-syntax", "unknown-step-type", "unknown-option-python", "missing-input-column",
                        "wrong-column-type", "empty-data-file", "jsonl-malformed-line", "set-unknown-step"]


@pytest.mark.parametrize("case_id", VALIDATION_BOTH_WAYS)
def test_validation_errors_fire_without_dry_run(cli, tmp_path, case_id):
    """The error a --dry-run reports also stops a real run, before a run folder is made."""
    case = next(c for c in CASES if c.id == case_id)
    _write_files(tmp_path, case.files)
    dry = run_case(cli, tmp_path, case, dry_run=True)
    dry_line = check_error(dry, case)
    out = tmp_path / "out"
    real = cli("run", *case.args, "--out", out, "--no-progress", cwd=tmp_path)
    real_line = check_error(real, case)
    assert real_line == dry_line
    assert not out.exists(), "a run that failed validation created its run folder"


# --- nothing already written is lost ------------------------------------------------------------

def _make_good_run(cli, tmp_path: Path) -> tuple[Path, Path, dict[str, bytes], dict]:
    _write_files(tmp_path, {"data.jsonl": GOOD_JSONL, "steps_ok.py": STEPS_PY, "p.yaml": pipeline_yaml(
        SOURCE_ID, "{name: words, type: python, fn: steps_ok:count_words, after: src}",
        "{name: keep, type: keep_columns, columns: [instruction, n_words], after: words}", name="good", extra="batch_size: 2\n")})
    out = tmp_path / "run"
    first = cli("run", "p.yaml", "--out", out, "--no-progress", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    data = {k: v for k, v in _snapshot(out).items() if k.startswith("data")}
    assert any(k.endswith(".parquet") for k in data), data.keys()
    return tmp_path / "p.yaml", out, data, _load_rows(out)


def _load_rows(out: Path) -> dict:
    import notos

    loaded = notos.load_run(out)
    return {leaf: sorted(ds.to_list(), key=lambda r: r["row_id"]) for leaf, ds in loaded.items()}


@pytest.mark.parametrize("bad", [
    pytest.param(["--set", "kepp.columns=[instruction]"], id="bad-set-step"),
    pytest.param(["--set", "keep.columns"], id="malformed-set"),
    pytest.param(["--set", "words.minimun=3"], id="set-unknown-option"),
    pytest.param(["--set", "batch_size=0"], id="set-bad-batch-size"),
    pytest.param(["--input", "gone.jsonl"], id="missing-input"),
    pytest.param(["--input", "bad.jsonl"], id="malformed-input"),
])
def test_failed_rerun_keeps_every_file_of_a_run(cli, tmp_path, bad):
    """A rerun stopped by bad input before anything runs leaves the whole run folder as it was."""
    _pipeline, out, _data, rows = _make_good_run(cli, tmp_path)
    (tmp_path / "bad.jsonl").write_text(GOOD_JSONL + "{not json\n")
    before = _snapshot(out)
    result = cli("run", "p.yaml", "--out", out, "--no-progress", *bad, cwd=tmp_path)
    line = _one_error_line(result)
    assert result.returncode == 2, line
    assert _snapshot(out) == before
    assert _load_rows(out) == rows


def test_bad_pipeline_file_keeps_the_run(cli, tmp_path):
    pipeline, out, data, rows = _make_good_run(cli, tmp_path)
    before = _snapshot(out)
    pipeline.write_text(pipeline.read_text().replace("type: keep_columns", "type: keep_colums"))
    result = cli("run", "p.yaml", "--out", out, "--no-progress", cwd=tmp_path)
    line = _one_error_line(result)
    assert result.returncode == 2 and "keep_colums" in line, line
    assert _snapshot(out) == before
    assert _load_rows(out) == rows


def test_data_error_during_a_rerun_keeps_the_data(cli, tmp_path):
    """Bad data found only while running (a repeated id past the first row) fails the rerun;
    the data files of the earlier run stay byte-identical and load the same rows."""
    _pipeline, out, data, rows = _make_good_run(cli, tmp_path)
    (tmp_path / "data.jsonl").write_text(GOOD_JSONL + json.dumps({"id": "r1", "instruction": "one more time"}) + "\n")
    result = cli("run", "p.yaml", "--out", out, "--no-progress", cwd=tmp_path)
    line = _one_error_line(result)
    assert result.returncode == 2, line
    assert "'r1'" in line and "'id'" in line, line
    after = {k: v for k, v in _snapshot(out).items() if k.startswith("data")}
    assert after == data
    assert _load_rows(out) == rows
