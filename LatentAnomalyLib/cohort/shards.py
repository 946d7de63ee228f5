"""Sharding a batch across processes or machines: ``torchrun`` ranks or an explicit ``--shard i/n``.

Under ``torchrun`` (env ``RANK``/``WORLD_SIZE``) every rank takes ``cases[rank::world_size]``,
writes its rows to ``<out>/.shards/shard-<rank>-of-<world>.json``, and rank 0 waits for all
shard files and merges them into ``scores.csv``. Files on a shared folder are the only channel:
no process group is needed, so CPU-only ranks and ranks on machines without a fast interconnect
work the same way. A shard file carries torchrun's run id, so a file left by an earlier run is
never mistaken for this run's.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io.write import write_json

SHARDS = ".shards"


def parse_shard(text: str) -> tuple[int, int]:
    """``i/n`` (1-based) as a 0-based (index, count)."""
    match = re.fullmatch(r"(\d+)/(\d+)", text)
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise InputError(f"--shard must look like i/n with 1 <= i <= n, got {text!r}")
    return int(match.group(1)) - 1, int(match.group(2))


def distributed_rank() -> tuple[int, int, int | None]:
    """(rank, world size, local rank) from the torchrun environment; (0, 1, None) outside it."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    rank = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0)
    local = os.environ.get("LOCAL_RANK")
    if not 0 <= rank < world:
        raise InputError(f"RANK={rank} is outside WORLD_SIZE={world}")
    return rank, world, int(local) if local not in (None, "") else None


def run_id() -> str:
    return os.environ.get("TORCHELASTIC_RUN_ID") or os.environ.get("LATENT_ANOMALY_RUN_ID") or ""


def shard_path(out: Path, index: int, count: int) -> Path:
    return out / SHARDS / f"shard-{index}-of-{count}.json"


def write_shard(out: Path, index: int, count: int, case_ids: list[str], rows: list[dict[str, Any]]) -> Path:
    return write_json(
        {"run_id": run_id(), "index": index, "count": count, "case_ids": case_ids, "rows": rows},
        shard_path(out, index, count),
    )


def _load_shard(path: Path, expected_ids: list[str]) -> list[dict[str, Any]] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if data.get("run_id", "") != run_id() or data.get("case_ids") != expected_ids:
        return None
    return data["rows"]


def wait_for_shards(
    out: Path, count: int, expected: dict[int, list[str]], timeout_s: float, poll_s: float = 1.0
) -> list[dict[str, Any]]:
    """Rows of all ``count`` shards once each has written its file; refuse after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    rows: dict[int, list[dict[str, Any]]] = {}
    while True:
        for index in range(count):
            if index not in rows:
                found = _load_shard(shard_path(out, index, count), expected[index])
                if found is not None:
                    rows[index] = found
        if len(rows) == count:
            return [row for index in range(count) for row in rows[index]]
        if time.monotonic() > deadline:
            missing = ", ".join(str(i) for i in range(count) if i not in rows)
            raise InputError(
                f"{out}: rank(s) {missing} did not finish within {timeout_s:g} s; rerun to resume "
                "(finished cases are kept), or raise --shard-timeout"
            )
        time.sleep(poll_s)
