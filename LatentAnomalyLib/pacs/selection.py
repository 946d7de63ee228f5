"""Which MR series of the PACS are analysed: match rules on DICOM attributes of the series.

A rule is ``FIELD=REGEX`` (the attribute must match) or ``FIELD!=REGEX`` (it must not); FIELD is a DICOM keyword such
as SeriesDescription, ProtocolName, ScanningSequence, SequenceVariant, SequenceName or MRAcquisitionType. Matching is
``re.search``, case-insensitive, on the attribute's values joined by ``\\``; a missing attribute matches no ``=`` rule
and every ``!=`` rule. A series is analysed when every rule holds. The default takes the usual names of 3D T1
gradient-echo series and leaves out the other contrasts, localisers and derived series whose names may also say "T1"
(T1 FLAIR is kept out: the model learned T1 gradient-echo scans).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InputError

T1_NAMES = (
    r"mp-?rage|mp2rage|spgr|bravo|\btfe\b|tfe[_ ]|t1[-_ ]?tfe|t1[-_ ]?w|t1[-_ ]?weighted|\bt1\b|"
    r"(^|[^a-z0-9])t1([^a-z0-9]|$)|t1[-_ ]?3d|3d[-_ ]?t1|tfl3d|flash3d|ir[-_ ]?fspgr"
)
NOT_T1 = r"flair|t2|\bpd\b|dwi|diffusion|\badc\b|swi|scout|localizer|localiser|survey|\bmip\b|subtract"
DEFAULT_RULES = (f"SeriesDescription={T1_NAMES}", f"SeriesDescription!={NOT_T1}")


@dataclass(frozen=True)
class Rule:
    """One match rule: ``keyword`` must (``negate`` False) or must not (True) match ``pattern``."""

    keyword: str
    pattern: re.Pattern[str]
    negate: bool = False

    @property
    def tag(self) -> str:
        """The attribute's tag as QIDO-RS and DICOM JSON write it (8 hex digits)."""
        from pydicom.datadict import tag_for_keyword

        return f"{tag_for_keyword(self.keyword):08X}"

    def holds(self, value: str | None) -> bool:
        found = value is not None and self.pattern.search(value) is not None
        return not found if self.negate else found


def parse_rule(text: str) -> Rule:
    """``FIELD=REGEX`` or ``FIELD!=REGEX`` as a :class:`Rule`; one-line errors for an unknown field or a bad regex."""
    from pydicom.datadict import tag_for_keyword

    match = re.fullmatch(r"\s*([A-Za-z0-9]+)\s*(!?=)(.*)", text, flags=re.DOTALL)
    if not match:
        raise InputError(
            f"--series-match {text!r}: expected FIELD=REGEX or FIELD!=REGEX (e.g. SeriesDescription=mprage)"
        )
    keyword, operator, pattern = match.groups()
    if tag_for_keyword(keyword) is None:
        raise InputError(
            f"--series-match {text!r}: {keyword} is not a DICOM attribute keyword (e.g. SeriesDescription)"
        )
    try:
        compiled = re.compile(pattern, flags=re.IGNORECASE)
    except re.error as error:
        raise InputError(f"--series-match {text!r}: not a regular expression ({error})") from None
    return Rule(keyword, compiled, negate=operator == "!=")


def parse_rules(texts: Sequence[str] | None) -> list[Rule]:
    """The rules given, or :data:`DEFAULT_RULES` when none are."""
    return [parse_rule(text) for text in (texts or DEFAULT_RULES)]


def json_text(item: Mapping[str, Any], tag: str) -> str | None:
    """The values of ``tag`` in a DICOM JSON object joined by ``\\`` (person names by their alphabetic form)."""
    values = item.get(tag, {}).get("Value")
    if not values:
        return None
    return "\\".join(str(v.get("Alphabetic", "")) if isinstance(v, dict) else str(v) for v in values)


def selected(
    series: Mapping[str, Any], rules: Sequence[Rule], metadata: Callable[[], Mapping[str, Any] | None]
) -> bool:
    """Whether ``series`` (DICOM JSON of a QIDO-RS result) satisfies every rule; attributes the search did not return
    are read from one instance's metadata (``metadata()``, called at most once)."""
    instance: Mapping[str, Any] | None = None
    fetched = False
    for rule in rules:
        value = json_text(series, rule.tag)
        if value is None:
            if not fetched:
                instance, fetched = metadata(), True
            value = json_text(instance or {}, rule.tag)
        if not rule.holds(value):
            return False
    return True
