"""Small UltraFeedback-shaped data whose flags, chosen responses and sort order are worked out by hand."""

import json
from pathlib import Path

ASPECTS = ("instruction_following", "honesty", "truthfulness", "helpfulness")
NEUTRAL = "The text is about the topic."  # no lexicon cue: only the planted critique disagreement flags


def uf_record(pid, ratings, overall, source="sharegpt"):
    completions = []
    for k, (aspects, score) in enumerate(zip(ratings, overall)):
        annotations = {name: {"Rating": str(r), "Rationale": NEUTRAL} for name, r in zip(ASPECTS, aspects)}
        completions.append({"model": f"model-{k}", "principle": ["helpfulness", "honesty", "truthfulness"][k % 3],
                            "response": f"Answer {k} to {pid}." + " More words." * k,
                            "annotations": annotations, "critique": f"Critique of answer {k}.", "overall_score": score})
    return {"prompt_id": pid, "instruction": f"Question {pid}: explain item {pid}.", "source": source,
            "models": [c["model"] for c in completions], "completions": completions}


def review_records():
    """f1, f2, f3: a critique 10 over ratings 1-2 (flagged), chosen (mean) 4.0, 4.75, 3.0.
    u0..u9: nothing flagged, chosen 5.0 (they lead an unfiltered sort by chosen rating)."""
    low = [1, 1, 2, 1]
    records = [
        uf_record("f1", [low, [4, 4, 4, 4], [3, 3, 3, 3]], [10, 7, 5.5], source="flan"),
        uf_record("f2", [low, [5, 5, 4, 5], [3, 3, 3, 3]], [10, 8, 6]),
        uf_record("f3", [low, [3, 3, 3, 3], [2, 2, 2, 2]], [10, 5.5, 3.4], source="flan"),
    ]
    records += [uf_record(f"u{i}", [[5, 5, 5, 5], [2, 2, 2, 2]], [10, 3.4]) for i in range(10)]
    return records


def write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def write_parquet(path: Path, records, row_group_size: int = 4) -> Path:
    """The same records as UltraFeedback Parquet, in small row groups (several batches to stream)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(records), path, row_group_size=row_group_size)
    return path
