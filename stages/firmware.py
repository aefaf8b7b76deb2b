"""Stage `firmware`: for every board, the firmware contract of the model the report recommends: `edge_model.h` (the
plan, every part's quantization, the preprocessing, the classes and the decision, the operators, the arena and the
RAM and flash counted), `edge_model_data.cc` (the model's bytes as the board stores them, or a patch deployment's
blob) and the reference runner that executes the plan (`firmware/`), which the tests run on the host against the
pipeline's own answers. A model stored under TFLite Micro's look-up-table compression (`micro`'s int8_lut, a
clustered student's device file) comes with a note on building TFLM for it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from stages.lib.core import params as params_lib
from stages.lib.core import paths
from stages.lib.core.io import atomic_path, read_json, run_stage, write_json
from stages.lib.firmware import c_array, contract
from stages.lib.report import rows
from stages.lib.runtime import patching

LUT_NOTE = """edge_model_data.cc holds the model under TensorFlow Lite Micro's look-up-table compression
(DECODE operators). Compile TFLite Micro with USE_TFLM_COMPRESSION defined (the DECODE kernel and the kernels'
decompression paths); edge_model_register_operators registers DECODE. Compressed kernels run on the reference
kernels (CMSIS-NN and ESP-NN do not read compressed tensors); edge_model_arena_bytes_measured includes the
decompression scratch.
"""


def board_model(row: dict[str, Any]) -> tuple[bytes, dict[str, Any] | None, dict[str, int]]:
    """What the board stores (the model, the compressed model or a deployment's blob), the patch plan (None for one
    whole-image model) and the RAM the report counted, term by term, the arena (the largest part's) first."""
    if row.get("deployment"):
        folder = paths.patches_folder(row["model"])
        deployment = row["deployment"]
        ram = {
            "largest part's arena": max(deployment["part_arena_bytes"]),
            "block-output buffer": deployment["buffer_bytes"],
            "image": deployment["input_bytes"],
        }
        return *patching.device_blob(folder), ram
    if row["model"].startswith("students/"):  # stripped, and compressed where that shrinks it (`student`)
        path = paths.device_path(row["model"])
    elif rows.lut_compressed(row):  # the look-up-table-compressed file `micro` checked
        path = paths.MICRO_FOLDER / paths.LUT_FILE
    else:
        path = paths.tflite_path(row["model"], row["format"])
    return (
        path.read_bytes(),
        None,
        {"arena": row["tflm_arena_bytes"], "image": row["ram_bytes"] - row["tflm_arena_bytes"]},
    )


def write_board(
    folder: Path, description: str, variant: str, row: dict[str, Any], classes: list[str], arena_margin: float
) -> None:
    """One board's folder: the contract header, the model's bytes, the runner (and the note for a compressed model)."""
    data, plan, ram = board_model(row)
    write_contract(folder, f"{description}: {variant}", data, plan, ram, row, classes, arena_margin)
    if rows.lut_compressed(row):
        (folder / "README.txt").write_text(LUT_NOTE)


def write_contract(
    folder: Path,
    description: str,
    data: bytes,
    plan: dict[str, Any] | None,
    ram: dict[str, int],
    row: dict[str, Any],
    classes: list[str],
    arena_margin: float,
) -> None:
    """`edge_model.h`, `edge_model_data.cc` and the runner's sources for the model `data` (a deployment's blob when
    `plan` is a patch plan), with the threshold of its report row and the RAM the report counted (`board_model`: the
    arena first)."""
    offsets = [part["offset"] for part in [*plan["patches"], plan["tail"]]] if plan else [0]
    parts = [contract.read_part(data, offset) for offset in offsets]
    name = paths.C_ARRAY_NAME
    stored = contract.Stored(parts, plan, row["threshold"], next(iter(ram.values())), ram, len(data))
    header = contract.header(name, description, stored, classes, arena_margin)
    (folder / f"{name}.h").write_text(header)
    (folder / f"{name}_data.cc").write_text(c_array.array_source(data, f"{name}_data", f"{name}.h"))
    for file in contract.RUNNER_FILES:
        shutil.copy(paths.RUNNER_FOLDER / file, folder / file)


def main() -> None:
    params = params_lib.load()
    summary = read_json(paths.SUMMARY)
    chosen = {}
    with atomic_path(paths.FIRMWARE) as folder:
        folder.mkdir()
        for board, choice in summary["recommendation"].items():
            chosen[board] = choice["variant"]
            if choice["variant"] is None:
                continue
            (folder / board).mkdir()
            description, variant = params.report.targets[board].description, choice["variant"]
            row = summary["variants"][variant]
            write_board(folder / board, description, variant, row, summary["classes"], params.firmware.arena_margin)
        write_json(folder / "boards.json", chosen)
    print("firmware: " + "; ".join(f"{board}: {variant}" for board, variant in chosen.items()))


if __name__ == "__main__":
    run_stage(main)
