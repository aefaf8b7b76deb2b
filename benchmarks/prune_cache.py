"""Would caching the frozen blocks pay in `prune`? Times both sides on this box and writes
benchmarks/results/prune_cache.jsonl (one record per run).

Usage, from the repository root after `dvc repro train` (needs data/prepared and models/baseline):
    python benchmarks/prune_cache.py [--images 320] [--runtime litert]
Blocks below `prune.fine_tune_from_block` never train, so their outputs under each of the 8 dihedral views can be
computed once, as `train` does for its frozen blocks, and serve the whole sweep (one stage). This measures what the
cache costs per image and view on the chosen runtime (Keras, or the blocks' float32 .tflite on LiteRT, conversion
included), and what it saves per training step (the median step of the pruned whole model against the pruned upper
part on cached inputs, same batch, same pruning wrappers, `prune.train_depthwise` as params.yaml has it), then
projects both onto the sweep's epochs.
"""

from __future__ import annotations

import argparse
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
from records import append as append_record  # noqa: E402
from stage_times import machine  # noqa: E402

from stages.lib.compress import pruning  # noqa: E402
from stages.lib.core import data, paths  # noqa: E402
from stages.lib.core import params as params_lib  # noqa: E402
from stages.lib.core.settings import Settings  # noqa: E402
from stages.lib.keras import conversion, training  # noqa: E402
from stages.lib.keras import model as model_lib  # noqa: E402

RESULTS = ROOT / "benchmarks/results/prune_cache.jsonl"


class StepTimes(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.ends = []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())


def median_step(
    model: keras.Model, images: np.ndarray, labels: np.ndarray, validation: tuple, cached: bool, params: Settings
) -> float:
    """The median training step of `model` pruned as `prune` prunes it, after two warm-up steps."""
    config, batch = params.prune, params.train.batch_size
    polynomial, _ = pruning.schedule(0.0, 0.7, 100, config.mask_updates, config.ramp_fraction, config.ramp_power)
    wrapped = pruning.prune(model, polynomial, config.min_layer_weights)
    timer = StepTimes()
    training.fit(
        wrapped,
        (images, labels),
        validation,
        epochs=1,
        learning_rate=config.learning_rate,
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
    parser.add_argument("--runtime", choices=("keras", "litert"), default="keras", help="what computes the cache")
    args = parser.parse_args()
    count = args.images
    params = params_lib.load()
    config, batch = params.prune, params.train.batch_size
    train, validation = data.load_split(paths.PREPARED, "train"), data.load_split(paths.PREPARED, "validation")
    images, labels = train[0][:count], train[1][:count].astype(np.float32)
    model, _ = model_lib.load(paths.keras_folder("baseline"))
    model_lib.set_trainable(model, from_block=config.fine_tune_from_block, depthwise=config.train_depthwise)
    lower, upper = model_lib.split_at_block(model, config.fine_tune_from_block)
    whole_step = median_step(model, images, labels, (validation[0][:batch], validation[1][:batch]), False, params)
    started = time.perf_counter()
    if args.runtime == "litert":
        predict = conversion.litert_runner(params.evaluate.num_threads, batch)(lower)
    else:
        predict = training.keras_runner(batch)(lower)
    views = training.frozen_outputs(predict, images, augment=True)
    cache_seconds_per_image_view = (time.perf_counter() - started) / (8 * count)  # a conversion included
    small_validation = (training.frozen_outputs(predict, validation[0][:batch], False)[0], validation[1][:batch])
    upper_step = median_step(upper, views, labels, small_validation, True, params)
    steps_per_epoch = training.steps_per_epoch(len(train[1]), batch)
    cache_seconds = cache_seconds_per_image_view * 8 * (len(train[1]) + len(validation[1]) / 8)
    per_sparsity = {}
    for sparsity in config.sweep:
        steps = pruning.epochs_for(sparsity, config.epochs, config.epochs_per_10pp) * steps_per_epoch
        per_sparsity[str(sparsity)] = {"steps": steps, "saved_seconds": round(steps * (whole_step - upper_step), 1)}
    saved = sum(v["saved_seconds"] for v in per_sparsity.values())
    result = {
        "machine": machine(),
        "runtime": args.runtime,
        "timed_images": count,
        "fine_tune_from_block": config.fine_tune_from_block,
        "train_depthwise": config.train_depthwise,
        "whole_model_step_seconds": round(whole_step, 4),
        "upper_part_step_seconds": round(upper_step, 4),
        "cache_seconds_per_image_view": round(cache_seconds_per_image_view, 5),
        "per_sparsity": per_sparsity,
        # The sweep runs in one stage: the cache is computed once for every sparsity.
        "cache_seconds": round(cache_seconds, 1),
        "net_seconds": round(saved - cache_seconds, 1),
    }
    append_record(RESULTS, result)


if __name__ == "__main__":
    main()
