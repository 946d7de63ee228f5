"""The post-processing settings, typed: :class:`PostprocessConfig` (every option, with its default) and
:class:`PostprocessOverrides` (a partial section, as the configuration files and bundles write them).

A training configuration sets post-processing twice: a common section (``postprocess``, e.g. within-scan
normalisation for every scorer) and a scorer's own (``scorers[i].postprocess``, which skips the search of
``training/calibrate.py``); each may name only some options. A bundle's scorer file holds the section it was
calibrated with. :class:`PostprocessOverrides` reads such a section (unknown options and wrong types refused in one
line), merges sections as a dict update does, applies them to a :class:`PostprocessConfig`, and writes back only the
options that were set, in the order they were given, so a section read and written again is the same JSON.
Standard library only: the bundle's torch-free readers use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ..errors import LatentAnomalyError


@dataclass(frozen=True)
class PostprocessConfig:
    """Every post-processing option (``score.postprocess.postprocess`` applies them); the defaults do nothing."""

    median_size: int = 0
    gaussian_sigma_vox: float = 0.0
    erode_mask_vox: int = 0
    scan_normalise: bool = False


OPTIONS = tuple(f.name for f in fields(PostprocessConfig))
"""The options a post-processing section may set, in :class:`PostprocessConfig`'s order."""

_TYPES: dict[str, tuple[type, ...]] = {
    "median_size": (int,),
    "gaussian_sigma_vox": (int, float),
    "erode_mask_vox": (int,),
    "scan_normalise": (bool,),
}


class PostprocessError(LatentAnomalyError):
    """A post-processing section that cannot be read (unknown option, wrong type, not an object)."""


def _check(where: str, name: str, value: Any) -> None:
    kinds = _TYPES[name]
    if isinstance(value, bool) != (kinds == (bool,)) or not isinstance(value, kinds):
        wanted = " or ".join(k.__name__ for k in kinds)
        raise PostprocessError(f"{where}: {name} must be {wanted}, got {value!r}")


@dataclass(frozen=True)
class PostprocessOverrides:
    """A partial post-processing section: an option left at ``None`` is not set (the base value stays).

    ``key_order`` lists the set options in the order they were given (completed in field order by the
    constructor); it only decides the order :meth:`to_dict` writes and takes no part in equality.
    """

    median_size: int | None = None
    gaussian_sigma_vox: float | None = None
    erode_mask_vox: int | None = None
    scan_normalise: bool | None = None
    key_order: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        given = tuple(k for k in dict.fromkeys(self.key_order) if k in OPTIONS and getattr(self, k) is not None)
        rest = tuple(k for k in OPTIONS if k not in given and getattr(self, k) is not None)
        object.__setattr__(self, "key_order", given + rest)

    @classmethod
    def from_dict(cls, data: Any, where: str = "postprocess") -> PostprocessOverrides:
        """The section ``data`` (a JSON object; ``None`` is an empty section), checked option by option;
        ``where`` names the section in the one-line :class:`PostprocessError`."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise PostprocessError(f"{where} must be a JSON object of options, got {type(data).__name__}")
        unknown = [str(k) for k in data if k not in OPTIONS]
        if unknown:
            raise PostprocessError(
                f"{where}: unknown option(s) {', '.join(map(repr, unknown))} (known: {', '.join(OPTIONS)})"
            )
        for name, value in data.items():
            _check(where, name, value)
        return cls(**dict(data), key_order=tuple(data))

    def to_dict(self) -> dict[str, Any]:
        """The set options only, in ``key_order``: the JSON the section was read from."""
        return {k: getattr(self, k) for k in self.key_order}

    @property
    def is_empty(self) -> bool:
        """True when no option is set."""
        return not self.key_order

    def merged(self, other: PostprocessOverrides) -> PostprocessOverrides:
        """This section updated by ``other`` (``other``'s set options win), ordered as ``{**self, **other}``."""
        values = {**self.to_dict(), **other.to_dict()}
        return PostprocessOverrides(**values, key_order=tuple(values))

    def apply(self, base: PostprocessConfig | None = None) -> PostprocessConfig:
        """``base`` (default: :class:`PostprocessConfig`'s defaults) with this section's set options."""
        return replace(base if base is not None else PostprocessConfig(), **self.to_dict())
