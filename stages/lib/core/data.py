"""Data sources (the elpv package, a user's image folder), content-hash splits and training batches."""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageOps

from stages.lib.core.io import UserError

if TYPE_CHECKING:
    from stages.lib.core.settings import Split

SPLITS = ("train", "validation", "test")
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
ELPV_CLASSES = ("functional", "defective")
# The elpv `defect_levels` task: the four defect probabilities the experts gave (0, 1/3, 2/3, 1), one class each.
ELPV_LEVEL_CLASSES = ("defect_0", "defect_33", "defect_67", "defect_100")


def _elpv() -> tuple[np.ndarray, np.ndarray]:
    from elpv_dataset.utils import load_dataset

    images, probabilities, _types = load_dataset()
    return images, probabilities


def load_elpv(task: str) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    """The elpv solar cells (300x300 grayscale) as (images, labels, class names) for the given task."""
    images, probabilities = _elpv()
    if task == "defect_levels":  # every cell, its defect probability's level (0, 1/3, 2/3, 1) as its class
        levels = np.rint(probabilities * (len(ELPV_LEVEL_CLASSES) - 1)).astype(np.int64)
        return list(images), levels, list(ELPV_LEVEL_CLASSES)
    if task == "functional_vs_defective":
        keep = (probabilities == 0.0) | (probabilities == 1.0)
    else:  # the data set paper's task: every cell, defective when p >= 0.5
        keep = np.ones_like(probabilities, dtype=bool)
    labels = (probabilities[keep] >= 0.5).astype(np.int64)
    return list(images[keep]), labels, list(ELPV_CLASSES)


def load_elpv_unlabeled(task: str) -> list[np.ndarray]:
    """The cells a task leaves out, for a teacher to label: p = 1/3 and 2/3 for `functional_vs_defective`;
    none for `paper` and `defect_levels`, which use every cell."""
    if task != "functional_vs_defective":
        return []
    images, probabilities = _elpv()
    return list(images[(probabilities > 0.0) & (probabilities < 1.0)])


def _to_8bit(image: Image.Image) -> Image.Image:
    """Any PIL image (16-bit, palette, CMYK, RGBA, EXIF-rotated) as 8-bit grayscale or RGB."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        return Image.fromarray(np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if image.mode in ("L", "RGB"):
        return image
    if image.mode in ("LA", "1"):
        return image.convert("L")
    return image.convert("RGB")  # palette, RGBA, CMYK, YCbCr, ...


class Unreadable(Exception):
    """A file `load_folder` skips and lists, with why."""


def read_image(path: Path, size: int, max_pixels: int) -> np.ndarray:
    """Decode one image file straight to size x size (bilinear, as `resize`): a JPEG decodes at the smallest scale
    that still covers `size`, and a file whose header declares more than `max_pixels` is refused before decoding, so
    memory follows the working size, not the file's. A truncated file fails here, not later in training."""
    try:
        with Image.open(path) as image:
            if image.width * image.height > max_pixels:
                raise Unreadable(
                    f"{image.width} x {image.height} pixels, over `data.max_pixels` ({max_pixels:,}); "
                    "downscale it or raise the setting"
                )
            image.draft(None, (size, size))  # JPEG only: decode at 1/2, 1/4 or 1/8 scale when that still covers it
            image.load()
            return np.asarray(_to_8bit(image).resize((size, size), Image.BILINEAR))
    except Unreadable:
        raise
    except Image.DecompressionBombError as error:  # over twice Pillow's own limit: refused before the header check
        declared = re.search(r"\((\d+) pixels\)", str(error))
        pixels = f"{int(declared.group(1)):,} pixels" if declared else "too many pixels"
        raise Unreadable(f"{pixels}, over `data.max_pixels` ({max_pixels:,}); downscale it") from None
    except Exception as error:  # noqa: BLE001 - any decoder failure (Pillow raises many kinds) skips the file
        raise Unreadable(f"unreadable image ({type(error).__name__})") from None


