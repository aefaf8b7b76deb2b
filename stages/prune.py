"""Stage `prune`: magnitude-prune the baseline's Conv2D and Dense layers to every sparsity of the sweep and fine-tune.

With `prune.chain` each sparsity starts from the one below it (the baseline for the lowest), as one gradual ramp
with a model kept at every stop; otherwise each starts from the baseline."""

from __future__ import annotations

import numpy as np

from stages.lib.compress import pruning
from stages.lib.core import data, paths, scores
from stages.lib.core import params as params_lib
from stages.lib.core.io import UserError, atomic_path, run_stage, write_json
from stages.lib.core.settings import Prune, Threshold, Train
from stages.lib.keras import model as model_lib
from stages.lib.keras import training


def fine_tune(
    config: Prune,
    train: Train,
    seed: int,
    model,
    start: float,
    sparsity: float,
    epochs: int,
    splits: dict,
    from_block: int,
) -> tuple:
    """`model` (at `start` sparsity) pruned to `sparsity` over `epochs` epochs, training from `from_block` up, and
    stripped of its wrappers; plus the epochs run and the one kept."""
    batch_size = train.batch_size
    model_lib.seed_everything(seed)
    (images, labels), validation = splits["train"], splits["validation"]
    model_lib.set_trainable(model, from_block=from_block, depthwise=config.train_depthwise)
    frozen = pruning.frozen_prunable(model, config.min_layer_weights)
    if frozen:
        raise UserError(
            f"params.yaml: `prune.fine_tune_from_block` is {from_block}, which freezes layers "
            f"that are pruned ({', '.join(frozen[:3])}{', ...' if len(frozen) > 3 else ''}); lower it"
        )
    steps = training.steps_per_epoch(len(labels), batch_size)
    polynomial, ramp_end = pruning.schedule(
        start, sparsity, epochs * steps, config.mask_updates, config.ramp_fraction, config.ramp_power
    )
    wrapped = pruning.prune(model, polynomial, config.min_layer_weights)
    learning_rate, floor = config.learning_rate, train.learning_rate_floor  # floor: cosine only
    if config.learning_rate_schedule == "cosine":
        learning_rate = training.cosine_schedule(learning_rate, epochs * steps, floor)
    keep = pruning.keep_best_at_target(ramp_end, steps, epochs, *training.monitor(train.best_epoch_metric))
    live = training.open_live(paths.live_folder(f"prune/{sparsity}"))
    training.fit(
        wrapped,
        # Distillation from the model being pruned: the baseline's soft labels (`teacher`) mixed with the labels.
        (images, data.mixed_targets(labels, splits["teacher"], config.soft_label_weight)),
        validation,
        epochs=epochs,
        learning_rate=learning_rate,
        batch_size=batch_size,
        augment=train.augment,
        seed=seed,
        class_weight=training.class_weights(train.class_weight, labels),
        callbacks=pruning.callbacks() + [training.live_callback(live), keep],
    )
    live.end()
    kept = None if keep.best_weights is None else keep.best_epoch + 1
    metric = keep.monitor.removeprefix("val_")
    return pruning.strip(wrapped), {"fine_tune": epochs, "kept": kept, f"kept_validation_{metric}": float(keep.best)}


def save(threshold_rule: Threshold, sparsity: float, start: float, model, epochs: dict, splits: dict) -> str:
    """Write `models/pruned/<sparsity>` and `metrics/prune/<sparsity>.json`; a line for the log."""
    name = paths.variant_name(paths.pruned_model(sparsity), "keras")
    validation, test = splits["validation"], splits["test"]
    threshold, probabilities = training.threshold_and_test_probabilities(model, validation, test[0], threshold_rule)
    with atomic_path(paths.keras_folder(paths.pruned_model(sparsity))) as folder:
        folder.mkdir()
        model_lib.save(
            folder, model, {"variant": name, "threshold": threshold, "sparsity_target": sparsity}, probabilities
        )
    measured = pruning.weight_sparsity(model)
    test_scores = scores.classification_scores(test[1], probabilities, threshold)
    write_json(
        paths.prune_metrics_path(sparsity),
        {
            "sparsity_target": sparsity,
            "started_from": start,
            "sparsity_measured": measured,
            "keras_test_accuracy": test_scores["accuracy"],
            "keras_test_balanced_accuracy": test_scores["balanced_accuracy"],
            "threshold": threshold,
            "epochs": epochs,
        },
    )
    accuracy = test_scores["accuracy"]
    return f"prune: {name} from {start:g}, sparsity {measured['prunable']:.3f}, test accuracy {accuracy:.4f}"


def main() -> None:
    params = params_lib.load()
    config = params.prune
    splits = {name: data.load_split(paths.PREPARED, name) for name in ("train", "validation", "test")}
    splits["teacher"] = np.load(paths.TEACHER)["train"]
    model, cumulative = None, 0
    from_block = model_lib.first_trained_block(bool(params.model.file), config.fine_tune_from_block)
    for sparsity, start, epochs in pruning.steps(config.sweep, config.chain, config.epochs, config.epochs_per_10pp):
        if start == 0:
            (model, _), cumulative = model_lib.load(paths.keras_folder("baseline")), 0
        model, epoch_record = fine_tune(
            config, params.train, params.seed, model, start, sparsity, epochs, splits, from_block
        )
        cumulative += epochs
        print(save(params.threshold, sparsity, start, model, {**epoch_record, "since_baseline": cumulative}, splits))


if __name__ == "__main__":
    run_stage(main)
