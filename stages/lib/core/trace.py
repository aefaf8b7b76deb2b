"""What a stage run reads — params keys and files — so a test can check that dvc.yaml declares exactly that.

Off unless EDGE_OPT_TRACE_DIR names a folder; then each stage process writes one JSON file there at exit, holding
what it and its worker processes (TFLite Micro runs on every core) read.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from pathlib import Path
from typing import Any

ENV = "EDGE_OPT_TRACE_DIR"
# The stage process's pid, set by the stage and inherited by its workers: a worker's reads join the stage's record.
OWNER_ENV = "EDGE_OPT_TRACE_OWNER"
PARAMS_READ: set[str] = set()
FILES_READ: set[str] = set()
_IGNORED = ("stages/", ".dvc/", ".git/", ".venv/", "params.yaml", "dvc.yaml", "dvc.lock")


def params_read() -> list[str]:
    """The keys read, most specific only (`train.batch_size`, not also `train`)."""
    return sorted(p for p in PARAMS_READ if not any(q.startswith(f"{p}.") for q in PARAMS_READ))


def _on_audit(event: str, args: tuple) -> None:
    if event != "open" or not isinstance(args[0], (str, Path)):
        return
    path, mode, flags = args
    reading = ("r" in mode and "+" not in mode) if mode else (flags or 0) & os.O_ACCMODE == os.O_RDONLY
    if reading:
        FILES_READ.add(os.path.abspath(path))


def _record() -> dict[str, Any]:
    root = Path.cwd()
    files = set()
    for path in FILES_READ:
        relative = os.path.relpath(path, root)
        if not relative.startswith(("..", *_IGNORED)) and Path(path).is_file():
            files.add(relative)
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return {
        "module": spec.name if spec else sys.argv[0],
        "args": sys.argv[1:],
        "params": params_read(),
        "files": sorted(files),
    }


def _write(folder: Path, owner: int) -> None:
    """A worker leaves its reads as a part file; the stage process, exiting after its workers, merges them in."""
    record = _record()
    if owner != os.getpid():
        (folder / f"{owner}.worker-{os.getpid()}.part").write_text(json.dumps(record))
        return
    for part in sorted(folder.glob(f"{owner}.worker-*.part")):
        worker = json.loads(part.read_text())
        record["params"] = sorted({*record["params"], *worker["params"]})
        record["files"] = sorted({*record["files"], *worker["files"]})
        part.unlink()
    (folder / f"{owner}.json").write_text(json.dumps(record, indent=1))


def start() -> None:
    """Record reads from now on and write them at exit, when EDGE_OPT_TRACE_DIR is set.

    A stage's worker processes inherit the stage's pid through the environment and record as part of the stage.
    (A spawned worker imports the stage's module before multiprocessing marks it as a child, so
    `multiprocessing.parent_process()` cannot tell it apart.)"""
    folder = os.environ.get(ENV)
    if folder:
        owner = int(os.environ.setdefault(OWNER_ENV, str(os.getpid())))
        sys.addaudithook(_on_audit)
        atexit.register(_write, Path(folder), owner)
