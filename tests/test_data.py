"""Data sources and splits: the elpv tasks, robust image folders, content-hash disjoint stratified splits."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import ROOT, run_module
from stages.lib.core import data
from stages.lib.core.io import UserError
from stages.lib.core.settings import Split


def test_elpv_default_task_counts():
    images, labels, classes = data.load_elpv("functional_vs_defective")
    assert classes == ["functional", "defective"]
    assert (np.bincount(labels) == [1508, 715]).all() and images[0].shape == (300, 300)


def test_elpv_paper_task_keeps_every_cell():
    _, labels, _ = data.load_elpv("paper")
    assert len(labels) == 2624 and labels.sum() == 715 + 106  # defective when p >= 0.5


def test_splits_are_stratified_disjoint_and_keep_duplicates_together():
    labels = np.array([0] * 60 + [1] * 30)
    hashes = [f"h{i}" for i in range(90)]
    hashes[5] = hashes[6] = hashes[7] = "duplicate"  # the same image three times
    splits = data.split_indices(labels, hashes, Split(train=0.7, validation=0.15, test=0.15), seed=1)
    seen = {split: {hashes[i] for i in idx} for split, idx in splits.items()}
    assert (
        not (seen["train"] & seen["test"])
        and not (seen["train"] & seen["validation"])
        and not (seen["validation"] & seen["test"])
    )
    assert sorted(np.concatenate(list(splits.values())).tolist()) == list(range(90))
    for idx in splits.values():  # both classes in every split, in about the 2:1 ratio
        counts = np.bincount(labels[idx], minlength=2)
        assert counts.min() > 0 and 1.3 < counts[0] / counts[1] < 3
    together = [split for split, idx in splits.items() if {5, 6, 7} <= set(idx.tolist())]
    assert len(together) == 1  # the three copies landed in one split, all of them


def test_splits_are_seeded():
    labels = np.array([0] * 20 + [1] * 20)
    hashes = [str(i) for i in range(40)]
    fractions = Split(train=0.6, validation=0.2, test=0.2)
    first, again = data.split_indices(labels, hashes, fractions, 3), data.split_indices(labels, hashes, fractions, 3)
    assert all((first[s] == again[s]).all() for s in data.SPLITS)
    assert any((first[s] != data.split_indices(labels, hashes, fractions, 4)[s]).any() for s in data.SPLITS)


def test_a_class_too_small_for_the_splits_is_refused():
    with pytest.raises(UserError, match="distinct images"):
        data.split_indices(
            np.array([0] * 10 + [1] * 2),
            [str(i) for i in range(12)],
            Split(train=0.7, validation=0.15, test=0.15),
            0,
        )


def _save(path: Path, image: Image.Image, **kwargs) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **kwargs)


@pytest.fixture()
def image_folder(tmp_path: Path) -> Path:
    """Two classes of every kind of file a camera folder holds, good and bad."""
    root = tmp_path / "cells"
    for shift, name in enumerate(("ok", "cracked")):
        gradient = np.tile(np.arange(64, dtype=np.uint8), (48, 1)) + shift  # the classes hold different images
        rgb = Image.fromarray(np.stack([gradient, gradient[::-1], gradient], -1))
        _save(root / name / "gray.PNG", Image.fromarray(gradient))
        _save(root / name / "rgb.jpg", rgb)
        _save(root / name / "rgba.png", rgb.convert("RGBA"))
        _save(root / name / "palette.bmp", rgb.convert("P"))
        _save(root / name / "photo.webp", rgb)
        _save(root / name / "cmyk.JPEG", rgb.convert("CMYK"))
        _save(root / name / "deep.png", Image.fromarray(gradient.astype(np.uint16) * 257))
        exif = Image.Exif()
        exif[0x0112] = 6  # "rotate 90": the pixels are stored sideways
        _save(root / name / "rotated.jpg", rgb, exif=exif)
        (root / name / "notes.txt").write_text("not an image")
        truncated = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(
            truncated, format="PNG"
        )
        (root / name / "truncated.png").write_bytes(truncated.getvalue()[:6000])
    outside = tmp_path / "elsewhere.png"  # a symlink out of the folder must not be followed
    _save(outside, rgb)
    (root / "ok" / "link.png").symlink_to(outside)
    return root


def test_folder_reads_every_format_and_skips_bad_files(image_folder: Path):
    images, labels, classes, skipped = data.load_folder(image_folder, 32, 10**6)
    assert classes == ["cracked", "ok"]
    assert np.bincount(labels).tolist() == [8, 8]
    assert all(image.dtype == np.uint8 and image.shape[:2] == (32, 32) and image.ndim in (2, 3) for image in images)
    assert sorted(s.split(":")[0] for s in skipped) == [
        "cracked/notes.txt",
        "cracked/truncated.png",
        "ok/link.png",
        "ok/notes.txt",
        "ok/truncated.png",
    ]
    # Sorted file names of a class: cmyk, deep, gray, palette, photo, rgb, rgba, rotated.
    rgb, rotated = images[5][..., 0].astype(float), images[7][..., 0].astype(float)
    assert np.ptp(rgb.mean(axis=0)) > 4 * np.ptp(rgb.mean(axis=1))  # the gradient runs along the columns...
    assert np.ptp(rotated.mean(axis=1)) > 4 * np.ptp(rotated.mean(axis=0))  # ...and, EXIF-rotated, along the rows
    assert images[1].ndim == 2 and images[1].max() in (62, 63, 64)  # 16-bit values scaled to 8 bits, not clipped


def _write_folder_params(folder: Path, image_folder: Path, representative_samples: int | None = None) -> None:
    """The default params.yaml in `folder`, reading `image_folder` at 32 px with `cracked` flagged and half the
    images for training."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(source=str(image_folder), image_size=32, positive_class="cracked")
    params["data"]["split"] = {"train": 0.5, "validation": 0.25, "test": 0.25}
    if representative_samples is not None:
        params["convert"]["representative_samples"] = representative_samples
    (folder / "params.yaml").write_text(yaml.safe_dump(params))


