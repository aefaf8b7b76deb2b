"""params.yaml validation: every bad value stops the stage with one line naming the key, and writes nothing."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, run_module
from stages.lib.core import params
from stages.lib.core.io import UserError

DEFAULT = yaml.safe_load((ROOT / "params.yaml").read_text())


def test_default_params_are_valid():
    assert params.load(ROOT / "params.yaml").prune.sweep


def _with(path: str, value) -> dict:
    changed = copy.deepcopy(DEFAULT)
    *parents, last = path.split(".")
    node = changed
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return changed


DELETE = object()

BAD = [
    ("prune.sparsty", 0.5, "prune.sparsty"),  # typo: unknown key
    ("prune.sparsity", 1.0, "prune.sparsity"),  # outside (0, 1)
    ("prune.sparsity", 0, "prune.sparsity"),
    ("prune.sparsity", "half", "prune.sparsity"),  # wrong type
    ("prune.sweep", [], "prune.sweep"),  # empty sweep
    ("prune.sweep", [0.5, 0.5], "prune.sweep"),  # duplicate sweep values
    ("prune.sweep", [0.5, 1.5], "prune.sweep[1]"),
    ("train.epochs", 0, "train.epochs"),  # epochs < 1
    ("train.epochs", -3, "train.epochs"),
    ("train.epochs", 2.5, "train.epochs"),
    ("data.image_size", 16, "data.image_size"),  # image size < 32
    ("data.split", {"train": 0.7, "validation": 0.2, "test": 0.2}, "data.split"),  # does not sum to 1
    ("model.backbone", "resnet50", "model.backbone"),  # unknown backbone
    ("convert.formats", ["float32", "int4"], "convert.formats[1]"),  # unknown TFLite format
    ("model.weights", "bundled-ish", "model.weights"),
    ("deploy.method", "magic", "deploy.method"),
    ("train.augment", "yes", "train.augment"),
    ("evaluate.num_threads", 0, "evaluate.num_threads"),
    ("report.accuracy_floor", 1.5, "report.accuracy_floor"),
    ("report.size_tolerance", -0.1, "report.size_tolerance"),
    ("report.targets", {"board": {"description": "x"}}, "report.targets.board.sram_bytes"),
    ("prune.ramp_fraction", 0, "prune.ramp_fraction"),
    ("prune.mask_updates", 0, "prune.mask_updates"),
    ("deploy.cluster_epochs", -1, "deploy.cluster_epochs"),
    ("model.stop_after_block", 16, "model.stop_after_block"),
    ("prune.fine_tune_from_block", -1, "prune.fine_tune_from_block"),
    ("data.positive_class", "", "data.positive_class"),
    ("convert.formats", ["int8"], "convert.formats"),  # float32 is the reference of every comparison
    ("students.shapes.b7_96.expand_keep", {"block0": 0.5}, "students.shapes.b7_96.expand_keep.block0"),
    ("students.shapes.b7_96.expand_keep", {"block1": 0}, "students.shapes.b7_96.expand_keep.block1"),
    ("students.shapes.b7_96.expand_keep", [0.5], "students.shapes.b7_96.expand_keep"),
    ("seed", DELETE, "seed"),  # missing key
    ("prune.epochs_per_10pp", -1, "prune.epochs_per_10pp"),
    ("prune.learning_rate_schedule", "linear", "prune.learning_rate_schedule"),
    ("prune.soft_label_weight", 1.5, "prune.soft_label_weight"),
    ("micro.lut_min_saving_bytes", -1, "micro.lut_min_saving_bytes"),
    ("firmware.arena_margin", 2, "firmware.arena_margin"),
    ("report.rank_tolerance", 0.005, "report.rank_tolerance"),  # gone: the message says what decides ties now
    ("report.rank_by", "test_accuracy", "report.rank_by"),  # the test split decides nothing
    ("students.shapes.b7_96_c8.fine_tune_from_block", 8, "students.shapes.b7_96_c8.fine_tune_from_block"),  # ends at 7
    ("students.shapes.b7_96.patches", {"grid": 1, "through_block": 2}, "students.shapes.b7_96.patches.grid"),
    ("students.shapes.b7_96.patches", {"grid": 2}, "students.shapes.b7_96.patches.through_block"),  # missing
    # The tail must hold at least one block: b7_96 ends at 7.
    ("students.shapes.b7_96.patches", {"grid": 2, "through_block": 7}, "students.shapes.b7_96.patches.through_block"),
]


@pytest.mark.parametrize("key,value,named", BAD, ids=[f"{k}={v!r}"[:40] for k, v, _ in BAD])
def test_bad_value_names_the_key(key, value, named):
    with pytest.raises(UserError, match=re.escape(f"`{named}`")):
        params.validate(_with(key, value))


@pytest.mark.parametrize("key", ["students.epochs", "students.fine_tune_from_block"])
def test_a_moved_key_says_where_it_went(key):
    old = _with(key, 3)  # before each student had its own
    moved_to = f"students.shapes.<name>.{key.split('.')[1]}"
    with pytest.raises(UserError, match=re.escape(f"`{key}` is 3; this key moved to `{moved_to} ")):
        params.validate(old)


def test_bundled_weights_only_for_lite0():
    with pytest.raises(UserError, match="model.weights"):
        params.validate(_with("model.backbone", "efficientnet_b0"))


def test_representative_count_larger_than_training_split_is_refused():
    import numpy as np

    from stages.lib.core import data

    with pytest.raises(UserError, match="convert.representative_samples"):
        data.representative_images(np.zeros((5, 32, 32, 3), np.uint8), 6, seed=0)


@pytest.mark.parametrize("key,value,named", BAD[:6] + BAD[10:13])
def test_stage_exits_with_one_line_and_writes_nothing(tmp_path: Path, key, value, named):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(_with(key, value)))
    result = run_module("stages.prepare", tmp_path)
    assert result.returncode == 2
    message = result.stderr.strip().splitlines()
    assert len(message) == 1 and message[0].startswith("error: params.yaml:") and named.split("[")[0] in message[0]
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_invalid_yaml_is_one_line(tmp_path: Path):
    (tmp_path / "params.yaml").write_text("data: [unclosed\n")
    result = run_module("stages.prepare", tmp_path)
    assert result.returncode == 2 and "not valid YAML" in result.stderr and "Traceback" not in result.stderr


def test_deploy_sparsity_must_be_in_the_sweep():
    with pytest.raises(UserError, match="`prune.sparsity` is 0.6; expected one of `prune.sweep`"):
        params.validate(_with("prune.sparsity", 0.6))


@pytest.mark.parametrize("written", ["3e-05", "3E-05", "1e-5", "0.00003", "3.0e-05", "+3e-5"])
def test_yaml_12_floats_are_numbers(tmp_path: Path, written):
    """DVC's `-S x=0.00003` writes `3e-05`, a string to YAML 1.1 (PyYAML): our reader follows YAML 1.2, as DVC does."""
    text = (ROOT / "params.yaml").read_text().replace("learning_rate: 0.00005", f"learning_rate: {written}")
    (tmp_path / "params.yaml").write_text(text)
    value = params.load(tmp_path / "params.yaml").deploy.learning_rate
    assert isinstance(value, float) and value == pytest.approx(float(written))


