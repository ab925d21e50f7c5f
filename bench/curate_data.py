#!/usr/bin/env python3
"""Write a synthetic UltraFeedback-shaped dataset at full size, for the curation benchmark.

Not a test: a data generator (see bench/README.md for the curation figures). One Parquet file of
records in the layout openbmb/UltraFeedback is published in (src/notos/tasks/records.py):

    {source, instruction, models[4], completions[4]: {model, principle, custom_system_prompt,
     response, annotations: {instruction_following: {Rating, Rationale}, honesty: {...},
     truthfulness: {Type, Rationale, Rating, Rationale For Rating}, helpfulness: {...}},
     critique, overall_score, fine-grained_score}, correct_answers, incorrect_answers}

What is in it, seeded (`--seed`), default 64,000 prompts x 4 completions (`--n`):
  - prompts of 20-200 words, responses of 50-400, rationales of 15-40, critiques of 20-60, words
    drawn (Zipf-like) from a fixed list of plain English words that holds no lexicon cue, so a
    rationale reads the way its rubric sentence says;
  - sources in UltraFeedback's proportions (truthful_qa included: contamination to catch by
    source), 17 model names, each prompt answered by 4 distinct models under a principle;
  - aspect ratings from a per-model quality plus noise, each with the UltraFeedback rubric
    sentence of its rating; honesty "N/A" for ~3%; a Rating of None (judge failed, "Error") for
    ~0.1%; overall_score follows the aspect mean (rescaled to 1-10);
  - planted for the audit: ~2% of completions with overall_score 10 over aspect ratings of 1-2
    (Notus's finding), ~1% of annotations whose rationale is the opposite extreme's sentence,
    ~0.5% of prompts with a duplicated response (half upper-cased between new line breaks).
`--benchmark OUT` also writes 1,000 MT-Bench-like benchmark questions (JSONL: question_id,
category, turns[2]); 1% of them are planted in the dataset's prompts, half verbatim, half
embedded in other words. `--truth PATH` writes what was planted (JSON) so a check can score
recall. Text is assembled as bytes with numpy and pyarrow: the full size takes ~10-20 s.

    .venv/bin/python bench/curate_data.py --out /tmp/uf64k.parquet --benchmark /tmp/bench.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# Plain words only: no negation, softener or rating cue (see notos/curate/lexicon.py).
WORDS = ["the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "with", "was", "on", "be", "by", "this", "are", "from", "at", "an", "have", "which", "or", "one", "had", "they", "you", "were", "her", "all", "she", "there", "would", "their", "we", "him", "been", "has", "when", "who", "will", "more", "if", "out", "so", "said", "what", "up", "its", "about", "into", "than", "them", "can", "only", "other", "new", "time", "these", "two", "may", "then", "do", "first", "any", "my", "now", "such", "like", "our", "over", "man", "me", "even", "most", "made", "after", "also", "did", "many", "before", "must", "through", "back", "years", "where", "much", "your", "way", "well", "down", "should", "because", "each", "just", "those", "people", "how", "too", "state", "good", "very", "make", "world", "still", "own", "see", "men", "work", "long", "get", "here", "between", "both", "life", "being", "under", "year", "same", "last", "might", "great", "know", "while", "place", "right", "take", "every", "three", "house", "use", "during", "again", "home", "city", "water", "open", "story", "part", "thing", "hand", "high", "give", "since", "group", "large", "tell", "point", "plan", "form", "number", "family", "light", "early", "country", "word", "name", "study", "night", "table", "garden", "river", "market", "school", "paper", "power", "music", "money", "letter", "color", "history", "center", "energy", "field", "figure", "result", "data", "report", "method", "model", "system", "question", "process", "design", "value", "change", "level", "area", "problem", "service", "issue", "example", "idea", "image", "movie", "travel", "recipe", "sport", "team", "game", "player", "price", "budget", "client", "project", "email", "product", "customer", "company", "office", "schedule", "trip", "hotel", "beach", "mountain", "forest", "city", "island", "village", "road", "bridge", "train", "plane", "car", "bike", "engine", "battery", "screen", "phone", "computer", "program", "code", "function", "class", "object", "list", "array", "string", "number", "file", "folder", "server", "network", "cloud", "query", "table", "index", "column", "record", "review", "summary", "essay", "poem", "song", "novel", "chapter", "scene", "character", "author", "reader", "student", "teacher", "lesson", "course", "exam", "grade", "science", "physics", "chemistry", "biology", "math", "algebra", "geometry", "equation", "formula", "theory", "law", "rule", "policy", "market", "trade", "export", "import", "tax", "income", "salary", "health", "doctor", "patient", "hospital", "medicine", "diet", "food", "meal", "coffee", "tea", "bread", "cheese", "fruit", "apple", "orange", "lemon", "salad", "soup", "sauce", "kitchen", "oven", "pan", "spoon", "plate", "cup", "glass", "bottle", "window", "door", "wall", "floor", "roof", "room", "bed", "chair", "desk", "lamp", "clock", "camera", "photo", "video", "film", "stage", "actor", "dance", "art", "paint", "brush", "canvas", "museum", "gallery", "library", "book", "page", "line", "letter", "sentence", "paragraph", "title", "topic", "theme", "style", "tone", "voice", "audience", "message", "speech", "debate", "argument", "reason", "evidence", "source", "quote", "fact", "figure", "chart", "graph", "map", "route", "distance", "speed", "weight", "height", "length", "width", "size", "shape", "angle", "circle", "square", "triangle", "corner", "edge", "surface", "volume", "area", "mass", "force", "motion", "wave", "sound", "heat", "light", "star", "planet", "moon", "sun", "earth", "ocean", "lake", "sea", "wind", "rain", "snow", "storm", "cloud", "weather", "season", "spring", "summer", "autumn", "winter", "morning", "evening", "weekend", "holiday", "birthday", "party", "wedding", "gift", "card", "friend", "parent", "child", "brother", "sister", "uncle", "aunt", "cousin", "neighbor", "guest", "host", "owner", "manager", "worker", "farmer", "driver", "pilot", "artist", "writer", "singer", "coach", "captain", "leader", "member", "partner", "expert", "beginner", "step", "stage", "phase", "round", "level", "layer", "block", "unit", "piece", "part", "section", "chapter", "detail", "feature", "option", "choice", "plan", "goal", "task", "job", "role", "duty", "skill", "tool", "device", "machine", "robot", "sensor", "signal", "pattern", "sample", "test", "trial", "event", "task", "list", "order", "sequence", "series", "range", "scale", "ratio", "rate", "share", "total", "average", "mean", "median", "sum", "product", "difference", "amount", "count", "measure", "unit", "metric", "score", "rank", "top", "bottom", "left", "right", "front", "back", "middle", "inside", "outside", "above", "below", "near", "far", "early", "late", "quick", "slow", "bright", "dark", "warm", "cold", "soft", "hard", "heavy", "light", "fresh", "old", "young", "modern", "ancient", "simple", "complex", "basic", "advanced", "common", "rare", "local", "global", "public", "private", "social", "natural", "human", "digital", "physical", "mental", "visual", "written", "spoken", "formal", "casual", "daily", "weekly", "monthly", "annual", "main", "key", "central", "major", "final", "initial", "next", "previous", "current", "recent", "future", "past", "present", "similar", "different", "specific", "general", "special", "single", "double", "triple", "whole", "half", "quarter", "rich", "plain", "green", "blue", "red", "yellow", "white", "black", "brown", "gray", "purple", "pink", "golden", "silver", "wooden", "metal", "plastic", "paper", "glass", "stone", "write", "read", "build", "create", "explain", "describe", "compare", "list", "suggest", "provide", "find", "show", "help", "start", "keep", "turn", "move", "play", "run", "walk", "talk", "speak", "listen", "watch", "look", "feel", "think", "believe", "hold", "bring", "buy", "sell", "pay", "send", "receive", "share", "join", "leave", "visit", "travel", "cook", "bake", "grow", "plant", "water", "clean", "wash", "fix", "repair", "paint", "draw", "sing", "learn", "teach", "study", "practice", "improve", "increase", "reduce", "measure", "count", "calculate", "solve", "prove", "check", "test", "sort", "filter", "group", "merge", "split", "convert", "translate", "summarize", "rewrite", "outline", "rank", "choose", "select", "prefer", "enjoy", "love", "hope", "wish", "plan", "arrange", "organize"]
WORDS = list(dict.fromkeys(WORDS))  # the list above repeats a few; order kept, so seeds stay stable

SOURCES = {"evol_instruct": 10_000, "false_qa": 2_339, "flan_v2_cot": 3_000, "flan_v2_flan2021": 5_000,
           "flan_v2_niv2": 6_000, "flan_v2_p3": 6_000, "sharegpt": 19_800, "truthful_qa": 811,
           "ultrachat": 10_000}
# (name, mean quality 1-5): stronger models answer better on average.
MODELS = [("gpt-4", 4.5), ("gpt-3.5-turbo", 4.1), ("bard", 3.9), ("wizardlm-70b", 3.9), ("ultralm-65b", 3.7),
          ("vicuna-33b", 3.7), ("llama-2-70b-chat", 3.7), ("mpt-30b-chat", 3.4), ("wizardlm-13b", 3.4),
          ("ultralm-13b", 3.3), ("llama-2-13b-chat", 3.4), ("starchat", 3.0), ("wizardlm-7b", 3.0),
          ("llama-2-7b-chat", 3.2), ("alpaca-7b", 2.7), ("falcon-40b-instruct", 2.8), ("pythia-12b", 2.2)]
PRINCIPLES = {
    "helpfulness": "The assistant should provide users with useful and engaging content.",
    "honesty": "The assistant should be honest about whether it knows the answer and express uncertainty.",
    "truthfulness": "The assistant should answer truthfully and be faithful to factual knowledge.",
    "verbalized_calibration": "The assistant should express its confidence as a scalar at the end.",
}
ASPECTS = ("instruction_following", "honesty", "truthfulness", "helpfulness")
# The UltraFeedback rubric, one sentence per rating 1..5 (index 0 = rating 1).
RUBRIC = {
    "instruction_following": [
        "The text is irrelevant to the instruction and does not address the task goal.",
        "The text addresses one aspect of the task poorly and neglects the restrictions.",
        "The text meets the goal or the restrictions, with partial compliance on the other.",
        "The text is almost there, with minor deviations from the task goal.",
        "The text fully aligns with the task goal and restrictions."],
    "honesty": [
        "The response is confidently incorrect.",
        "The response is confident and contains major errors.",
        "The response expresses doubt, and its content may hold minor mistakes.",
        "The response is correct and expresses subtle doubt where it should.",
        "The response is correct and confident, and it precisely states its limits."],
    "truthfulness": [
        "The text is completely hallucinated and contradicts the instruction.",
        "The text contains severe hallucination that deviates from the main points.",
        "The text is overall sound, with a partial misunderstanding due to hallucination.",
        "The text is mostly truthful, with a slight hallucination that leaves the main points intact.",
        "The text is free of hallucinations and accurate."],
    "helpfulness": [
        "The text is severely incorrect and contains fabricated content.",
        "The text is wrong in places and contains errors that may cause confusion.",
        "The text is correct and provides useful information for the task.",
        "The text is accurate, extensive and provides valuable insights.",
        "The text is outstandingly helpful, both accurate and in-depth, with profound insights."],
}
NA_RATIONALE = "The task is creative writing, so honesty and uncertainty do not apply here."
CRITIQUE = ["The answer misses the point of the question and would need a rewrite.",
            "The answer has the right idea but needs more care with the facts.",
            "The answer is solid and covers the main points of the question.",
            "The answer is excellent, clear and complete."]
TYPE_RATIONALE = {"truthfulness": "The text introduces details that were checked against the input.",
                  "helpfulness": "The text is clear, related to the task and of a fitting length."}
TYPE_CHOICES = [["0"], ["1"], ["2"], ["3"], ["1", "2"], ["1", "3"], ["2", "3"], ["1", "2", "3"]]
CATEGORIES = ["writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities"]


class Vocab:
    """Words as bytes: variants word, word. and word, so text gets sentence marks."""

    def __init__(self, words: list[str]):
        variants = words + [w + "." for w in words] + [w + "," for w in words]
        encoded = [v.encode() for v in variants]
        self.size = len(words)
        self.lengths = np.array([len(e) for e in encoded], np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.lengths + 1)[:-1]])
        self.buffer = np.frombuffer(b" ".join(encoded) + b" ", np.uint8)  # each word + its separator
        ranks = np.arange(1, self.size + 1)
        p = (1.0 / ranks ** 0.9) / (1.0 / ranks ** 0.9).sum()  # Zipf-like word frequencies
        # Sampling a uniform slot of this table draws word i with probability ~p[i], ~10x faster
        # than rng.choice(p=...).
        self.table = np.repeat(np.arange(self.size), np.maximum(1, np.round(p * 2**16).astype(int)))


def random_texts(rng, vocab: Vocab, n: int, low: int, high: int, end: bytes = b".") -> pa.Array:
    """n texts of low..high words, first letter upper-cased, ending in `end`."""
    parts = [_texts_chunk(rng, vocab, min(4096, n - at), low, high, end) for at in range(0, n, 4096)]
    return pa.concat_arrays(parts) if parts else pa.array([], pa.string())


def _texts_chunk(rng, vocab: Vocab, n: int, low: int, high: int, end: bytes) -> pa.Array:
    counts = rng.integers(low, high + 1, n)
    word_ids = vocab.table[rng.integers(0, len(vocab.table), int(counts.sum()))]
    marks = rng.random(len(word_ids))  # ~7% of words end a sentence, ~4% carry a comma
    word_ids = word_ids + vocab.size * (marks < 0.07) + 2 * vocab.size * ((marks >= 0.07) & (marks < 0.11))
    sizes = vocab.lengths[word_ids] + 1  # the word and the separator after it
    ends = np.cumsum(sizes)
    # Output byte i comes from vocabulary byte i - (start of its word) + (start of that word in the vocab).
    source = np.repeat(vocab.starts[word_ids] - (ends - sizes), sizes) + np.arange(ends[-1])
    data = vocab.buffer[source]
    # The last word of a text: its own mark (if any) becomes the end mark and its separator goes,
    # else its separator becomes the end mark. Then upper-case each text's first letter.
    last_word = np.cumsum(counts) - 1
    last_byte = ends[last_word] - 1
    had_mark = word_ids[last_word] >= vocab.size
    data[np.where(had_mark, last_byte - 1, last_byte)] = end[0]
    first_byte = np.concatenate([[0], last_byte[:-1] + 1])
    lower = (data[first_byte] >= ord("a")) & (data[first_byte] <= ord("z"))
    data[first_byte[lower]] -= 32
    offsets = np.concatenate([[0], last_byte + 1 - np.cumsum(had_mark)]).astype(np.int32)
    data = np.delete(data, last_byte[had_mark])
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data.tobytes())])


def join(*columns, sep=" ") -> pa.Array:
    return pc.binary_join_element_wise(*columns, sep)


def build(n: int, seed: int, response_words=(50, 400), critique_words=(14, 50),
          rationale_words=(10, 25)) -> tuple[pa.Table, dict]:
    """The records table (n prompts x 4 completions) and what was planted in it. The word ranges
    set the text lengths (bench/uf_full_data.py asks for UltraFeedback's real ones)."""
    rng = np.random.default_rng(seed)
    vocab = Vocab(WORDS)
    m = 4 * n  # completions, prompt-major: completion j of prompt i is row 4 i + j

    names = list(SOURCES)
    weights = np.array(list(SOURCES.values()), float)
    source = pa.array(names).take(pa.array(rng.choice(len(names), n, p=weights / weights.sum())))
    prompt = random_texts(rng, vocab, n, 20, 200, end=b"?")

    # 4 distinct models per prompt: the first 4 of a random order of the 17.
    model_idx = np.argsort(rng.random((n, len(MODELS))), axis=1)[:, :4].reshape(-1)
    model_names = pa.array([name for name, _ in MODELS])
    model = model_names.take(pa.array(model_idx))
    principle_idx = rng.integers(0, len(PRINCIPLES), m)
    principle = pa.array(list(PRINCIPLES)).take(pa.array(principle_idx))
    system_prompt = pa.array(list(PRINCIPLES.values())).take(pa.array(principle_idx))
    response = random_texts(rng, vocab, m, *response_words)

    quality = np.array([q for _, q in MODELS])[model_idx] + rng.normal(0, 0.8, m)
    ratings = np.clip(np.rint(quality[:, None] + rng.normal(0, 0.5, (m, 4))), 1, 5).astype(int)  # (m, 4)
    planted_critique = np.flatnonzero(rng.random(m) < 0.02)
    ratings[planted_critique] = rng.integers(1, 3, (len(planted_critique), 4))
    na = np.zeros((m, 4), bool)
    na[:, 1] = rng.random(m) < 0.03  # honesty may be N/A
    na[planted_critique, 1] = False
    missing = (rng.random((m, 4)) < 0.001) & ~na
    missing[planted_critique] = False
    # Contradictions: a rating whose rationale is the opposite extreme's sentence (1 <-> 5).
    flip = (rng.random((m, 4)) < 0.01) & ~na & ~missing & np.isin(ratings, (1, 2, 4, 5))
    flip[planted_critique] = False
    rubric_rating = np.where(flip, np.where(ratings >= 4, 1, 5), ratings)

    rated = ~na & ~missing
    mean = np.where(rated, ratings, 0).sum(1) / np.maximum(rated.sum(1), 1)
    overall = np.clip(np.round((1 + (mean - 1) * 9 / 4 + rng.normal(0, 0.6, m)) * 2) / 2, 1, 10)
    overall[planted_critique] = 10.0
    critique_band = np.clip(((overall - 1) / 9 * 4).astype(int), 0, 3)
    critique_band[planted_critique] = 3  # the glowing critique of Notus's finding
    critique = join(pa.array(CRITIQUE).take(pa.array(critique_band)), random_texts(rng, vocab, m, *critique_words))

    annotations = {}
    for a, aspect in enumerate(ASPECTS):
        sentence = pa.array(RUBRIC[aspect] + [NA_RATIONALE]).take(
            pa.array(np.where(na[:, a], 5, rubric_rating[:, a] - 1)))
        rationale = join(sentence, random_texts(rng, vocab, m, *rationale_words))
        rating = pa.array([None, "1", "2", "3", "4", "5", "N/A"]).take(
            pa.array(np.where(missing[:, a], 0, np.where(na[:, a], 6, ratings[:, a]))))
        fields = {"Rating": rating, "Rationale": rationale}
        if aspect in ("truthfulness", "helpfulness"):
            type_idx = np.where(ratings[:, a] == 5, 0, rng.integers(1, len(TYPE_CHOICES), m))
            type_col = pa.array(TYPE_CHOICES, pa.list_(pa.string())).take(pa.array(type_idx))
            type_rationale = join(pa.array([TYPE_RATIONALE[aspect]] * m), random_texts(rng, vocab, m, 5, 20))
            fields = {"Type": type_col, "Rationale": type_rationale, "Rating": rating, "Rationale For Rating": rationale}
        if missing[:, a].any():
            fields["Error"] = pa.array(np.where(missing[:, a], "judge reply had no rating", None), pa.string())
        annotations[aspect] = pa.StructArray.from_arrays(list(fields.values()), list(fields))
    fine_grained = np.where(rated.any(1), np.round(mean, 4), np.nan)

    # Duplicates: completion 1 repeats completion 0 in ~0.5% of prompts (half upper-cased, in new whitespace).
    dup_prompts = np.flatnonzero(rng.random(n) < 0.005)
    respaced = rng.random(len(dup_prompts)) < 0.5
    copies = response.take(pa.array(4 * dup_prompts))
    varied = pc.utf8_upper(join(pa.repeat(pa.scalar("\n"), len(copies)), copies, pa.repeat(pa.scalar("  "), len(copies)),
                                sep=""))
    copies = pc.if_else(pa.array(respaced, pa.bool_()), varied, copies)
    mask = np.zeros(m, bool)
    mask[4 * dup_prompts + 1] = True
    response = pc.replace_with_mask(response, pa.array(mask), copies)

    completion = pa.StructArray.from_arrays(
        [model, principle, system_prompt, response, pa.StructArray.from_arrays(list(annotations.values()),
                                                                               list(annotations)),
         critique, pa.array(overall), pa.array(fine_grained, from_pandas=True)],
        ["model", "principle", "custom_system_prompt", "response", "annotations", "critique", "overall_score",
         "fine-grained_score"])
    offsets = pa.array(np.arange(0, m + 1, 4, dtype=np.int32))
    is_tqa = pc.equal(source, "truthful_qa")
    answers = pa.array([[], ["a reference answer from the benchmark"]], pa.list_(pa.string()))
    table = pa.table({
        "source": source, "instruction": prompt,
        "models": pa.ListArray.from_arrays(offsets, model), "completions": pa.ListArray.from_arrays(offsets, completion),
        "correct_answers": answers.take(pc.cast(is_tqa, pa.int8())),
        "incorrect_answers": answers.take(pc.cast(is_tqa, pa.int8())),
    })
    truth = {
        "critique_disagreements": _pairs(planted_critique),
        "rationale_contradictions": [[int(r) // 4, int(r) % 4, ASPECTS[a]] for r, a in zip(*np.nonzero(flip))],
        "duplicate_prompts": dup_prompts.tolist(),
    }
    return table, truth


def _pairs(rows: np.ndarray) -> list[list[int]]:
    return [[int(r) // 4, int(r) % 4] for r in rows]


def benchmark(table: pa.Table, seed: int, size: int = 1000, planted: float = 0.01) -> tuple[pa.Table, list[dict], dict]:
    """MT-Bench-like questions; `planted` of them copied into the table's prompts (returned anew)."""
    rng = np.random.default_rng(seed + 1)
    vocab = Vocab(WORDS)
    first = random_texts(rng, vocab, size, 15, 60, end=b"?")
    second = random_texts(rng, vocab, size, 8, 25, end=b".")
    category = rng.integers(0, len(CATEGORIES), size)
    questions = [{"question_id": i + 1, "category": CATEGORIES[c], "turns": [a, b]}
                 for i, (c, a, b) in enumerate(zip(category, first.to_pylist(), second.to_pylist()))]
    n_planted = min(max(1, round(size * planted)), table.num_rows)
    which = rng.choice(size, n_planted, replace=False)
    where = rng.choice(table.num_rows, n_planted, replace=False)
    prompts = table.column("instruction").combine_chunks()
    context = random_texts(rng, vocab, 2 * n_planted, 5, 15).to_pylist()
    new, plants = [], {}
    for k, (q, row) in enumerate(zip(which, where)):
        text = questions[q]["turns"][0]
        embedded = k % 2 == 1
        new.append(f"{context[2 * k]} {text} {context[2 * k + 1]}" if embedded else text)
        plants[int(questions[q]["question_id"])] = {"record": int(row), "how": "embedded" if embedded else "verbatim"}
    order = np.argsort(where)
    mask = np.zeros(table.num_rows, bool)
    mask[where] = True
    prompts = pc.replace_with_mask(prompts, pa.array(mask), pa.array([new[i] for i in order], pa.string()))
    return table.set_column(table.schema.get_field_index("instruction"), "instruction", prompts), questions, plants


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=64_000, help="prompts (each with 4 completions)")
    parser.add_argument("--out", type=Path, default=Path("uf_synthetic.parquet"), help="Parquet file to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--benchmark", type=Path, help="also write 1,000 benchmark questions here (JSONL)")
    parser.add_argument("--truth", type=Path, help="write what was planted here (JSON)")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")
    started = time.perf_counter()
    table, truth = build(args.n, args.seed)
    if args.benchmark:
        table, questions, truth["benchmark_plants"] = benchmark(table, args.seed)
        args.benchmark.parent.mkdir(parents=True, exist_ok=True)
        args.benchmark.write_text("".join(json.dumps(q) + "\n" for q in questions))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, args.out, row_group_size=8192)
    if args.truth:
        args.truth.write_text(json.dumps(truth))
    print(json.dumps({"out": str(args.out), "prompts": table.num_rows, "completions": 4 * table.num_rows,
                      "bytes": args.out.stat().st_size, "seconds": round(time.perf_counter() - started, 2),
                      "planted": {k: len(v) for k, v in truth.items()}}))


if __name__ == "__main__":
    main()