def _bomb_png(path: Path, side: int) -> None:
    """A valid all-black RGB PNG of side x side pixels, written row by row (zlib level 1: fast, 2.2 MB at 13000)."""
    packer = zlib.compressobj(1)
    row = bytes(3 * side + 1)  # filter byte + pixels
    body = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()

    def chunk(kind: bytes, content: bytes) -> bytes:
        return struct.pack(">I", len(content)) + kind + content + struct.pack(">I", zlib.crc32(kind + content))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def test_image_bombs_are_skipped_from_their_header_and_prepare_stays_small(tmp_path: Path, image_folder: Path):
    """Three 13000^2 RGB PNGs (2.2 MB each on disk, 507 MB each decoded: the old `prepare` peaked at 3.3 GB on them)
    and one that Pillow itself calls a bomb."""
    _bomb_png(image_folder / "ok" / "bomb0.png", 13000)
    for index in (1, 2):
        shutil.copy(image_folder / "ok" / "bomb0.png", image_folder / "ok" / f"bomb{index}.png")
    header_only = image_folder / "cracked" / "huge.png"
    _bomb_png(header_only, 64)
    raw = bytearray(header_only.read_bytes())
    raw[16:24] = struct.pack(">II", 30000, 30000)  # declares 900 MP, over Pillow's own limit
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(raw[12:29])))
    header_only.write_bytes(bytes(raw))
    work = tmp_path / "work"
    work.mkdir()
    _write_folder_params(work, image_folder, representative_samples=4)
    # The stage's own peak resident memory: VmHWM of its process (ru_maxrss would include pytest's, copied at fork).
    measure = "import re, runpy, sys\ntry:\n    runpy.run_module('stages.prepare', run_name='__main__')\nfinally:\n"
    measure += "    status = open('/proc/self/status').read()\n"
    measure += "    print('peak_kib', re.search(r'VmHWM:\\s+(\\d+)', status).group(1), file=sys.stderr)\n"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", measure], cwd=work, env=env, capture_output=True, text=True)
    assert "Traceback" not in result.stderr, result.stderr
    peak_kib = int(re.search(r"peak_kib (\d+)", result.stderr).group(1))
    assert peak_kib < 1024 * 1024, f"prepare peaked at {peak_kib / 1024:.0f} MiB"
    skipped = json.loads((work / "metrics/prepare.json").read_text())["skipped"]
    bombs = [line for line in skipped if "bomb" in line or "huge" in line]
    assert len(bombs) == 4 and all("over `data.max_pixels`" in line for line in bombs), bombs
    assert any("13000 x 13000 pixels" in line for line in bombs) and any("900,000,000 pixels" in line for line in bombs)