def _link_target(entry: Path, real_root: Path) -> tuple[Path | None, str]:
    """Where a symlink leads when it resolves inside the data folder; else None and why it is not followed."""
    try:
        target = entry.resolve(strict=True)
    except (OSError, RuntimeError):
        return None, "broken or looping symlink, not followed"
    if not target.is_relative_to(real_root):
        return None, "symlink outside the data folder, not followed"
    return target, ""


def _walk(folder: Path, root: Path, real_root: Path, skipped: list[str]) -> list[Path]:
    """The regular files under `folder`, sorted; hidden and symlinked folders, and symlinks that leave the data
    folder, loop or dangle, are skipped and listed instead. Iterative: any folder depth is walked."""
    files, pending = [], [folder]
    while pending:
        below = []
        for entry in sorted(pending.pop().iterdir()):
            where = entry.relative_to(root)
            if entry.name.startswith("."):
                skipped.append(f"{where}{'/' if entry.is_dir() else ''}: hidden, not read")
                continue
            if entry.is_symlink():
                target, why = _link_target(entry, real_root)
                if target is None or target.is_dir():
                    skipped.append(f"{where}/: symlinked folder, not followed" if target else f"{where}: {why}")
                    continue
            if entry.is_dir():
                below.append(entry)
            elif entry.is_file():
                files.append(entry)
        pending.extend(reversed(below))
    return sorted(files)


def load_folder(
    root: str | Path, size: int, max_pixels: int
) -> tuple[list[np.ndarray], np.ndarray, list[str], list[str]]:
    """A class-per-subfolder image folder as (images at size x size, labels, class names, skipped files)."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(
            f"data.source: folder {root} does not exist; give `elpv` or a folder with one sub-folder per class"
        )
    real_root = root.resolve()
    skipped: list[str] = []
    folders = _walk_classes(root, real_root, skipped)
    classes = [folder.name for folder in folders]
    if len(classes) < 2:
        raise UserError(
            f"data.source: {root} has {len(classes)} class folder{'s' * (len(classes) != 1)} "
            f"({', '.join(classes) or 'none'}); a classifier needs 2 or more: add one sub-folder of images per class"
        )
    images, labels = [], []
    for label, folder in enumerate(folders):
        count = 0
        for path in _walk(folder, root, real_root, skipped):
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                skipped.append(f"{path.relative_to(root)}: not an image file extension")
                continue
            try:
                images.append(read_image(path, size, max_pixels))
            except Unreadable as why:
                skipped.append(f"{path.relative_to(root)}: {why}")
                continue
            labels.append(label)
            count += 1
        if count == 0:
            raise UserError(
                f"data.source: class folder {folder} has no readable images; add images or remove the folder"
            )
    return images, np.asarray(labels, dtype=np.int64), classes, skipped


def _walk_classes(root: Path, real_root: Path, skipped: list[str]) -> list[Path]:
    """The class folders: visible sub-folders of `root`, by the same symlink rule as files."""
    folders = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or not (entry.is_dir() or entry.is_symlink()):
            continue
        if entry.is_symlink():
            target, why = _link_target(entry, real_root)
            if target is not None and not target.is_dir():
                continue
            if target is None:
                skipped.append(f"{entry.name}/: class folder is a {why}")
                continue
        folders.append(entry)
    return folders


def with_positive_class(labels: np.ndarray, classes: list[str], positive: str) -> tuple[np.ndarray, list[str]]:
    """Relabel so that `positive` is class 1 (what the model's output means), whatever the names' sort order. With
    more than two classes the model outputs every class's probability: the labels and names stay as they are."""
    if len(classes) > 2:
        return labels, classes
    if positive not in classes:
        raise UserError(
            f"params.yaml: `data.positive_class` is {positive!r}, "
            f"which is not a class of the data ({', '.join(classes)}); "
            "set it to the folder name of the class the model should flag"
        )
    index = classes.index(positive)
    return (labels == index).astype(np.int64), [classes[1 - index], positive]


def check_calibration_size(train_images: int, samples: int) -> None:
    """int8 calibration draws `samples` training images: stop before any training when there are fewer."""
    if samples > train_images:
        raise UserError(
            f"params.yaml: `convert.representative_samples` is {samples}; the training split has only {train_images} "
            "images; lower it"
        )


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """Resize to size x size (bilinear, antialiased) keeping 1 or 3 channels, as HxWxC uint8."""
    resized = np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))
    return resized[..., None] if resized.ndim == 2 else resized