def test_yaml_11_booleans_are_not_booleans(tmp_path: Path):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text().replace("augment: true", "augment: yes"))
    with pytest.raises(UserError, match="`train.augment` is 'yes'; expected true or false"):
        params.load(tmp_path / "params.yaml")


BASE = (ROOT / "params.yaml").read_text()
HOSTILE = {
    # 5 KB of aliases that expand to 10^9 strings: refused before anything is built.
    "alias bomb": (
        BASE
        + "bomb:\n  a: &a ["
        + ", ".join(["xxxxxxxxxx"] * 10)
        + "]\n"
        + "".join(f"  {n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True))
    ).encode(),
    "ten megabytes": (BASE + "huge: [" + ",".join(["1234567890"] * 1_000_000) + "]\n").encode(),
    "a megabyte in one value": BASE.replace("seed: 42", "seed: '" + "x" * 900_000 + "'").encode(),
    "not UTF-8": BASE.encode()[:100] + b"\xff\xfe" + BASE.encode()[100:],
    "3,000 levels deep": (BASE + "deep: " + "[" * 3000 + "]" * 3000 + "\n").encode(),
    "duplicate key": (BASE + "seed: 3\n").encode(),
}
NAMED = {
    "alias bomb": "a YAML alias (*a)",
    "ten megabytes": "is over 1,048,576 characters",
    "a megabyte in one value": "`seed` is 'xxx",
    "not UTF-8": "not UTF-8 text (byte 0xff at offset 100)",
    "3,000 levels deep": "nested deeper than 32 levels",
    "duplicate key": f'line {BASE.count(chr(10)) + 1}: found duplicate key "seed"',
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_params_file_is_one_short_line(tmp_path: Path, case):
    path = tmp_path / "params.yaml"
    path.write_bytes(HOSTILE[case])
    with pytest.raises(UserError) as raised:
        params.load(path)
    assert NAMED[case] in str(raised.value) and len(str(raised.value)) < 300 and "\n" not in str(raised.value)


def test_a_hostile_params_file_stops_a_stage_run_on_its_own_with_one_line(tmp_path: Path):
    for case in ("alias bomb", "3,000 levels deep", "not UTF-8"):
        (tmp_path / "params.yaml").write_bytes(HOSTILE[case])
        result = run_module("stages.prepare", tmp_path)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert len(result.stderr.strip().splitlines()) == 1 and NAMED[case] in result.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]
