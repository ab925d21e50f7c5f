"""`notos push`: a run or curate output to the Hugging Face Hub, with a dataset card.

    card = dataset_card(Path("out/binarized"))        # README.md text, from what the folder records
    push(Path("out/binarized"), "me/uf-notus", token=os.environ["HF_TOKEN"])

The card says what produced the data (notos version, the command or recipe, its options, the
chain of curate outputs it came from), the models, counts, the aspect rating distributions,
the decontamination and dedup removals found along the chain, the binarization rule, the edits
a person applied, and a license field.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from notos.data.tables import read_table
from notos.errors import DataError, NotosError
from notos.version import __version__

MAX_CHAIN = 20  # curate outputs followed back through config.json "input"


def chain(folder: Path) -> list[dict]:
    """The curate outputs this data came through, newest first: {command, input, options, stats}."""
    steps, seen = [], set()
    path = Path(folder)
    while len(steps) < MAX_CHAIN and path.is_dir() and (path / "config.json").is_file() and path.resolve() not in seen:
        seen.add(path.resolve())
        config = _json(path / "config.json")
        if config.get("tool") != "notos curate":
            break
        steps.append({"command": config.get("command"), "input": config.get("input"), "options": config.get("options", {}),
                      "stats": _json(path / "stats.json"), "folder": str(path)})
        path = Path(config.get("input") or "")
    return steps


def dataset_card(data: Path, *, license: str = "other", repo_id: str | None = None) -> str:
    data = Path(data)
    table = read_table(data)
    steps = chain(data)
    manifest = _json(data / "manifest.json") if data.is_dir() else {}
    lines = [_front_matter(license, table.num_rows), f"# {repo_id or data.name}", "",
             f"Preference data written by [notos](https://github.com/) {__version__}.", ""]
    lines += _produced_by(manifest, steps)
    lines += _counts(table)
    lines += _ratings(data, table) or _ratings_at_start(steps)
    lines += _removals(steps)
    lines += _binarization(table, steps)
    lines += ["## License", "", (f"`{license}`: check the licenses of the source prompts and of the models "
                                 "whose responses and judgments are in the data."), ""]
    return "\n".join(lines)


def write_card(data: Path, out: Path, **options) -> Path:
    out = Path(out)
    if out.suffix.lower() != ".md":
        out.mkdir(parents=True, exist_ok=True)
        out = out / "README.md"
    out.write_text(dataset_card(data, **options), encoding="utf-8")
    return out


def push(data: Path, repo_id: str, *, token: str | None, private: bool = False, license: str = "other") -> str:
    """datasets' push_to_hub, then the card; any failure (offline, no rights) is one line."""
    import datasets  # a core dependency; imported here because it is slow to import
    from huggingface_hub import DatasetCard

    card = dataset_card(data, license=license, repo_id=repo_id)
    dataset = datasets.Dataset(read_table(data))
    try:
        dataset.push_to_hub(repo_id, token=token, private=private)
        DatasetCard(card).push_to_hub(repo_id, token=token)
    except Exception as exc:  # noqa: BLE001 - network, auth and Hub errors all end here: one line
        text = (str(exc).strip() or type(exc).__name__).splitlines()[0][:300]
        raise NotosError(f"push {repo_id}: the Hugging Face Hub refused or did not answer ({text})") from None
    return f"https://huggingface.co/datasets/{repo_id}"


# --- card sections ---------------------------------------------------------------------------

def _front_matter(license: str, rows: int) -> str:
    size = next(label for limit, label in ((1e3, "n<1K"), (1e4, "1K<n<10K"), (1e5, "10K<n<100K"),
                                            (1e6, "100K<n<1M"), (float("inf"), "n>1M")) if rows < limit)
    return "\n".join(["---", f"license: {license}", "task_categories:", "- text-generation", "tags:", "- notos",
                      "- preference", "- dpo", "- ai-feedback", "size_categories:", f"- {size}", "---", ""])


def _produced_by(manifest: dict, steps: list[dict]) -> list[str]:
    out = ["## How it was made", ""]
    if manifest:
        out.append(f"- `notos run` pipeline `{manifest.get('pipeline') or manifest.get('name') or '?'}`, status "
                   f"{manifest.get('status', '?')}, steps: {', '.join(_step_names(manifest)) or '?'}")
    for step in steps:
        options = ", ".join(f"{k}={v}" for k, v in step["options"].items())
        out.append(f"- `notos curate {step['command']}` ({options}) of `{Path(str(step['input'])).name}`")
    if not manifest and not steps:
        out.append("- a data file (no run manifest or curate config beside it)")
    return out + [""]