def test_folder_tricks_are_skipped_and_listed(tmp_path: Path, image_folder: Path):
    """A symlink loop, a hidden sub-folder, a symlinked folder inside a class and a class folder that is a symlink
    to a folder outside the data: each skipped and listed, none read, no traceback."""
    (image_folder / "ok" / "loop_a.png").symlink_to(image_folder / "ok" / "loop_b.png")
    (image_folder / "ok" / "loop_b.png").symlink_to(image_folder / "ok" / "loop_a.png")
    _save(image_folder / "ok" / ".thumbs" / "thumb.png", Image.fromarray(np.zeros((8, 8), np.uint8)))
    (image_folder / "ok" / "again").symlink_to(image_folder / "cracked")
    outside = tmp_path / "outside_class"
    _save(outside / "x.png", Image.fromarray(np.zeros((8, 8), np.uint8)))
    (image_folder / "zz_linked").symlink_to(outside)
    images, labels, classes, skipped = data.load_folder(image_folder, 32, 10**6)
    assert classes == ["cracked", "ok"] and np.bincount(labels).tolist() == [8, 8]
    listed = {line.split(": ")[0]: line.split(": ", 1)[1] for line in skipped}
    assert "looping" in listed["ok/loop_a.png"] and "looping" in listed["ok/loop_b.png"]
    assert "hidden" in listed["ok/.thumbs/"] and "symlinked folder" in listed["ok/again/"]
    assert "outside the data folder" in listed["zz_linked/"]


@pytest.mark.parametrize(
    "layout,message",
    [
        ({"only": 3}, r"has 1 class folder \(only\); a classifier needs 2 or more"),
        ({}, r"has 0 class folders \(none\)"),
        ({"a": 3, "b": 0}, "no readable images"),
    ],
)
def test_folder_with_wrong_classes_is_refused(tmp_path: Path, layout, message):
    for name, count in layout.items():
        (tmp_path / name).mkdir()
        for index in range(count):
            _save(tmp_path / name / f"{index}.png", Image.fromarray(np.full((8, 8), index * 40, np.uint8)))
    with pytest.raises(UserError, match=message):
        data.load_folder(tmp_path, 32, 10**6)


def test_a_folder_of_three_classes_keeps_them_in_name_order(tmp_path: Path):
    for name in ("c", "a", "b"):
        (tmp_path / name).mkdir()
        for index in range(3):
            _save(tmp_path / name / f"{index}.png", Image.fromarray(np.full((8, 8), ord(name) + index, np.uint8)))
    _, labels, classes, skipped = data.load_folder(tmp_path, 32, 10**6)
    assert classes == ["a", "b", "c"] and labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2] and not skipped
    # `data.positive_class` means nothing for three classes: labels and names stay as they are.
    same, names = data.with_positive_class(labels, classes, "defective")
    assert same is labels and names == classes


def test_elpv_defect_levels_task_is_four_classes_of_every_cell():
    _, labels, classes = data.load_elpv("defect_levels")
    assert classes == ["defect_0", "defect_33", "defect_67", "defect_100"]
    assert np.bincount(labels).tolist() == [1508, 295, 106, 715]
    assert data.load_elpv_unlabeled("defect_levels") == []


def test_targets_are_one_hot_for_a_softmax_and_mix_with_soft_labels():
    labels = np.array([0, 2, 1])
    assert data.targets(labels, 1).tolist() == [0.0, 2.0, 1.0]  # one sigmoid unit: the labels
    one_hot = data.targets(labels, 3)
    assert one_hot.tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0]] and one_hot.dtype == np.float32
    soft = np.full((3, 3), 1 / 3, np.float32)
    assert np.array_equal(data.targets(soft, 3), soft)
    mixed = data.mixed_targets(labels, soft, 0.5)
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(mixed[1], [1 / 6, 1 / 6, 0.5 + 1 / 6], rtol=1e-6)
    binary = data.mixed_targets(np.array([1, 0]), np.array([0.8, 0.4], np.float32), 0.5)
    np.testing.assert_allclose(binary, [0.9, 0.2], rtol=1e-6)


