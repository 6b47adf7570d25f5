"""The per-run directory of a multiprocess run, read file by file: which process counted
what (each process writes `<type>_<pid>.db`; a scrape sums them all)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.mmap_dict import MmapedDict, mmap_key

FILE = re.compile(r"^counter_(\d+)\.db$")


def counted_by_pid(directory: Path, sample: str, **labels: str) -> dict[int, float]:
    """pid -> the counter sample `sample` with labels including these, per process file."""
    found: dict[int, float] = {}
    for path in directory.iterdir():
        match = FILE.match(path.name)
        if not match:
            continue
        total = 0.0
        read = MmapedDict.read_all_values_from_file(str(path))  # type: ignore[no-untyped-call]
        for key, value, _, _ in read:
            _, name, key_labels, _ = json.loads(key)
            if name == sample and labels.items() <= key_labels.items():
                total += value
        if total:
            found[int(match[1])] = total
    return found


def plant_counter(
    directory: Path, family: str, sample: str, labels: dict[str, str], help_text: str, value: float
) -> Path:
    """A counter file as a process of an earlier run would have left it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "counter_1.db"
    planted = MmapedDict(str(path))  # type: ignore[no-untyped-call]
    try:
        key = mmap_key(family, sample, list(labels), list(labels.values()), help_text)
        planted.write_value(key, value, 0.0)  # type: ignore[no-untyped-call]
    finally:
        planted.close()  # type: ignore[no-untyped-call]
    return path
