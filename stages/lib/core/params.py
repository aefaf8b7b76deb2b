"""Load and validate `params.yaml` once; every error names the key, the value and what is allowed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent

from stages.lib.core import settings
from stages.lib.core.io import UserError, cut, quote
from stages.lib.core.settings import Settings

BACKBONES = ("efficientnet_lite0", "efficientnet_b0")
WEIGHTS = ("bundled", "imagenet", None)
# How a model of your own scales raw 0-255 pixels (`model.input_scaling`; the factors: keras/own_model.py).
INPUT_SCALINGS = ("0-255", "0-1", "-1-1", "imagenet")
# The folder a model of your own lives in (`model.file`): `prepare` depends on it.
OWN_MODEL_FOLDER = "models/own"
TASKS = ("functional_vs_defective", "paper", "defect_levels")
FORMATS = ("float32", "float16", "dynamic", "int8")
DEPLOY_METHODS = ("pqat", "pcqat")
STRATEGIES = ("auto", "default", "mirrored")
CLASS_WEIGHTS = ("balanced", None)
# What runs a student's frozen blocks for its cache: the float32 `.tflite` on LiteRT (XNNPACK), or Keras.
FROZEN_RUNTIMES = ("litert", "keras")
# What ranks a board's candidates, and how the report names it: LiteRT int8 scores on the validation split
# (`evaluate` writes both).
RANKINGS = {"validation_roc_auc": "validation ROC AUC", "validation_accuracy": "validation accuracy"}
# How a model's decision threshold is chosen on validation (`scores.decision_threshold`), and how the report says it.
THRESHOLD_RULES = {
    "logistic": "where a logistic fit of the label on the probability's logit crosses 1/2",
    "accuracy": "the best validation accuracy",
}
# `report.claims.faster_share` -> the quantile of the paired speed-ups that `share` of them reach or exceed.
SHARE_QUANTILES = {0.5: "median", 0.75: "p25", 0.9: "p10"}
# What picks a fine-tune's best epoch on validation (`train.best_epoch_metric`).
BEST_EPOCH_METRICS = ("auc", "accuracy", "loss")
# Keys that moved or went: an old params.yaml gets told where they went.
MOVED = {
    "report.rank_tolerance": "nowhere: a paired bootstrap on validation decides ties (`statistics.confidence`, "
    "`report.bootstrap_resamples`); delete the key",
    "students.epochs": "students.shapes.<name>.epochs (each student has its own)",
    "students.fine_tune_from_block": "students.shapes.<name>.fine_tune_from_block (each student has its own)",
}

Check = Callable[[str, Any], None]
# The largest params file read (the default is ~16 KB): a bigger one is refused before parsing, which takes seconds
# per megabyte.
MAX_BYTES = 1 << 20
# How deep params.yaml may nest (the default nests 5 deep): deeper is refused before it is built.
MAX_DEPTH = 32


def _fail(key: str, value: Any, allowed: str) -> None:
    raise UserError(f"params.yaml: `{key}` is {quote(value)}; {allowed}")


def integer(low: int, high: int | None = None) -> Check:
    def check(key: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
            _fail(key, value, f"expected an integer >= {low}" + (f" and <= {high}" if high is not None else ""))

    return check


def number(low: float, high: float, low_open: bool = False, high_open: bool = False) -> Check:
    def check(key: str, value: Any) -> None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
        if not ok:
            _fail(
                key, value, f"expected a number in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
            )

    return check


def one_of(*choices: Any) -> Check:
    def check(key: str, value: Any) -> None:
        if value not in choices:
            _fail(key, value, "expected one of " + ", ".join(repr(c) for c in choices))

    return check


def text(key: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        _fail(key, value, "expected a non-empty string")


def boolean(key: str, value: Any) -> None:
    if not isinstance(value, bool):
        _fail(key, value, "expected true or false")


def optional(inner: Check) -> Check:
    def check(key: str, value: Any) -> None:
        if value is not None:
            inner(key, value)

    return check


def list_of(inner: Check, unique: bool = True, empty: bool = False) -> Check:
    def check(key: str, value: Any) -> None:
        if not isinstance(value, list) or not (value or empty):
            _fail(key, value, "expected a non-empty list")
        for index, item in enumerate(value):
            inner(f"{key}[{index}]", item)
        if unique and len(set(value)) != len(value):
            _fail(key, value, "expected no duplicate values")

    return check


TARGET_SCHEMA = {
    "description": text,
    "sram_bytes": integer(1),
    "psram_bytes": integer(0),
    "flash_bytes": integer(1),
    "ram_reserve_bytes": integer(0),
    "flash_reserve_bytes": integer(0),
    "flash_images": integer(1, 2),
    "ns_per_mac": number(0, 1e6, low_open=True),
    "ns_per_mac_source": text,
    "reference_ns_per_mac": number(0, 1e6, low_open=True),
}


def expand_keep(key: str, value: Any) -> None:
    """{`block<N>`: fraction of that block's expand channels kept}; {} keeps Lite0's widths."""
    if not isinstance(value, dict):
        _fail(key, value, "expected a mapping like {block1: 0.5} ({} keeps every channel)")
    for name, keep in value.items():
        if not (isinstance(name, str) and name.startswith("block") and name[5:].isdigit() and 1 <= int(name[5:]) <= 15):
            _fail(f"{key}.{name}", keep, "expected keys block1 ... block15 (block 0 has no expand layer)")
        number(0, 1, low_open=True)(f"{key}.{name}", keep)


def expand_keep_by_block(value: dict[str, float]) -> dict[int, float]:
    """{block1: 0.5} -> {1: 0.5}, the form the backbone takes."""
    return {int(name[5:]): keep for name, keep in value.items()}


PATCH_SCHEMA = {"grid": integer(2, 8), "through_block": integer(0, 14)}


def patches(key: str, value: Any) -> None:
    """null (the whole image at once) or {grid, through_block}: blocks up to `through_block` run per patch."""
    if value is not None:
        _validate(value, PATCH_SCHEMA, key)


STUDENT_SCHEMA = {
    "image_size": integer(32, 1024),
    "stop_after_block": integer(0, 15),
    "expand_keep": expand_keep,
    "distill": boolean,
    "epochs": integer(1),
    "fine_tune_from_block": integer(0, 15),
    "patches": patches,
    "clusters": optional(integer(2, 256)),
}


def shapes(key: str, value: Any) -> None:
    if not isinstance(value, dict) or not value:
        _fail(key, value, "expected a mapping of student name to {" + ", ".join(STUDENT_SCHEMA) + "}")
    for name, shape in value.items():
        if not isinstance(name, str) or not name.replace("_", "").isalnum():
            _fail(f"{key}.{name}", name, "expected a name of letters, digits and underscores")
        _validate(shape, STUDENT_SCHEMA, f"{key}.{name}")
        if shape["patches"] and shape["patches"]["through_block"] >= shape["stop_after_block"]:
            _fail(
                f"{key}.{name}.patches.through_block",
                shape["patches"]["through_block"],
                f"expected a block before the last ({shape['stop_after_block']}): the rest runs on the assembled map",
            )


def targets(key: str, value: Any) -> None:
    if not isinstance(value, dict) or not value:
        _fail(key, value, "expected a mapping of board name to {" + ", ".join(TARGET_SCHEMA) + "}")
    for name, target in value.items():
        _validate(target, TARGET_SCHEMA, f"{key}.{name}")


SCHEMA: dict[str, Any] = {
    "seed": integer(0),
    "data": {
        "source": text,
        "task": one_of(*TASKS),
        "positive_class": text,
        "image_size": integer(32, 1024),
        "max_pixels": integer(1024, 1 << 31),
        "max_images_per_class": optional(integer(4)),
        "split": {
            "train": number(0, 1, True, True),
            "validation": number(0, 1, True, True),
            "test": number(0, 1, True, True),
        },
    },
    "model": {
        "file": optional(text),
        "input_scaling": one_of(*INPUT_SCALINGS),
        "fine_tune": boolean,
        "backbone": one_of(*BACKBONES),
        "weights": one_of(*WEIGHTS),
        "stop_after_block": optional(integer(0, 15)),
        "dense_units": integer(1),
        "dropout": number(0, 1, high_open=True),
    },
    "train": {
        "batch_size": integer(1),
        "head_epochs": integer(0),
        "head_learning_rate": number(0, 1, low_open=True),
        "epochs": integer(1),
        "learning_rate": number(0, 1, low_open=True),
        "fine_tune_from_block": integer(0, 16),
        "cache_frozen": boolean,
        "frozen_runtime": one_of(*FROZEN_RUNTIMES),
        "early_stopping_patience": integer(1),
        "best_epoch_metric": one_of(*BEST_EPOCH_METRICS),
        "learning_rate_floor": number(0, 1, high_open=True),
        "augment": boolean,
        "class_weight": one_of(*CLASS_WEIGHTS),
        "strategy": one_of(*STRATEGIES),
    },
    "prune": {
        "sweep": list_of(number(0, 1, True, True)),
        "sparsity": number(0, 1, True, True),
        "min_layer_weights": integer(0),
        "fine_tune_from_block": integer(0),
        "train_depthwise": boolean,
        "epochs": integer(1),
        "epochs_per_10pp": integer(0),
        "chain": boolean,
        "learning_rate": number(0, 1, low_open=True),
        "learning_rate_schedule": one_of("cosine", "constant"),
        "soft_label_weight": number(0, 1),
        "mask_updates": integer(1),
        "ramp_fraction": number(0, 1, low_open=True),
        "ramp_power": number(0, 10, low_open=True),
    },
    "deploy": {
        "method": one_of(*DEPLOY_METHODS),
        "clusters": integer(2, 256),
        "cluster_epochs": integer(0),
        "qat_epochs": integer(1),
        "learning_rate": number(0, 1, low_open=True),
        "calibration_batch": integer(1),
    },
    "convert": {
        "formats": list_of(one_of(*FORMATS)),
        "sparse_formats": list_of(one_of("int8", "dynamic", "float32")),
        "representative_samples": integer(1),
    },
    "threshold": {
        "rule": one_of(*THRESHOLD_RULES),
        "logit_clip": number(0, 0.5, low_open=True, high_open=True),
        "accuracy_decimals": integer(1, 8),
    },
    "statistics": {"confidence": number(0.5, 1, high_open=True)},
    "evaluate": {"num_threads": integer(1, 64), "latency_runs": integer(1)},
    "micro": {"test_images": optional(integer(1)), "lut_min_saving_bytes": integer(0)},
    "distill": {
        "teacher_views": integer(1, 8),
        "soft_label_weight": number(0, 1),
        "unlabeled": boolean,
    },
    "students": {
        "run": list_of(text, empty=True),
        "shapes": shapes,
        "dense_units": integer(1),
        "dropout": number(0, 1, high_open=True),
        "batch_size": integer(1),
        "head_epochs": integer(0),
        "head_learning_rate": number(0, 1, low_open=True),
        "learning_rate": number(0, 1, low_open=True),
        "cache_frozen": boolean,
        "frozen_runtime": one_of(*FROZEN_RUNTIMES),
        "early_stopping_patience": integer(1),
        "cluster_min_weights": integer(1),
    },
    "firmware": {"arena_margin": number(0, 1)},
    "report": {
        "bootstrap_resamples": integer(100),
        "size_tolerance": number(0, 1),
        "rank_by": one_of(*RANKINGS),
        "accuracy_floor": number(0, 1),
        "claims": {
            "reference_baseline_accuracy": number(0, 1, low_open=True),
            "small_cost_pp": number(0, 100),
            "faster_ratio": number(1, 100),
            "faster_share": one_of(*SHARE_QUANTILES),
            "high_accuracy": number(0, 1),
        },
        "targets": targets,
    },
}


def _validate(values: Any, schema: dict[str, Any], prefix: str) -> None:
    if not isinstance(values, dict):
        _fail(prefix, values, "expected a mapping with keys " + ", ".join(schema))
    for key in values:
        if key not in schema:
            where = f"{prefix}.{key}".lstrip(".")
            if where in MOVED:
                _fail(where, values[key], f"this key moved to `{MOVED[where]}`")
            _fail(where, values[key], "unknown key; allowed here: " + ", ".join(schema))
    for key, rule in schema.items():
        name = f"{prefix}.{key}".lstrip(".")
        if key not in values:
            raise UserError(f"params.yaml: `{name}` is missing; add it (see the default params.yaml)")
        if isinstance(rule, dict):
            _validate(values[key], rule, name)
        else:
            rule(name, values[key])


def _check_fine_tune_block(key: str, config: dict[str, Any], stop: int | None, whose: str = "the model") -> None:
    if stop is not None and config["fine_tune_from_block"] > stop:
        _fail(
            key,
            config["fine_tune_from_block"],
            f"{whose} ends after block {stop}: expected at most {stop}, or only its head would train",
        )


def validate(params: dict[str, Any]) -> dict[str, Any]:
    """Check every key, then the rules that tie keys together; return `params` unchanged."""
    _validate(params, SCHEMA, "")
    split = params["data"]["split"]
    if abs(sum(split.values()) - 1.0) > 1e-6:
        _fail("data.split", split, "expected train + validation + test to sum to 1")
    if params["prune"]["sparsity"] not in params["prune"]["sweep"]:
        _fail(
            "prune.sparsity",
            params["prune"]["sparsity"],
            f"expected one of `prune.sweep` {params['prune']['sweep']}: deploy starts from that pruned model",
        )
    if "float32" not in params["convert"]["formats"]:
        _fail(
            "convert.formats",
            params["convert"]["formats"],
            "expected float32 among them: every variant is compared with, and timed against, the float32 baseline",
        )
    unknown = [name for name in params["students"]["run"] if name not in params["students"]["shapes"]]
    if unknown:
        _fail("students.run", params["students"]["run"], f"{unknown} not in `students.shapes`; define them there")
    _check_fine_tune_block("train.fine_tune_from_block", params["train"], params["model"]["stop_after_block"])
    for name in params["students"]["run"]:
        shape = params["students"]["shapes"][name]
        key = f"students.shapes.{name}.fine_tune_from_block"
        _check_fine_tune_block(key, shape, shape["stop_after_block"], f"student {name}")
    own = params["model"]["file"]
    if own is not None and (Path(own).is_absolute() or Path(own).parts[:2] != tuple(OWN_MODEL_FOLDER.split("/"))):
        _fail("model.file", own, f"expected a path under {OWN_MODEL_FOLDER}/ (the folder DVC watches); move it there")
    if params["model"]["stop_after_block"] is not None and params["model"]["backbone"] != "efficientnet_lite0":
        _fail("model.stop_after_block", params["model"]["stop_after_block"], "only Lite0 stops early; use null")
    if params["model"]["weights"] == "bundled" and params["model"]["backbone"] != "efficientnet_lite0":
        _fail(
            "model.weights",
            "bundled",
            "bundled weights exist only for `model.backbone: efficientnet_lite0`; use `imagenet` (online) or null",
        )
    return params


def load(path: str | Path = "params.yaml") -> Settings:
    """Read and validate the params file, as typed sections."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise UserError(f"{path} not found; run from the repository root") from None
    except UnicodeDecodeError as error:
        raise UserError(
            f"{path} is not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset {error.start}); "
            "save it as UTF-8"
        ) from None
    if len(text) > MAX_BYTES:
        raise UserError(f"{path} is over {MAX_BYTES:,} characters; a params file is a few KB, check what wrote it")
    try:
        check_structure(text)
        params = read_yaml(text)
    except MarkedYAMLError as error:
        raise UserError(f"{path} is not valid YAML: {_yaml_problem(error)}") from None
    except YAMLError as error:
        raise UserError(f"{path} is not valid YAML: {cut(str(error).splitlines()[0])}") from None
    except ValueError as error:
        raise UserError(f"{path}: {error}") from None
    return settings.build(settings.Settings, validate(params))


def check_structure(text: str) -> None:
    """Refuse what would blow up before validation can name a key: YAML aliases (a few KB of them expand to
    gigabytes) and nesting deeper than MAX_DEPTH (Python's recursion limit)."""
    depth = 0
    for event in YAML(typ="safe", pure=True).parse(text):
        if isinstance(event, AliasEvent):
            raise ValueError(
                f"line {event.start_mark.line + 1}: a YAML alias (*{cut(str(event.anchor))}); "
                "params.yaml takes no anchors or aliases, write the value out"
            )
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise ValueError(f"line {event.start_mark.line + 1}: nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, CollectionEndEvent):
            depth -= 1


def _yaml_problem(error: MarkedYAMLError) -> str:
    """The parser's problem and where: `line 12: found duplicate key "seed" ...`."""
    mark = error.problem_mark or error.context_mark
    where = f"line {mark.line + 1}: " if mark is not None else ""
    return where + cut(error.problem or error.context or str(error).splitlines()[0])


def read_yaml(text: str) -> Any:
    """Parse YAML 1.2, as DVC writes it: `3e-05` (what `dvc exp run -S x=0.00003` stores) is a float.

    PyYAML implements YAML 1.1, where a float needs a dot (`3.0e-05`), and reads `3e-05` as a string.
    """
    return YAML(typ="safe", pure=True).load(text)
