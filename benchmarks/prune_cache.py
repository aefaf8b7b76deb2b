"""Would caching the frozen blocks pay in `prune`? Times both sides on this box and writes
benchmarks/results/prune_cache.json.

Usage, from the repository root after `dvc repro train` (needs data/prepared and models/baseline):
    python benchmarks/prune_cache.py [--images 320]
Blocks below `prune.fine_tune_from_block` never train, so `train`'s cache (their outputs under each of the 8
dihedral views, computed once) could serve `prune` too. This measures what the cache costs per image and view,
and what it saves per training step (the median step of the pruned whole model against the pruned upper part on
cached inputs, same batch, same pruning wrappers), then projects both onto each sweep sparsity's epochs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
import tf_keras as keras  # noqa: E402
from stage_times import machine  # noqa: E402

from stages.lib import data, paths, pruning, training  # noqa: E402
from stages.lib import model as model_lib  # noqa: E402
from stages.lib import params as params_lib  # noqa: E402

RESULTS = ROOT / "benchmarks/results/prune_cache.json"


class StepTimes(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.ends = []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())


def median_step(
    model: keras.Model, images: np.ndarray, labels: np.ndarray, validation: tuple, cached: bool, params: dict
) -> float:
    """The median training step of `model` pruned as `prune` prunes it, after two warm-up steps."""
    config, batch = params["prune"], params["train"]["batch_size"]
    polynomial, _ = pruning.schedule(
        0.0, 0.7, 100, config["mask_updates"], config["ramp_fraction"], config["ramp_power"]
    )
    wrapped = pruning.prune(model, polynomial, config["min_layer_weights"])
    timer = StepTimes()
    training.fit(
        wrapped,
        (images, labels),
        validation,
        epochs=1,
        learning_rate=config["learning_rate"],
        batch_size=batch,
        augment=True,
        seed=0,
        callbacks=pruning.callbacks() + [timer],
        views_cached=cached,
    )
    return float(np.median(np.diff(timer.ends)[2:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=320, help="training images timed (10 steps of 32 by default)")
    count = parser.parse_args().images
    params = params_lib.load()
    config, batch = params["prune"], params["train"]["batch_size"]
    train, validation = data.load_split(paths.PREPARED, "train"), data.load_split(paths.PREPARED, "validation")
    images, labels = train[0][:count], train[1][:count].astype(np.float32)
    model, _ = model_lib.load(paths.keras_folder("baseline"))
    model_lib.set_trainable(model, from_block=config["fine_tune_from_block"])
    lower, upper = model_lib.split_at_block(model, config["fine_tune_from_block"])
    whole_step = median_step(model, images, labels, (validation[0][:batch], validation[1][:batch]), False, params)
    predict = training.keras_runner(batch)(lower)
    started = time.perf_counter()
    views = training.frozen_outputs(predict, images, augment=True)
    cache_seconds_per_image_view = (time.perf_counter() - started) / (8 * count)
    small_validation = (training.frozen_outputs(predict, validation[0][:batch], False)[0], validation[1][:batch])
    upper_step = median_step(upper, views, labels, small_validation, True, params)
    steps_per_epoch = training.steps_per_epoch(len(train[1]), batch)
    cache_seconds = cache_seconds_per_image_view * 8 * (len(train[1]) + len(validation[1]) / 8)
    per_sparsity = {}
    for sparsity in config["sweep"]:
        steps = pruning.epochs_for(sparsity, config["epochs"], config["epochs_per_10pp"]) * steps_per_epoch
        saved = steps * (whole_step - upper_step)
        per_sparsity[str(sparsity)] = {
            "steps": steps,
            "saved_seconds": round(saved, 1),
            "cache_seconds": round(cache_seconds, 1),
            "net_seconds": round(saved - cache_seconds, 1),
        }
    result = {
        "machine": machine(),
        "timed_images": count,
        "fine_tune_from_block": config["fine_tune_from_block"],
        "whole_model_step_seconds": round(whole_step, 4),
        "upper_part_step_seconds": round(upper_step, 4),
        "cache_seconds_per_image_view": round(cache_seconds_per_image_view, 5),
        "per_sparsity": per_sparsity,
        "net_seconds": round(sum(v["net_seconds"] for v in per_sparsity.values()), 1),
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
