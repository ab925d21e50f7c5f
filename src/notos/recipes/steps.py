"""Small steps the shipped recipes use."""

import re

from notos.pipeline import global_step, step


@step(inputs={"instruction": "str"}, outputs=["n_words"])
def tidy_instruction(row):
    """Collapse runs of whitespace and strip the ends; count words."""
    text = re.sub(r"\s+", " ", row["instruction"]).strip()
    return {"instruction": text, "n_words": len(text.split())}


@global_step(inputs={"instruction": "str"})
def drop_repeated_instructions(rows):
    """Keep the first row of each instruction (case-insensitive); exact repeats only.
    Near-duplicate detection (MinHash) belongs to curation."""
    seen, kept = set(), []
    for row in rows:
        key = row["instruction"].casefold()
        if key not in seen:
            seen.add(key)
            kept.append(row)
    return kept
