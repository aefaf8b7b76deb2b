"""The benchmarks' result records: one JSON line each, printed and appended to a file under benchmarks/results/."""

from __future__ import annotations

import json
from pathlib import Path


def append(path: Path, record: dict) -> None:
    line = json.dumps(record)
    print(line, flush=True)
    with path.open("a") as results:
        results.write(line + "\n")
