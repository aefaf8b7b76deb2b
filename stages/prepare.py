"""Stage `prepare`: read the data source, resize, split by content hash, write data/prepared/."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from stages.lib.core import data, paths
from stages.lib.core import params as params_lib
from stages.lib.core.io import atomic_path, run_stage, write_json


def read_own_model(file: str, scaling: str, image_size: int) -> tuple[Any, int]:
    """Read a model of your own (`model.file`) and check what every stage will do to it, rebuilt as the baseline will
    be, before any data is read; it and the image size (its own; `image_size` if it takes any)."""
    from stages.lib.compress import qat
    from stages.lib.keras import own_model

    model = own_model.read(file)
    size = own_model.check(model, file) or image_size
    qat.check_quantizable(own_model.flat_with_scaling(model, size, scaling), file)
    return model, size


def own_model_record(model: Any, file: str, scaling: str, classes: int, size: int) -> dict:
    """Check the model's output against the data's classes; what `train` reads, and the file's fingerprint."""
    from stages.lib.keras import own_model

    own_model.check_output(model, file, classes)
    return {"file": file, "sha256": own_model.fingerprint(file), "image_size": size, "input_scaling": scaling}


def main() -> None:
    params = params_lib.load()
    config, seed = params.data, params.seed
    own, scaling = params.model.file, params.model.input_scaling
    model, size = read_own_model(own, scaling, config.image_size) if own else (None, config.image_size)
    if config.source == "elpv":
        images, labels, classes = data.load_elpv(config.task)
        skipped: list[str] = []
    else:
        images, labels, classes, skipped = data.load_folder(config.source, size, config.max_pixels)
    labels, classes = data.with_positive_class(labels, classes, config.positive_class)
    record = own_model_record(model, own, scaling, len(classes), size) if own else None
    keep = data.cap_per_class(labels, config.max_images_per_class, seed)
    images, labels = [images[i] for i in keep], labels[keep]
    hashes = [data.content_hash(image) for image in images]
    splits = data.split_indices(labels, hashes, config.split, seed, classes)
    data.check_calibration_size(len(splits["train"]), params.convert.representative_samples)
    # An all-grayscale set stays one channel; in a mixed set, grayscale images become three equal channels.
    mixed = any(image.ndim == 3 for image in images)

    def resized_all(batch: list[np.ndarray]) -> np.ndarray:
        channels = [np.stack([image] * 3, -1) if mixed and image.ndim == 2 else image for image in batch]
        return np.stack([data.resize(image, size) for image in channels])

    resized = resized_all(images)

    # Cells the task leaves out, for the teacher to label: never the content of a labeled image (of any split).
    known = set(hashes)
    unlabeled = data.load_elpv_unlabeled(config.task) if config.source == "elpv" else []
    unlabeled = [image for image in unlabeled if data.content_hash(image) not in known]
    if config.max_images_per_class is not None:
        order = np.random.default_rng(seed).permutation(len(unlabeled))[: config.max_images_per_class]
        unlabeled = [unlabeled[i] for i in sorted(order)]
    unlabeled_resized = resized_all(unlabeled) if unlabeled else np.zeros((0, size, size, resized.shape[-1]), np.uint8)

    with atomic_path(paths.PREPARED) as folder:
        folder.mkdir()
        for split, indices in splits.items():
            data.save_split(folder / f"{split}.npz", resized[indices], labels[indices], [hashes[i] for i in indices])
        (folder / "classes.json").write_text(json.dumps(classes) + "\n")
        if record is not None:  # the file's fingerprint: a changed model reruns `train` and all after it
            (folder / paths.OWN_MODEL_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    with atomic_path(paths.UNLABELED) as path:
        data.save_split(path, unlabeled_resized, np.full(len(unlabeled), -1), [data.content_hash(i) for i in unlabeled])

    counts = {
        split: {name: int((labels[indices] == label).sum()) for label, name in enumerate(classes)}
        for split, indices in splits.items()
    }
    write_json(
        paths.PREPARE_METRICS,
        {
            "classes": classes,
            "images": len(labels),
            "duplicates": len(hashes) - len(set(hashes)),
            "counts": counts,
            "unlabeled": len(unlabeled),
            "skipped_files": len(skipped),
            "skipped": skipped,
        },
    )
    print(f"prepare: {len(labels)} images, {counts}, {len(skipped)} skipped")


if __name__ == "__main__":
    run_stage(main)
