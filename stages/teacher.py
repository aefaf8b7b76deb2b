"""Stage `teacher`: the baseline's soft labels for the students, on every training image and every unlabeled cell:
its mean probability over the dihedral views (a solar cell is the same cell flipped or turned).

The baseline runs as its float32 `.tflite` on LiteRT (XNNPACK): the same weights and arithmetic as the Keras model
(to float rounding), at under half the time and without importing TensorFlow."""

from __future__ import annotations

import io

import numpy as np

from stages.lib.core import data, paths, scores
from stages.lib.core import params as params_lib
from stages.lib.core.io import atomic_path, read_json, run_stage, write_json
from stages.lib.runtime import litert


def view_probabilities(interpreter: litert.Interpreter, images: np.ndarray, views: int) -> np.ndarray:
    """V x N (x K): P(class 1) (every class's, for a softmax) for each image under each of the first `views`
    dihedral views."""
    return np.stack([litert.predict(interpreter, data.dihedral_view(images, view), "teacher") for view in range(views)])


def soft_labels(interpreter: litert.Interpreter, images: np.ndarray, views: int) -> np.ndarray:
    """P(class 1) (every class's) averaged over the first `views` dihedral views of each image."""
    return view_probabilities(interpreter, images, views).mean(axis=0)


def main() -> None:
    params = params_lib.load()
    views = params.distill.teacher_views
    model, _ = litert.open_interpreter(paths.tflite_path("baseline", "float32"), params.evaluate.num_threads)
    meta = read_json(paths.keras_folder("baseline") / paths.META_FILE)
    train, validation = data.load_split(paths.PREPARED, "train"), data.load_split(paths.PREPARED, "validation")
    unlabeled = data.load_unlabeled(paths.UNLABELED)
    train_soft = soft_labels(model, train[0], views)
    unlabeled_soft = soft_labels(model, unlabeled, views) if len(unlabeled) else np.zeros((0, *train_soft.shape[1:]))
    # What averaging the views does to the teacher, measured on validation at the baseline's own threshold.
    per_view = view_probabilities(model, validation[0], views)  # view 0 is the image as it is
    one, averaged = per_view[0], per_view.mean(axis=0)
    threshold = meta["threshold"]
    buffer = io.BytesIO()
    np.savez(buffer, train=train_soft.astype(np.float32), unlabeled=unlabeled_soft.astype(np.float32))
    with atomic_path(paths.TEACHER) as path:
        path.write_bytes(buffer.getvalue())
    write_json(
        paths.TEACHER_METRICS,
        {
            "views": views,
            "validation_accuracy_one_view": scores.accuracy(validation[1], one, threshold),
            "validation_accuracy_views": scores.accuracy(validation[1], averaged, threshold),
            "train_images": len(train_soft),
            "train_agreement_with_labels": float((scores.decide(train_soft, threshold) == train[1]).mean()),
            "unlabeled_images": len(unlabeled_soft),
            "unlabeled_flagged_share": float((scores.decide(unlabeled_soft, threshold) == 1).mean())
            if len(unlabeled_soft)
            else None,
        },
    )
    print(f"teacher: {len(train_soft)} training and {len(unlabeled_soft)} unlabeled images, {views} views each")


if __name__ == "__main__":
    run_stage(main)
