"""Running a patch-based deployment (see `patch_models`): its plan, its RAM, and its answers on any interpreter.

A deployment is a folder: `parts.bin`, one blob holding an int8 TFLite model per patch position and one for the rest
of the network (the tail), with the weights they share stored once (`tflite_bundle`); `device.bin`, the same parts
stripped of what TFLite Micro never reads (`lut.strip`: what a board stores; LiteRT refuses it); and `plan.json`,
which says where each part starts in each blob, which input region each patch reads and which output region it
writes. A device runs the patch models one after another in one arena, writes each patch's int8 output into a buffer
for the whole block output (requantized to the tail's input scale, one multiply per byte), then runs the tail in the
same arena."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from stages.lib.runtime.outputs import probability_rows

Region = tuple[int, int, int, int]  # first row, row after the last, first column, column after the last
PLAN_FILE = "plan.json"
BUNDLE_FILE = "parts.bin"
DEVICE_FILE = "device.bin"
# A part on some interpreter: float input (1, h, w, c) in, its float (dequantized) output out.
PartRunner = Callable[[np.ndarray], np.ndarray]


def grid_regions(shape: tuple[int, int], grid: int) -> list[Region]:
    """A grid x grid split of a (rows, columns) map into near-equal regions, row-major."""
    if not 1 <= grid <= min(shape):
        raise ValueError(f"a {grid}x{grid} grid does not split a {shape[0]}x{shape[1]} map")
    rows, columns = (np.linspace(0, size, grid + 1).round().astype(int) for size in shape)
    return [
        (int(rows[i]), int(rows[i + 1]), int(columns[j]), int(columns[j + 1])) for i in range(grid) for j in range(grid)
    ]


def write_plan(folder: Path, plan: dict[str, Any]) -> None:
    (folder / PLAN_FILE).write_text(json.dumps(plan, indent=2) + "\n")


def read_plan(folder: str | Path) -> dict[str, Any]:
    return json.loads((Path(folder) / PLAN_FILE).read_text())


def parts(folder: str | Path, device: bool = False) -> list[tuple[str, bytes]]:
    """Every part of the deployment, the patches in plan order and then the tail, as its name and the TFLite model
    that starts at its offset in the blob (what a device hands `tflite::GetModel`); from the board's stripped blob
    when `device`."""
    plan = read_plan(folder)
    blob = (Path(folder) / (DEVICE_FILE if device else BUNDLE_FILE)).read_bytes()
    key = "device_offset" if device else "offset"
    return [(part["name"], blob[part[key] :]) for part in [*plan["patches"], plan["tail"]]]


def device_blob(folder: str | Path) -> tuple[bytes, dict[str, Any]]:
    """What a board stores and the plan with each part's offset in it."""
    plan = read_plan(folder)
    for part in [*plan["patches"], plan["tail"]]:
        part["offset"] = part.pop("device_offset")
    return (Path(folder) / DEVICE_FILE).read_bytes(), plan


def flash_bytes(folder: str | Path) -> int:
    """What a board stores: the stripped blob of every part."""
    return (Path(folder) / DEVICE_FILE).stat().st_size


def ram_bytes(plan: dict[str, Any], arenas: list[int]) -> int:
    """RAM the deployment needs: the largest part's arena (they run one at a time in it), the assembled block output
    and the whole int8 input image the patches are cut from (both held outside the arena)."""
    return max(arenas) + int(np.prod(plan["buffer_shape"])) + int(np.prod(plan["input_shape"]))


def predict(
    folder: str | Path,
    images: np.ndarray,
    open_part: Callable[[str, bytes], PartRunner],
    description: str,
    device: bool = False,
) -> np.ndarray:
    """P(class 1) (N x K for a softmax) for each image from the assembled deployment, one image at a time (the way
    a device runs it).

    Each patch's dequantized output goes into the block-output buffer; the tail's runner quantizes the buffer to its
    own input scale, which is the device's requantization of the patches' int8 outputs. `open_part` gets each part's
    name and model (the stripped one when `device`)."""
    plan = read_plan(folder)
    *patches, tail = (open_part(name, model) for name, model in parts(folder, device))
    rows = []
    for image in tqdm(images, desc=description, unit="image", mininterval=2, disable=not description):
        buffer = np.empty(plan["buffer_shape"], dtype=np.float32)
        for patch, run in zip(plan["patches"], patches, strict=True):
            r0, r1, c0, c1 = patch["input_region"]
            o0, o1, p0, p1 = patch["output_region"]
            buffer[o0:o1, p0:p1] = run(image[None, r0:r1, c0:c1])[0]
        rows.append(tail(buffer[None]))
    return probability_rows(rows)
