"""UIDs of the objects stored for a series, derived from what they are made of rather than drawn at random.

Why: a run killed after storing a SEG but before recording it must not store a second SEG on the restart. With the
UIDs derived from the source series, the model (name, version, scorer) and alpha, a rerun makes objects with the same
UIDs, so the PACS can be asked whether they are there already, and a PACS that receives one again keeps one copy.
Another model version or alpha gives other UIDs: a new result, stored beside the old one.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class ResultUids:
    """Series and SOP Instance UIDs of the SEG, the SR and the key-slices capture made for one source series."""

    seg_series: str
    seg_instance: str
    sr_series: str
    sr_instance: str
    sc_series: str
    sc_instance: str

    def series(self, key_slices: bool = False) -> dict[str, str]:
        """Kind -> series UID of the objects made (the key-slices capture only with ``key_slices``)."""
        made = {"seg": self.seg_series, "sr": self.sr_series}
        return made | {"sc": self.sc_series} if key_slices else made


def hashed_uid(*parts: str) -> str:
    """``2.25.<integer>``: a UID under the UUID root (ISO/IEC 9834-8) whose 128 bits are a SHA-256 of ``parts``, so
    the same parts give the same UID in every process (pydicom's ``generate_uid`` ignores its entropy sources
    without a prefix)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return f"2.25.{uuid.UUID(bytes=digest[:16], version=5).int}"


def result_uids(source_series: str, model_name: str, model_version: str, scorer: str, alpha: float) -> ResultUids:
    """The UIDs of the objects made for ``source_series`` by this model, scorer and alpha."""
    base = [source_series, model_name, model_version, scorer, f"{alpha:.6g}"]

    def uid(part: str) -> str:
        return hashed_uid(*base, part)

    parts = ("seg series", "seg instance", "sr series", "sr instance", "sc series", "sc instance")
    return ResultUids(*(uid(part) for part in parts))
