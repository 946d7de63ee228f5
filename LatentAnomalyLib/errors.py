"""Exceptions shared by every door (CLI, Slicer, tests), importable without imaging libraries.

Every error that is the user's to fix derives from :class:`LatentAnomalyError`: a bad input file
(:class:`InputError`), a bad command line (``cli.options.UsageError``), a brain that cannot be normalised
(``preprocess.normalize.NormalisationError``). The CLI reports any of them as one ``error:`` line with exit code 2.
"""


class LatentAnomalyError(ValueError):
    """Base of the errors reported to the user as one line without a traceback (a ``ValueError`` for old callers)."""


class InputError(LatentAnomalyError):
    """A problem with what the user gave us, reported as one line without a traceback."""
