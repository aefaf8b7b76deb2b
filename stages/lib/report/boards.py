"""Whether a model fits a board: its measured arena and flash bytes against the board's memory, less the reserves."""

from __future__ import annotations

from typing import Any

from stages.lib.core.settings import Board
from stages.lib.report.rows import lut_compressed


def fit(model_bytes: int, arena_bytes: int, board: Board) -> dict[str, Any]:
    """Where the arena lands (internal SRAM, else PSRAM), what it uses, and what is short when it does not fit.

    RAM: arena + `ram_reserve_bytes` must fit in SRAM, or else in PSRAM. Flash: `flash_images` copies of the model
    (2 where the board updates over the air) + `flash_reserve_bytes` must fit in flash.
    """
    ram_needed = arena_bytes + board.ram_reserve_bytes
    if ram_needed <= board.sram_bytes:
        arena_memory = "internal SRAM"
    elif ram_needed <= board.psram_bytes:
        arena_memory = "PSRAM"
    else:
        arena_memory = None
    # The share of the memory the arena lands in; when it fits nowhere, of the largest.
    ram_capacity = {"internal SRAM": board.sram_bytes, "PSRAM": board.psram_bytes}.get(
        arena_memory, max(board.sram_bytes, board.psram_bytes)
    )
    flash_needed = board.flash_images * model_bytes + board.flash_reserve_bytes
    return {
        "fits": arena_memory is not None and flash_needed <= board.flash_bytes,
        "arena_memory": arena_memory or "does not fit",
        "ram_needed_bytes": ram_needed,
        "ram_use": ram_needed / ram_capacity,
        "ram_shortfall_bytes": max(0, ram_needed - ram_capacity),
        "flash_needed_bytes": flash_needed,
        "flash_use": flash_needed / board.flash_bytes,
        "flash_shortfall_bytes": max(0, flash_needed - board.flash_bytes),
    }


def shortfall(fit_result: dict[str, Any]) -> str:
    """Why a model does not fit, in words ("" when it fits)."""
    reasons = []
    if fit_result["ram_shortfall_bytes"]:
        reasons.append(
            f"arena + reserve needs {fit_result['ram_needed_bytes']:,} B, "
            f"{fit_result['ram_shortfall_bytes']:,} B more than the RAM"
        )
    if fit_result["flash_shortfall_bytes"]:
        reasons.append(
            f"flash needs {fit_result['flash_needed_bytes']:,} B, "
            f"{fit_result['flash_shortfall_bytes']:,} B more than the flash"
        )
    return "; ".join(reasons)


def estimated_ms(row: dict[str, Any], board: Board) -> float:
    """MACs x the board's published ns per MAC: an estimate from a reference model, not a measurement. A
    look-up-table-compressed model runs on TFLM's reference kernels (optimized libraries do not read compressed
    tensors), so it takes the board's reference-kernel rate."""
    rate = board.reference_ns_per_mac if lut_compressed(row) else board.ns_per_mac
    return row["multiply_accumulates"] * rate / 1e6
