"""Evaluation: MT-Bench grading, pairwise win rates (length-controlled), the LM Eval Harness
bridge, and comparing two evaluation runs."""
