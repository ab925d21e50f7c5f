"""A Python step beside a YAML file, run in worker processes started by spawn (macOS's default,
forkserver's too): each worker imports the step's module again and must find it."""

import json
import subprocess
import sys

SCRIPT = """
import multiprocessing, sys
from notos.pipeline import load_run, run
from notos.recipes import load_pipeline

if __name__ == "__main__":  # a spawned worker imports this file again: only the parent runs
    multiprocessing.set_start_method("spawn")
    pipeline, _ = load_pipeline(sys.argv[1])
    run(pipeline, sys.argv[2], progress=False)
    print(sorted(r["n_words"] for r in load_run(sys.argv[2])["words"].to_list()))
"""

STEPS = """
from notos.pipeline import step

@step(inputs={"instruction": "str"}, outputs=["n_words"])
def count_words(row):
    return {"n_words": len(row["instruction"].split())}
"""


def test_a_step_module_beside_the_yaml_is_found_by_spawned_workers(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "word_steps.py").write_text(STEPS)
    (folder / "prompts.jsonl").write_text("".join(json.dumps({"instruction": "x " * n}) + "\n" for n in (1, 2, 3)))
    (folder / "p.yaml").write_text(
        "name: spawn\nsteps:\n"
        "  - {name: prompts, type: load_data, path: prompts.jsonl}\n"
        "  - {name: words, type: python, fn: word_steps:count_words, after: prompts, workers: process}\n")
    (tmp_path / "main.py").write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(tmp_path / "main.py"), str(folder / "p.yaml"), str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[1, 2, 3]"
    assert str(folder) not in sys.path
