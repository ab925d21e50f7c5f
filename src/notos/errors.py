"""User-facing errors: one line, no traceback, a non-zero exit.

Anything a user can cause (a bad file, option or column) raises `NotosError` with a message
that names the file, step, column or option. The CLI prints it on one line and exits 2.
"""


class NotosError(Exception):
    """An error caused by input or configuration, reported as one line."""


class GraphError(NotosError):
    """The pipeline graph is invalid (missing column, cycle, unknown option, ...)."""


class DataError(NotosError):
    """A data file is missing, unreadable or malformed."""


def require_extra(module: str, extra: str):
    """Import an optional heavy dependency, or fail with the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise NotosError(
            f"this feature needs the optional package '{module}': pip install 'notos[{extra}]' ({exc})"
        ) from None
