"""Evaluation: MT-Bench and judged win rate as pipelines on the engine (mt_bench.py,
judged_winrate.py), the win-rate statistics (winrate.py), the LM Eval Harness bridge, comparing
two evaluation runs, and every `notos eval` command (cli.py). File formats live in notos.data."""