def content_hash(image: np.ndarray) -> str:
    return hashlib.sha256(image.tobytes() + str(image.shape).encode()).hexdigest()


def split_indices(
    labels: np.ndarray, hashes: list[str], fractions: Split, seed: int, classes: list[str] | None = None
) -> dict[str, np.ndarray]:
    """Stratified, seeded train/validation/test indices; identical images always land in the same split. `classes`
    names the labels in an error."""
    rng = np.random.default_rng(seed)
    groups: dict[str, list[int]] = {}
    for index, digest in enumerate(hashes):
        groups.setdefault(digest, []).append(index)
    chosen: dict[str, list[int]] = {split: [] for split in SPLITS}
    for label in np.unique(labels):
        members = [g for g in groups.values() if labels[g[0]] == label]
        order = rng.permutation(len(members))
        n_test = max(1, round(len(members) * fractions.test))
        n_validation = max(1, round(len(members) * fractions.validation))
        if len(members) - n_test - n_validation < 1:
            raise UserError(
                f"class {classes[int(label)] if classes else int(label)!r} has {len(members)} distinct images; "
                "the splits need at least 3 (one per split); add images"
            )
        bounds = {
            "test": order[:n_test],
            "validation": order[n_test : n_test + n_validation],
            "train": order[n_test + n_validation :],
        }
        for split, positions in bounds.items():
            chosen[split].extend(index for position in positions for index in members[position])
    return {split: np.sort(np.asarray(indices, dtype=np.int64)) for split, indices in chosen.items()}


def cap_per_class(labels: np.ndarray, cap: int | None, seed: int) -> np.ndarray:
    """Indices keeping at most `cap` images of each class (seeded), for quick runs."""
    if cap is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(labels == label))[:cap] for label in np.unique(labels)]
    return np.sort(np.concatenate(keep))


def save_split(path: Path, images: np.ndarray, labels: np.ndarray, hashes: list[str]) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, images=images, labels=labels, hashes=np.asarray(hashes))
    path.write_bytes(buffer.getvalue())


def load_unlabeled(path: str | Path) -> np.ndarray:
    """The unlabeled images `prepare` kept (N x H x W x 3 uint8; N may be 0)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} is missing; run `dvc repro prepare` first")
    with np.load(path) as data:
        images = data["images"]
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


def resize_all(images: np.ndarray, size: int) -> np.ndarray:
    """A batch of N x H x W x C uint8 images at size x size (the same resize `prepare` uses)."""
    if images.shape[1] == size:
        return images
    return np.stack([resize(image, size) for image in images]) if len(images) else images[:, :size, :size]


def load_split(folder: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images as N x H x W x 3 uint8, labels) of one prepared split."""
    path = Path(folder) / f"{split}.npz"
    if not path.exists():
        raise UserError(f"{path} is missing; run `dvc repro prepare` first")
    with np.load(path) as data:
        images, labels = data["images"], data["labels"]
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    return images, labels


def random_views(count: int, rng: np.random.Generator) -> np.ndarray:
    """A random one of the 8 dihedral views (`dihedral_view`'s numbering) for each of `count` images."""
    turns, flips = rng.integers(0, 4, count), rng.integers(0, 2, count)
    return turns + 4 * flips


