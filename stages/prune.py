"""Stage `prune@<sparsity>`: magnitude-prune the baseline's Conv2D and Dense layers to one sparsity and fine-tune."""

from __future__ import annotations

import argparse

import numpy as np

from stages.lib import data, paths, pruning, scores, training
from stages.lib import model as model_lib
from stages.lib import params as params_lib
from stages.lib.io import UserError, atomic_path, run_stage, write_json


def prune_baseline(params: dict, sparsity: float) -> tuple:
    """The baseline pruned to `sparsity` and fine-tuned, stripped of its wrappers; plus its measured sparsity and
    the fine-tune's epochs (run, and the one kept)."""
    seed, config, batch_size = params["seed"], params["prune"], params["train"]["batch_size"]
    model_lib.seed_everything(seed)
    train, validation = data.load_split(paths.PREPARED, "train"), data.load_split(paths.PREPARED, "validation")
    model, _ = model_lib.load(paths.keras_folder("baseline"))
    model_lib.set_trainable(model, from_block=config["fine_tune_from_block"])
    frozen = pruning.frozen_prunable(model, config["min_layer_weights"])
    if frozen:
        raise UserError(
            f"params.yaml: `prune.fine_tune_from_block` is {config['fine_tune_from_block']}, which freezes layers "
            f"that are pruned ({', '.join(frozen[:3])}{', ...' if len(frozen) > 3 else ''}); lower it"
        )
    epochs = pruning.epochs_for(sparsity, config["epochs"], config["epochs_per_10pp"])
    steps = training.steps_per_epoch(len(train[1]), batch_size)
    polynomial, ramp_end = pruning.schedule(
        sparsity, epochs * steps, config["mask_updates"], config["ramp_fraction"], config["ramp_power"]
    )
    wrapped = pruning.prune(model, polynomial, config["min_layer_weights"])
    learning_rate, floor = config["learning_rate"], params["train"]["learning_rate_floor"]  # floor: cosine only
    if config["learning_rate_schedule"] == "cosine":
        learning_rate = training.cosine_schedule(learning_rate, epochs * steps, floor)
    keep = pruning.keep_best_at_target(ramp_end, steps, epochs, *training.monitor(params["train"]["best_epoch_metric"]))
    live = training.open_live(paths.live_folder(f"prune/{sparsity}"))
    training.fit(
        wrapped,
        # Distillation from the model being pruned: the baseline's soft labels (`teacher`) mixed with the labels.
        (train[0], data.mixed_targets(train[1], np.load(paths.TEACHER)["train"], config["soft_label_weight"])),
        validation,
        epochs=epochs,
        learning_rate=learning_rate,
        batch_size=batch_size,
        augment=params["train"]["augment"],
        seed=seed,
        class_weight=training.class_weights(params, train[1]),
        callbacks=pruning.callbacks() + [training.live_callback(live), keep],
    )
    live.end()
    stripped = pruning.strip(wrapped)
    kept = None if keep.best_weights is None else keep.best_epoch + 1
    return (
        stripped,
        pruning.weight_sparsity(stripped),
        {"fine_tune": epochs, "kept": kept, f"kept_validation_{keep.monitor.removeprefix('val_')}": float(keep.best)},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sparsity", type=float, required=True)
    sparsity = parser.parse_args().sparsity
    params = params_lib.load()
    if not 0 < sparsity < 1:
        raise UserError(f"--sparsity {sparsity}: expected a fraction in (0, 1), as in `prune.sweep`")
    name = paths.variant_name(paths.pruned_model(sparsity), "keras")
    model, sparsity_measured, epochs = prune_baseline(params, sparsity)
    validation, test = data.load_split(paths.PREPARED, "validation"), data.load_split(paths.PREPARED, "test")
    threshold, probabilities = training.threshold_and_test_probabilities(
        model, validation, test[0], params["threshold"]
    )
    with atomic_path(paths.keras_folder(paths.pruned_model(sparsity))) as folder:
        folder.mkdir()
        model_lib.save(
            folder, model, {"variant": name, "threshold": threshold, "sparsity_target": sparsity}, probabilities
        )
    test_scores = scores.classification_scores(test[1], probabilities, threshold)
    write_json(
        paths.prune_metrics_path(sparsity),
        {
            "sparsity_target": sparsity,
            "sparsity_measured": sparsity_measured,
            "keras_test_accuracy": test_scores["accuracy"],
            "keras_test_balanced_accuracy": test_scores["balanced_accuracy"],
            "threshold": threshold,
            "epochs": epochs,
        },
    )
    print(f"prune: {name} sparsity {sparsity_measured['prunable']:.3f}, test accuracy {test_scores['accuracy']:.4f}")


if __name__ == "__main__":
    run_stage(main)
