"""Exceptions shared by every door (CLI, Slicer, tests), importable without imaging libraries."""


class InputError(ValueError):
    """A problem with what the user gave us, reported as one line without a traceback."""