def dihedral(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each image under a random one of the 8 flips/90-degree rotations (valid views of a solar cell)."""
    views = random_views(len(images), rng)
    return np.stack([dihedral_view(image[np.newaxis], view)[0] for image, view in zip(images, views, strict=True)])


def dihedral_view(images: np.ndarray, view: int) -> np.ndarray:
    """All images (N x H x W x C) under one of the 8 flips/rotations: view % 4 quarter turns, flipped when >= 4."""
    turned = np.rot90(images, view % 4, axes=(1, 2))
    return np.ascontiguousarray(turned[:, :, ::-1] if view >= 4 else turned)


def training_batches(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    augment: bool,
    rng: np.random.Generator,
    views_cached: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of shuffled (and optionally augmented) float32 batches, drawn from `rng`.

    `views_cached`: `images` is V x N x ..., every image already under each dihedral view (V = 8, or 1 without
    `augment`; the frozen layers' outputs), and a batch takes each image's drawn view: the same draws, the same batches.
    """
    order = rng.permutation(len(labels))
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        if views_cached:
            x = images[random_views(len(batch), rng) if augment else np.zeros(len(batch), int), batch]
        else:
            x = dihedral(images[batch], rng) if augment else images[batch]
        yield x.astype(np.float32), labels[batch].astype(np.float32)


def training_dataset(
    images: np.ndarray, labels: np.ndarray, batch_size: int, augment: bool, seed: int, views_cached: bool = False
) -> Any:
    """A tf.data pipeline over `training_batches`; one seeded generator drives every epoch, so runs repeat exactly."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    shape = images.shape[2:] if views_cached else images.shape[1:]
    signature = (tf.TensorSpec((None, *shape), tf.float32), tf.TensorSpec((None, *labels.shape[1:]), tf.float32))
    dataset = tf.data.Dataset.from_generator(
        lambda: training_batches(images, labels, batch_size, augment, rng, views_cached), output_signature=signature
    )
    return dataset.repeat().prefetch(2)


def load_classes(folder: str | Path) -> list[str]:
    """The class names `prepare` wrote, in label order (two: the model's output is P(the second))."""
    path = Path(folder) / "classes.json"
    if not path.exists():
        raise UserError(f"{path} is missing; run `dvc repro prepare` first")
    return json.loads(path.read_text())


def targets(labels: np.ndarray, outputs: int) -> np.ndarray:
    """Training targets for a head of `outputs` units: the labels as they are for one sigmoid unit, one-hot rows for
    a softmax over N classes (rows that are already distributions, such as soft labels, pass unchanged)."""
    labels = np.asarray(labels)
    if outputs == 1 or labels.ndim == 2:
        return labels.astype(np.float32)
    return np.eye(outputs, dtype=np.float32)[labels.astype(np.int64)]


def mixed_targets(labels: np.ndarray, soft_labels: np.ndarray, soft_weight: float) -> np.ndarray:
    """Distillation targets: `soft_weight` x a teacher's soft labels + the rest x the labels (the labels at 0).
    N-class soft labels (N x K rows) mix with the one-hot labels."""
    wanted = targets(labels, soft_labels.shape[1] if soft_labels.ndim == 2 else 1)
    return wanted if soft_weight == 0 else soft_weight * soft_labels + (1 - soft_weight) * wanted


def class_weights(labels: np.ndarray) -> dict[int, float]:
    """Weights that make every class count equally in the loss."""
    counts = np.bincount(labels, minlength=2)
    return {label: float(len(labels) / (len(counts) * count)) for label, count in enumerate(counts)}


def representative_images(images: np.ndarray, count: int, seed: int) -> np.ndarray:
    """A seeded sample of training images for int8 calibration."""
    check_calibration_size(len(images), count)
    return images[np.random.default_rng(seed).permutation(len(images))[:count]]
