"""RAM and flash of patch-based deployments (`stages/lib/compress/patch_models.py`) against the whole-image model, for
Lite0 students of several depths, resolutions and grids, measured on the host TFLite Micro (int8).

Usage, from the repository root: python benchmarks/patch_arenas.py > benchmarks/results/patch_arenas.txt
A TFLM arena depends on the graph, not on weight values: each student is Lite0 with its ImageNet weights and an
untrained head, calibrated on 32 training images. Each line: the shape, the whole-image arena and flash, then per
grid the largest patch arena, the tail's arena, the RAM (largest part + assembled block output + int8 image) and
the flash of the parts' blob (shared weights stored once), and of the parts as separate files; then the same blob
and whole file stripped of what TFLM never reads (`lut.strip`: tensor names, the weights' per-channel zero points),
with RAM measured on the stripped parts.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stages.lib.compress import patch_models  # noqa: E402
from stages.lib.core import data, paths
from stages.lib.keras import conversion
from stages.lib.keras import model as model_lib  # noqa: E402
from stages.lib.runtime import lut, patching, tflite_bundle, tflm

# (input px, stop after block, through block, grids)
CASES = [
    (96, 7, 2, (2, 3)),
    (96, 7, 3, (2, 3)),
    (96, 8, 2, (2,)),
    (96, 10, 2, (2,)),
    (96, 10, 3, (3,)),
    (112, 7, 2, (3,)),
    (112, 7, 3, (3,)),
    (128, 7, 3, (3, 4)),
]


def main() -> None:
    train = data.load_split(paths.PREPARED, "train")[0][:32]
    for size, stop, block, grids in CASES:
        model = model_lib.build_classifier(size, "efficientnet_lite0", "bundled", 64, 0.3, stop, {})
        images = data.resize_all(train, size)
        with tempfile.TemporaryDirectory() as scratch:
            whole = Path(scratch) / "whole.tflite"
            whole.write_bytes(conversion.convert(model, "int8", images))
            stripped_whole, _ = lut.strip(whole.read_bytes())
            line = (
                f"b{stop} {size} px: whole {tflm.minimum_arena(whole):,} B arena, {whole.stat().st_size:,} B flash "
                f"({len(stripped_whole):,} B stripped)"
            )
            for grid in grids:
                folder = Path(scratch) / f"grid{grid}"
                folder.mkdir()
                plan = patch_models.convert_deployment(model, block, grid, images, folder, 1 << 30)  # no LUT
                arenas = [tflm.minimum_arena(part) for _, part in patching.parts(folder)]
                stripped = [lut.strip(part)[0] for _, part in patching.parts(folder)]
                stripped_ram = patching.ram_bytes(plan, [tflm.minimum_arena(part) for part in stripped])
                line += (
                    f"; blocks 0-{block} in {grid}x{grid}: largest patch {max(arenas[:-1]):,} B, tail {arenas[-1]:,} B,"
                    f" RAM {patching.ram_bytes(plan, arenas):,} B, flash {patching.flash_bytes(folder):,} B"
                    f" ({plan['separate_bytes']:,} B as separate files; stripped: flash"
                    f" {len(tflite_bundle.bundle(stripped)[0]):,} B, RAM {stripped_ram:,} B)"
                )
        print(line, flush=True)


if __name__ == "__main__":
    main()