def test_class_weights_make_every_class_count_equally():
    weights = data.class_weights(np.array([0, 0, 0, 0, 1, 1, 2, 2]))
    assert weights == {0: 8 / 12, 1: 8 / 6, 2: 8 / 6}
    assert data.class_weights(np.array([0, 0, 0, 1])) == {0: 4 / 6, 1: 4 / 2}


def test_missing_folder_is_refused(tmp_path: Path):
    with pytest.raises(UserError, match="does not exist"):
        data.load_folder(tmp_path / "nowhere", 32, 10**6)


def test_prepare_on_a_user_folder_writes_splits_and_lists_skipped_files(tmp_path: Path, image_folder: Path):
    _write_folder_params(tmp_path, image_folder, representative_samples=4)
    result = run_module("stages.prepare", tmp_path)
    assert result.returncode == 0, result.stderr
    with np.load(tmp_path / "data/prepared/train.npz") as train:
        assert train["images"].shape[1:] == (32, 32, 3) and train["images"].dtype == np.uint8
    metrics = json.loads((tmp_path / "metrics/prepare.json").read_text())
    assert metrics["skipped_files"] == 5 and metrics["images"] == 16


def test_dihedral_views_keep_pixels():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (6, 8, 8, 3), dtype=np.uint8)
    views = data.dihedral(images, rng)
    assert all(sorted(v.ravel()) == sorted(i.ravel()) for v, i in zip(views, images, strict=False))


def test_positive_class_is_the_named_folder_not_the_second_name():
    labels = np.array([0, 0, 1])  # sorted folder names: "cracked" = 0, "ok" = 1
    relabelled, classes = data.with_positive_class(labels, ["cracked", "ok"], "cracked")
    assert relabelled.tolist() == [1, 1, 0] and classes == ["ok", "cracked"]
    same, classes = data.with_positive_class(labels, ["cracked", "ok"], "ok")
    assert same.tolist() == [0, 0, 1] and classes == ["cracked", "ok"]


def test_unknown_positive_class_names_the_fix():
    with pytest.raises(UserError, match="data.positive_class.*'defective'.*cracked, ok"):
        data.with_positive_class(np.array([0, 1]), ["cracked", "ok"], "defective")


def test_prepare_refuses_too_many_calibration_images_before_any_training(tmp_path: Path, image_folder: Path):
    _write_folder_params(tmp_path, image_folder)  # the default 100 calibration images
    result = run_module("stages.prepare", tmp_path)  # a few training images < 100 calibration images
    assert result.returncode == 2
    assert "`convert.representative_samples` is 100; the training split has only" in result.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "metrics").exists()


def test_cached_views_give_the_same_batches_as_augmenting_the_images():
    images = np.random.default_rng(1).integers(0, 255, (10, 6, 6, 3), dtype=np.uint8)
    labels = np.arange(10) % 2
    for augment in (True, False):
        direct = data.training_batches(images, labels, 4, augment, np.random.default_rng(7))
        stack = np.stack([data.dihedral_view(images, view) for view in range(8 if augment else 1)])
        assert stack.shape == (8 if augment else 1, *images.shape)
        cached = data.training_batches(stack, labels, 4, augment, np.random.default_rng(7), views_cached=True)
        for (x, y), (cx, cy) in zip(direct, cached, strict=True):
            np.testing.assert_array_equal(x, cx)
            np.testing.assert_array_equal(y, cy)


def test_a_folder_a_thousand_levels_deep_is_walked(image_folder: Path):
    """The walk is iterative: depth does not hit Python's recursion limit."""
    before = data.load_folder(image_folder, 32, 10**6)[1]
    deep = image_folder / "ok"
    for _ in range(1000):  # one at a time: pathlib's own mkdir(parents=True) recurses
        deep = deep / "d"
        deep.mkdir()
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(deep / "last.png")
    try:
        labels = data.load_folder(image_folder, 32, 10**6)[1]
    finally:  # bottom up: shutil.rmtree (pytest's clean-up) recurses too
        (deep / "last.png").unlink()
        while deep != image_folder / "ok":
            deep.rmdir()
            deep = deep.parent
    assert len(labels) == len(before) + 1
