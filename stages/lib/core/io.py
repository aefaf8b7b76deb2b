"""Atomic writes, JSON metrics and the error boundary every stage runs inside."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class UserError(Exception):
    """A problem the user can fix (bad params, bad input data): printed as one line, no traceback."""


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` only if the block succeeds.

    Writing beside the target keeps the rename on one file system, so readers (and DVC) see either
    the old artifact or the complete new one, never half of one.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(
            f"cannot create folder {target.parent}: {error.strerror}; check the path and its permissions"
        ) from None
    if not os.access(target.parent, os.W_OK):
        raise UserError(f"cannot write to {target.parent}: permission denied; make it writable or choose another path")
    # A stage killed mid-write (SIGKILL skips every cleanup) leaves its temporary behind; sweep it now.
    for stale in target.parent.glob(f".{target.name}.*"):
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix="".join(target.suffixes), dir=target.parent)
    os.close(handle)
    os.unlink(temporary)
    temporary = Path(temporary)
    try:
        yield temporary
        if temporary.is_dir() and target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        os.replace(temporary, target)
    finally:
        if temporary.is_dir():
            shutil.rmtree(temporary, ignore_errors=True)
        elif temporary.exists():
            temporary.unlink()


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False, default=_jsonable) + "\n")


def read_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _jsonable(value: Any) -> Any:
    # numpy scalars and arrays reach the metrics from every stage; store them as plain numbers.
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's `main`, turning a `UserError` into one line on stderr and exit status 2."""
    try:
        main()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
