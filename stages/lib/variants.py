"""Where each model variant lives and what it is called, so every stage and the report agree."""
from __future__ import annotations

from pathlib import Path


def keras_folder(model: str) -> Path:
    """`baseline`, `pruned/0.5` or `deploy` -> its folder under models/."""
    return Path("models") / model


def tflite_path(model: str, fmt: str) -> Path:
    return Path("models/tflite") / model / f"{fmt}.tflite"


def convert_metrics_path(model: str, fmt: str) -> Path:
    return Path("metrics/convert") / model / f"{fmt}.json"


def evaluate_metrics_path(model: str, fmt: str) -> Path:
    return Path("metrics/evaluate") / model / f"{fmt}.json"


def confusion_path(model: str, fmt: str) -> Path:
    return Path("plots/confusion") / model / f"{fmt}.json"


def variant_name(model: str, fmt: str) -> str:
    """`pruned/0.5` + `int8` -> `pruned_50_int8`: no dot in a metric key, so DVC never reads it as nesting."""
    if model.startswith("pruned/"):
        model = f"pruned_{round(float(model.split('/', 1)[1]) * 100):g}"
    return f"{model}_{fmt}"
