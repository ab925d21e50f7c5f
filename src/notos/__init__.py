"""notos: data-first LLM alignment."""

from notos.version import __version__  # noqa: F401 - notos.__version__ is public


def __getattr__(name):
    # Lazy: `import notos` stays fast for the CLI; the engine loads on first use.
    if name in ("load_run", "run", "Pipeline", "step", "global_step", "source", "load_data", "from_rows"):
        import notos.pipeline as pipeline

        return getattr(pipeline, name)
    if name == "text_generation":
        from notos.tasks import text_generation

        return text_generation
    raise AttributeError(name)
