"""Atomic writes, JSON metrics and the error boundary every stage runs inside."""

from __future__ import annotations

import json
import os
import reprlib
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class UserError(Exception):
    """A problem the user can fix (bad params, bad input data): printed as one line, no traceback."""


# An error line quotes at most this much of a bad value (a 10 MB list stays a one-line error).
QUOTE_CHARACTERS = 120


def cut(text: str) -> str:
    """`text`, cut with `...` to `QUOTE_CHARACTERS`."""
    return text if len(text) <= QUOTE_CHARACTERS else text[: QUOTE_CHARACTERS - 3] + "..."


def quote(value: Any) -> str:
    """A short repr of a value for an error line: nested and long values are cut with `...`."""
    short = reprlib.Repr()
    short.maxlevel, short.maxlist, short.maxdict, short.maxstring, short.maxother, short.maxlong = 3, 8, 6, 60, 60, 40
    return cut(short.repr(value))


# While a stage runs (`run_stage`), its finished outputs wait here as (temporary, target), and outputs it no longer
# writes as (None, target): all are moved into place only when the stage's `main` returns, so a stage that fails
# half-way replaces none of its outputs. Outside a stage run (None), each output is moved into place at once.
_PENDING: list[tuple[Path | None, Path]] | None = None
# The temporaries being written now: a file written inside one is part of it, so it moves into place at once.
_OPEN: set[Path] = set()


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` only if the block succeeds (inside a stage
    run: once the whole stage has succeeded).

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
    waiting = {temporary for temporary, _ in _PENDING or [] if temporary is not None}
    # A stage killed mid-write (SIGKILL skips every cleanup) leaves its temporary behind; sweep it now.
    for stale in target.parent.glob(f".{target.name}.*"):
        if stale not in waiting:
            _remove(stale)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix="".join(target.suffixes), dir=target.parent)
    os.close(handle)
    os.unlink(temporary)
    temporary = Path(temporary)
    inside = any(target.is_relative_to(folder) for folder in _OPEN)
    _OPEN.add(temporary)
    moved = False
    try:
        yield temporary
        if _PENDING is None or inside:
            _replace(temporary, target)
        else:
            _defer(temporary, target)
        moved = True
    finally:
        _OPEN.discard(temporary)
        if not moved:
            _remove(temporary)


def remove_output(target: str | Path) -> None:
    """Remove an output the stage no longer writes (a stale one would be read as this run's): at once, or inside a
    stage run when the stage has succeeded."""
    if _PENDING is None:
        _remove(Path(target))
    else:
        _defer(None, Path(target))


def _defer(temporary: Path | None, target: Path) -> None:
    for earlier in [entry for entry in _PENDING if entry[1] == target]:  # written twice: the last one counts
        _PENDING.remove(earlier)
        if earlier[0] is not None:
            _remove(earlier[0])
    _PENDING.append((temporary, target))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _replace(temporary: Path, target: Path) -> None:
    if temporary.is_dir() and target.exists():
        _remove(target)
    os.replace(temporary, target)


@contextmanager
def staged_outputs() -> Iterator[None]:
    """Hold every output written inside the block until it succeeds; then move them all into place, in the order
    written. On an error, every temporary is removed and no output is replaced."""
    global _PENDING
    outer, _PENDING = _PENDING, []
    pending = _PENDING
    try:
        yield
    except BaseException:
        for temporary, _ in pending:
            if temporary is not None:
                _remove(temporary)
        raise
    finally:
        _PENDING = outer
    for temporary, target in pending:
        if temporary is None:
            _remove(target)
        else:
            _replace(temporary, target)


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
    """Run a stage's `main`, turning a `UserError` into one line on stderr and exit status 2; its outputs move into
    place only when `main` succeeds (`staged_outputs`)."""
    try:
        with staged_outputs():
            main()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
