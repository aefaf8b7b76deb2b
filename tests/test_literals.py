"""No setting hides in the stage code: every number written in `stages/` is either a params.yaml key's value read at
run time or listed here with the reason it is not a setting (a unit, a file format, a published architecture, a
plot's layout, a check's bound). A new number fails this test until it moves to params.yaml or earns its line."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Indices, halves, doubling, "all but the last": structure, not settings.
TRIVIAL = {0, 1, 2, -1}
ALLOWED: dict[str, tuple[set[float], str]] = {
    "stages/lib/keras/backbones.py": (
        {0.001, 3, 4, 5, 6, 8, 16, 24, 32, 40, 80, 112, 120, 127.0, 128.0, 192, 224, 320, 1000, 1280},
        "EfficientNet-Lite0's published block table, BatchNorm epsilon, input scaling and ImageNet head",
    ),
    "stages/lib/firmware/c_array.py": ({12}, "bytes per line of the generated C array"),
    "stages/lib/report/cells.py": ({100, 1e6}, "units: percent, MB"),
    "stages/lib/report/comparison.py": ({100}, "unit: percentage points"),
    "stages/lib/firmware/contract.py": (
        {16, 32, 127, 128},
        "TFLM's 16-byte buffer alignment; the int8 range of the threshold search; printable ASCII (32-126)",
    ),
    "stages/lib/core/data.py": (
        {0.5, 3, 4, 255.0, 65535.0},
        "elpv's own rule (defective when p >= 0.5); RGB; the dihedral group's 4 turns x 2 flips; pixel ranges",
    ),
    "stages/lib/report/boards.py": ({1e6}, "unit: ns to ms"),
    "stages/lib/compress/clustering.py": (
        {0.5},
        "k-means starts from each channel's quantile midpoints (a definition)",
    ),
    "stages/lib/report/figures.py": (
        {0.05, 0.06, 0.07, 0.08, 0.1, 0.12, 0.3, 0.5, 0.7, 0.72, 0.8, 0.81, 0.9, 0.93, 1.02, 3, 4, 5, 5.5, 6, 7, 8}
        | {9, 10, 12, 15, 16, 100, 120, 1000.0, 1e6},
        "plot layout (sizes, margins, fonts, dpi) and units",
    ),
    "stages/lib/report/headline.py": (
        {3, 4},
        "decimals the metrics files show (the report and summary keep every digit)",
    ),
    "stages/lib/runtime/litert.py": (
        {3, 9, 10, 25, 50, 75, 90, 127, 128, 1000.0},
        "timing summary (warm-up invokes, percentiles, ms); gzip level 9; int8 range",
    ),
    "stages/lib/runtime/lut.py": (
        {3, 4, 7, 8, 9},
        "TFLite operator codes, the DECODE format's widest index, bits per byte",
    ),
    "stages/lib/keras/model.py": (
        {3, 32},
        "RGB input; the inference batch of predict() (throughput only: each image's output is its own)",
    ),
    "stages/lib/keras/own_model.py": (
        {0.485, 0.456, 0.406, 0.229, 0.224, 0.225, 3, 4, 127.5, 160, 255},
        "the published ImageNet mean and std and the pixel ranges of each input scaling; RGB images (n, n, 3) in a "
        "4-axis batch; an error message's length",
    ),
    "stages/lib/core/noise.py": ({5, 65536}, "stderr pipe buffer and join timeout (no output depends on them)"),
    "stages/lib/core/params.py": (
        {1e-06, 0.5, 0.75, 0.9, 4, 5, 8, 10, 14, 15, 16, 20, 31, 32, 64, 100, 256, 1024, 1e6},
        "the schema's bounds and the allowed `faster_share` values; the params file's size and nesting limits "
        "(they refuse a file, never change a result)",
    ),
    "stages/lib/compress/patch_models.py": ({3, 32}, "RGB; the inference batch of predict() (throughput only)"),
    "stages/lib/core/io.py": (
        {3, 6, 8, 40, 60, 120},
        "how much of a bad value an error line quotes (nesting, items, characters): never a result",
    ),
    "stages/lib/core/paths.py": ({100}, "unit: a sparsity as a percent in variant names"),
    "stages/lib/compress/pruning.py": (
        {0.5, 10},
        "the definition of `prune.epochs` (up to 50 %) and `epochs_per_10pp`",
    ),
    "stages/lib/keras/pth.py": (
        {4, 5, 8, 30, 1001, 119547037146038801333356},
        "PyTorch's legacy file format and the zip magic's length; the 1 GiB tensor bound (it refuses a file, "
        "never changes a result)",
    ),
    "stages/lib/compress/qat.py": ({8, 160}, "int8: 8-bit quantizers; an error message's length"),
    "stages/lib/core/scores.py": ({0.5}, "the neutral threshold, and the tie-break centre of the `accuracy` rule"),
    "stages/lib/runtime/tflite_bundle.py": (
        {16, 20, 256},
        "flatbuffer alignment and builder start sizes (output is the same)",
    ),
    "stages/lib/runtime/tflm.py": (
        {3, 16, 31, 64, 120, 1024},
        "TFLM's 16-byte alignment; the arena search's first size and 2 GiB cap (it finds the exact minimum "
        "from any start); a probe's timeout in seconds",
    ),
    "stages/lib/keras/training.py": ({8}, "the dihedral group's 8 views"),
    "stages/lib/report/verdicts.py": (
        {0.5, 0.7, 6},
        "the reference report's claims, as worded (part of each claim's text)",
    ),
    "stages/micro.py": ({4}, "decimals of a host timing in the metrics file"),
    "stages/prepare.py": ({3}, "RGB"),
    "stages/prune.py": ({3}, "how many layer names an error message lists"),
    "stages/report.py": ({1024, 1e6}, "units: KiB, millions of MACs"),
    "stages/student.py": ({100}, "unit: percentage points"),
}


def numbers(path: Path) -> set[float]:
    """Every int and float literal in a Python file, booleans excluded."""
    tree = ast.parse(path.read_text())
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and type(node.value) in (int, float) and node.value not in TRIVIAL
    }


def test_every_number_in_the_stages_is_a_param_or_listed():
    unexplained = {}
    for path in sorted((ROOT / "stages").rglob("*.py")):
        name = str(path.relative_to(ROOT))
        extra = numbers(path) - ALLOWED.get(name, (set(), ""))[0]
        if extra:
            unexplained[name] = sorted(extra)
    assert not unexplained, (
        f"numbers in stage code that are neither params nor listed in tests/test_literals.py: {unexplained}; "
        "move a setting to params.yaml, or list it with why it changes no result"
    )


def test_the_list_holds_only_numbers_still_in_the_code():
    stale = {name: sorted(allowed - numbers(ROOT / name)) for name, (allowed, _) in ALLOWED.items()}
    assert not {name: values for name, values in stale.items() if values}