def _step_names(manifest: dict) -> list[str]:
    steps = manifest.get("steps") or {}
    return list(steps) if isinstance(steps, dict) else [str(s.get("name", s)) if isinstance(s, dict) else str(s) for s in steps]


def _counts(table: pa.Table) -> list[str]:
    out = ["## Counts", "", f"- rows: {table.num_rows}"]
    names = table.column_names
    if "prompt_id" in names:
        out.append(f"- prompts: {pc.count_distinct(table.column('prompt_id')).as_py()}")
    models = Counter()
    for name in ("model_chosen", "model_rejected", "model", "models"):
        if name in names:
            values = table.column(name)
            values = pc.list_flatten(values) if pa.types.is_list(values.type) else values
            models.update(v for v in values.to_pylist() if v)
    if models:
        out.append("- models: " + ", ".join(f"{m} ({n})" for m, n in models.most_common(20)))
    return out + [""]


def _ratings(data: Path, table: pa.Table) -> list[str]:
    """Aspect rating distributions, from the completions behind the data when they can be read."""
    from notos.data.records import normalize

    try:
        completions = normalize(table, origin=str(data))
    except DataError:
        return []
    if not completions.aspects:
        return []
    out = ["## Aspect ratings", "", "| aspect | 1 | 2 | 3 | 4 | 5 | N/A | missing |", "|---|---|---|---|---|---|---|---|"]
    for aspect in completions.aspects:
        ratings = completions.table.column(f"rating_{aspect}").to_pylist()
        na = completions.table.column(f"na_{aspect}").to_pylist()
        counts = Counter(round(r) for r in ratings if r is not None)
        out.append(f"| {aspect} | " + " | ".join(str(counts.get(v, 0)) for v in range(1, 6))
                   + f" | {sum(na)} | {sum(1 for r, n in zip(ratings, na) if r is None and not n)} |")
    return out + [""]


def _ratings_at_start(steps: list[dict]) -> list[str]:
    """Pairs hold no ratings: the distributions of the rated completions the chain started from."""
    start = Path(str(steps[-1]["input"])) if steps else None
    if start is None or not start.exists():
        return []
    try:
        return _ratings(start, read_table(start))
    except DataError:
        return []


def _removals(steps: list[dict]) -> list[str]:
    out = []
    for step in steps:
        if step["command"] in ("decontaminate", "dedup"):
            stats = step["stats"]
            removed = stats.get("removed_by_reason") or {}
            detail = ", ".join(f"{k}: {v}" for k, v in removed.items()) or "none"
            out.append(f"- {step['command']}: {stats.get('prompts_removed', stats.get('removed', '?'))} prompts removed "
                       f"({detail})")
    return (["## Decontamination and dedup", ""] + out + [""]) if out else \
        ["## Decontamination and dedup", "", "- none recorded in this data's chain", ""]


def _binarization(table: pa.Table, steps: list[dict]) -> list[str]:
    binarize = next((s for s in steps if s["command"] == "binarize"), None)
    if binarize is None:
        return []
    stats = binarize["stats"]
    rule = {"overall": "chosen = the best critique overall_score, rejected = a random lower one (Zephyr)",
            "mean": "chosen = the best mean of aspect ratings, rejected = a random lower one (Notus)",
            "best-worst": "the best against the worst", "all-pairs": "every pair with a positive score gap"}
    strategy = stats.get("strategy") or binarize["options"].get("strategy")
    out = ["## Binarization", "", f"- strategy `{strategy}`: {rule.get(strategy, '?')}",
           f"- min_margin {stats.get('min_margin', 0)}, seed {stats.get('seed', 0)}, pairs {stats.get('pairs', table.num_rows)}"]
    if stats.get("dropped"):
        out.append("- prompts without a pair: " + ", ".join(f"{k} {v}" for k, v in stats["dropped"].items()))
    edits = stats.get("edits_applied") or stats.get("edits")
    if edits:
        out.append("- a person's edits applied: " + ", ".join(f"{k} {v}" for k, v in edits.items() if v))
    return out + [""]


def _json(path: Path) -> dict:
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}

