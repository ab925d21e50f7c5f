"""The version, at the floor: every package may read it without importing the `notos` facade."""

__version__ = "0.1.0"
