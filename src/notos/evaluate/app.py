"""`notos eval ...`: the sub-commands live beside the code they run (cli_*.py) and register
themselves on this app when imported below."""

import typer

eval_app = typer.Typer(help="Evaluate models: MT-Bench, win rate vs a baseline, LM Eval Harness, compare runs.",
                       no_args_is_help=True)


def load_commands() -> typer.Typer:
    import importlib

    for module in ("cli_mt_bench", "cli_winrate"):
        try:
            importlib.import_module(f"notos.evaluate.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"notos.evaluate.{module}":
                raise
    return eval_app
