"""Where every artifact lives and what each model variant is called, so the stages and the report agree.

No heavy imports here: a stage that needs only a path must not depend on TensorFlow code.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stages.lib.core.settings import Convert, Settings

PREPARED = Path("data/prepared")
# elpv cells the default task leaves out (p = 1/3, 2/3), and the teacher's soft labels for students.
UNLABELED, TEACHER, TEACHER_METRICS = Path("data/unlabeled.npz"), Path("data/teacher.npz"), Path("metrics/teacher.json")
FIRMWARE = Path("models/firmware")
MODEL_FILE, META_FILE, PROBABILITIES_FILE = "model.keras", "meta.json", "test_probabilities.npy"
# In data/prepared, with `model.file`: the file, its SHA-256, input size and scaling, as `prepare` checked them.
OWN_MODEL_RECORD = "own_model.json"
MICRO_FOLDER, MICRO_METRICS, C_ARRAY_NAME = Path("models/micro"), Path("metrics/micro.json"), "edge_model"
# The deploy model under TFLite Micro's look-up-table compression, beside its C array in MICRO_FOLDER.
LUT_FILE = "int8_lut.tflite"
# The reference runner's C++ sources, copied into every board's firmware folder.
RUNNER_FOLDER = Path("firmware")
TRAIN_METRICS, DEPLOY_METRICS, PREPARE_METRICS = (
    Path("metrics/train.json"),
    Path("metrics/deploy.json"),
    Path("metrics/prepare.json"),
)
# What the on-demand student search stored (benchmarks/student_search.py); the report shows it.
SEARCH_FRONTIER = Path("benchmarks/results/student_search/frontier.json")
REPORT, SUMMARY, REPORT_FIGURES = Path("metrics/report.md"), Path("metrics/summary.json"), Path("plots/report")


def keras_folder(model: str) -> Path:
    """`baseline`, `pruned/0.5` or `deploy` -> its folder under models/."""
    return Path("models") / model


def tflite_folder(model: str) -> Path:
    return Path("models/tflite") / model


def tflite_path(model: str, fmt: str) -> Path:
    return tflite_folder(model) / f"{fmt}.tflite"


def device_path(model: str) -> Path:
    """A whole-image student's int8 file as a board stores it (`lut.device_model`): TFLite Micro reads it, LiteRT
    does not."""
    return tflite_folder(model) / "int8_device.tflite"


def patches_folder(model: str) -> Path:
    """A student's patch-based deployment (`patching`), beside its whole-image `.tflite`; absent when it has none."""
    return tflite_folder(model) / "patches"


def convert_metrics_path(model: str) -> Path:
    """One file per converted model, keyed by format: `metrics/convert/pruned/0.5.json`."""
    return Path("metrics/convert") / f"{model}.json"


def evaluate_metrics_path(model: str, fmt: str) -> Path:
    return Path("metrics/evaluate") / model / f"{fmt}.json"


def confusion_path(model: str, fmt: str) -> Path:
    return Path("plots/confusion") / model / f"{fmt}.json"


def tflm_confusion_path(model: str, fmt: str) -> Path:
    """Per-image predictions on TensorFlow Lite Micro (`evaluate --tflm`): what the device would answer."""
    return Path("plots/confusion") / model / f"{fmt}_tflm.json"


def validation_predictions_path(model: str, fmt: str) -> Path:
    """Per-image labels and probabilities on the validation split (`evaluate`): what the board pick pairs models on."""
    return Path("predictions/validation") / model / f"{fmt}.json"


def prune_metrics_path(sparsity: float) -> Path:
    return Path("metrics/prune") / f"{sparsity}.json"


def live_folder(stage: str) -> Path:
    """DVCLive's folder of a training stage: `train`, `prune/0.5`, `deploy/qat`, ..."""
    return Path("dvclive") / stage


def pruned_model(sparsity: float) -> str:
    return f"pruned/{sparsity}"


def student_model(name: str) -> str:
    return f"students/{name}"


def student_metrics_path(name: str) -> Path:
    return Path("metrics/students") / f"{name}.json"


def variant_name(model: str, fmt: str) -> str:
    """`pruned/0.5` + `int8` -> `pruned_50_int8`: no dot in a metric key, so DVC never reads it as nesting."""
    if model.startswith("pruned/"):
        model = f"pruned_{round(float(model.split('/', 1)[1]) * 100):g}"
    elif model.startswith("students/"):
        model = f"student_{model.split('/', 1)[1]}"
    return f"{model}_{fmt}"


def converted_formats(convert: Convert, model: str) -> list[str]:
    """The files `convert-<model>` writes: `convert.formats`, plus `<format>_sparse` for each of
    `convert.sparse_formats` when the model is pruned."""
    sparse = [f"{fmt}_sparse" for fmt in convert.sparse_formats]
    return [*convert.formats, *(sparse if model.startswith("pruned/") else [])]


def variants(params: Settings) -> list[tuple[str, str]]:
    """Every (model, format) the pipeline evaluates under these params: the report's rows, in order.

    Built from params, never from the files on disk: DVC leaves the outputs of stages that left the DAG.
    """
    models = ["baseline", *(pruned_model(sparsity) for sparsity in params.prune.sweep)]
    rows = [(model, fmt) for model in models for fmt in converted_formats(params.convert, model)]
    return rows + [("deploy", "int8")] + [(student_model(name), "int8") for name in params.students.run]
