"""The validated `params.yaml` as frozen, typed sections: a function takes the section it uses (`Train`,
`Students`, ...), and reading a field records its dotted key for the trace test (`trace.PARAMS_READ`)."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from stages.lib.core import trace


class Section:
    """A frozen settings section that records the dotted key of every field read from it."""

    _prefix = ""  # a section built by `build` knows its dotted key; one from `dataclasses.replace` does not

    def __getattribute__(self, name: str) -> Any:
        value = object.__getattribute__(self, name)
        if name in type(self).__dataclass_fields__:
            trace.PARAMS_READ.add(object.__getattribute__(self, "_prefix") + name)
        return value

    def as_dict(self) -> dict[str, Any]:
        """The section as the plain mapping params.yaml holds (every field read)."""
        return {field.name: _plain(getattr(self, field.name)) for field in dataclasses.fields(self)}


class Named(Mapping):
    """A read-only mapping of name -> section (`students.shapes`, `report.targets`); reading a name records it."""

    def __init__(self, values: dict[str, Any], prefix: str) -> None:
        self._values, self._prefix = values, prefix

    def __getitem__(self, name: str) -> Any:
        trace.PARAMS_READ.add(self._prefix + name)
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        trace.PARAMS_READ.add(self._prefix.rstrip("."))
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def _plain(value: Any) -> Any:
    if isinstance(value, Section):
        return value.as_dict()
    if isinstance(value, Named):
        return {name: _plain(value[name]) for name in value}
    if isinstance(value, tuple):
        return list(value)
    return value


@dataclasses.dataclass(frozen=True)
class Split(Section):
    train: float
    validation: float
    test: float


@dataclasses.dataclass(frozen=True)
class Data(Section):
    source: str
    task: str
    positive_class: str
    image_size: int
    max_pixels: int
    max_images_per_class: int | None
    split: Split


@dataclasses.dataclass(frozen=True)
class Model(Section):
    file: str | None
    input_scaling: str
    fine_tune: bool
    backbone: str
    weights: str | None
    stop_after_block: int | None
    dense_units: int
    dropout: float


@dataclasses.dataclass(frozen=True)
class Train(Section):
    batch_size: int
    head_epochs: int
    head_learning_rate: float
    epochs: int
    learning_rate: float
    fine_tune_from_block: int
    cache_frozen: bool
    frozen_runtime: str
    early_stopping_patience: int
    best_epoch_metric: str
    learning_rate_floor: float
    augment: bool
    class_weight: str | None
    strategy: str


@dataclasses.dataclass(frozen=True)
class Prune(Section):
    sweep: tuple[float, ...]
    sparsity: float
    min_layer_weights: int
    fine_tune_from_block: int
    train_depthwise: bool
    epochs: int
    epochs_per_10pp: int
    chain: bool
    learning_rate: float
    learning_rate_schedule: str
    soft_label_weight: float
    mask_updates: int
    ramp_fraction: float
    ramp_power: float


@dataclasses.dataclass(frozen=True)
class Deploy(Section):
    method: str
    clusters: int
    cluster_epochs: int
    qat_epochs: int
    learning_rate: float
    calibration_batch: int


@dataclasses.dataclass(frozen=True)
class Convert(Section):
    formats: tuple[str, ...]
    sparse_formats: tuple[str, ...]
    representative_samples: int


@dataclasses.dataclass(frozen=True)
class Threshold(Section):
    rule: str
    logit_clip: float
    accuracy_decimals: int


@dataclasses.dataclass(frozen=True)
class Statistics(Section):
    confidence: float


@dataclasses.dataclass(frozen=True)
class Evaluate(Section):
    num_threads: int
    latency_runs: int


@dataclasses.dataclass(frozen=True)
class Micro(Section):
    test_images: int | None
    lut_min_saving_bytes: int


@dataclasses.dataclass(frozen=True)
class Distill(Section):
    teacher_views: int
    soft_label_weight: float
    unlabeled: bool


@dataclasses.dataclass(frozen=True)
class Patches(Section):
    grid: int
    through_block: int


@dataclasses.dataclass(frozen=True)
class Shape(Section):
    """One student: Lite0 stopped after a block at a resolution, its recipe and how a board runs it."""

    image_size: int
    stop_after_block: int
    expand_keep: dict[str, float]
    distill: bool
    epochs: int
    fine_tune_from_block: int
    patches: Patches | None
    clusters: int | None


@dataclasses.dataclass(frozen=True)
class Students(Section):
    run: tuple[str, ...]
    shapes: Mapping[str, Shape]
    dense_units: int
    dropout: float
    batch_size: int
    head_epochs: int
    head_learning_rate: float
    learning_rate: float
    cache_frozen: bool
    frozen_runtime: str
    early_stopping_patience: int
    cluster_min_weights: int


@dataclasses.dataclass(frozen=True)
class Firmware(Section):
    arena_margin: float


@dataclasses.dataclass(frozen=True)
class Claims(Section):
    reference_baseline_accuracy: float
    small_cost_pp: float
    faster_ratio: float
    faster_share: float
    high_accuracy: float


@dataclasses.dataclass(frozen=True)
class Board(Section):
    """A target board: its memories, the reserves the application keeps, and its published int8 speed."""

    description: str
    sram_bytes: int
    psram_bytes: int
    flash_bytes: int
    ram_reserve_bytes: int
    flash_reserve_bytes: int
    flash_images: int
    ns_per_mac: float
    ns_per_mac_source: str
    reference_ns_per_mac: float


@dataclasses.dataclass(frozen=True)
class Report(Section):
    bootstrap_resamples: int
    size_tolerance: float
    rank_by: str
    accuracy_floor: float
    claims: Claims
    targets: Mapping[str, Board]


@dataclasses.dataclass(frozen=True)
class Settings(Section):
    """Every section of params.yaml."""

    seed: int
    data: Data
    model: Model
    train: Train
    prune: Prune
    deploy: Deploy
    convert: Convert
    threshold: Threshold
    statistics: Statistics
    evaluate: Evaluate
    micro: Micro
    distill: Distill
    students: Students
    firmware: Firmware
    report: Report


def _section_type(annotation: Any) -> type | None:
    """The Section class an annotation names (`Patches | None` -> Patches), else None."""
    candidates = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    return next((c for c in candidates if isinstance(c, type) and issubclass(c, Section)), None)


def build(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    """A section of class `cls` from validated values; nested sections, named sections and tuples built in turn."""
    hints = typing.get_type_hints(cls)
    fields = {}
    for field in dataclasses.fields(cls):
        value, hint, key = values[field.name], hints[field.name], f"{prefix}{field.name}"
        section = _section_type(hint)
        if typing.get_origin(hint) is Mapping:
            inner = typing.get_args(hint)[1]
            value = Named({name: build(inner, item, f"{key}.{name}.") for name, item in value.items()}, f"{key}.")
        elif section is not None and value is not None:
            value = build(section, value, f"{key}.")
        elif typing.get_origin(hint) is tuple:
            value = tuple(value)
        fields[field.name] = value
    built = cls(**fields)
    object.__setattr__(built, "_prefix", prefix)
    return built
