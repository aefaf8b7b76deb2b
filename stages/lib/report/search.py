"""The searched student space (`benchmarks/student_search.py`, run on demand) as the report shows it: only when the
stored search ran on this run's teacher (its soft labels' md5), since its scores are of that teacher's students."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from stages.lib.report.cells import mb


def file_md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def load(frontier: Path, teacher: Path) -> tuple[dict[str, Any] | None, str]:
    """The stored search, or None and why it is not shown."""
    if not frontier.exists():
        return None, f"No search is stored (`{frontier}`): `python benchmarks/student_search.py` runs one."
    record = json.loads(frontier.read_text(encoding="utf-8"))
    if record.get("teacher_md5") != file_md5(teacher):
        return None, (
            f"The stored search (`{frontier}`) ran on another teacher than this run's, so its scores do not apply: "
            "`python benchmarks/student_search.py` reruns it."
        )
    return record, ""


def _candidate(rows: dict[str, dict[str, Any]], name: str) -> str:
    row = rows[name]
    return f"`{name}` ({row['ram_bytes']:,} B RAM, {mb(row['flash_bytes'])}, AUC {row['full_auc']:.4f})"


def lines(record: dict[str, Any], level: str) -> list[str]:
    """Per board: how many candidates fit, were trained in full, the best, the pick and the ties."""
    correlation = record["proxy_rank_correlation"]
    out = [
        f"Searched: {record['searched']} candidates of {record['architectures']} architectures; the proxy "
        f"({record['space']['proxy']['epochs']} epochs) ranked them, and its order agreed with the full recipe's "
        f"int8 validation AUC with Spearman ρ = {correlation['spearman']:.2f} (p = {correlation['p_value']:.3g}) over "
        f"the {correlation['architectures']} architectures trained in full (one seed each; validation only).",
        "",
        f"| board | fit / searched | trained in full and fit | best | pick | tied with the best ({level} paired) |",
        "|---|---|---|---|---|---|",
    ]
    for board, entry in record["boards"].items():
        rows = {row["name"]: row for row in entry["candidates"]}
        fitting = [row for row in entry["candidates"] if row["fits"]]
        trained = [row for row in fitting if row["full_auc"] is not None]
        if entry["pick"] is None:
            out.append(f"| {board} | {len(fitting)} / {len(rows)} | 0 | none | none | |")
            continue
        tied = f"{len(entry['tied'])}, of " + ", ".join(f"`{arch}`" for arch in entry["tied_architectures"])
        out.append(
            f"| {board} | {len(fitting)} / {len(rows)} | {len(trained)} | {_candidate(rows, entry['best'])} "
            f"| {_candidate(rows, entry['pick'])} | {tied} |"
        )
    return out
