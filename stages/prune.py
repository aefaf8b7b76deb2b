"""Stage `prune@<sparsity>`: magnitude-prune the baseline's Conv2D and Dense layers to one sparsity and fine-tune."""

from __future__ import annotations

import argparse

from stages.lib import data, paths, pruning, scores, training
from stages.lib import model as model_lib
from stages.lib import params as params_lib
from stages.lib.io import UserError, atomic_path, run_stage, write_json


def prune_baseline(params: dict, sparsity: float) -> tuple:
    """The baseline pruned to `sparsity` and fine-tuned, stripped of its wrappers; plus its measured sparsity."""
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
    total_steps = config["epochs"] * training.steps_per_epoch(len(train[1]), batch_size)
    wrapped = pruning.prune(
        model, sparsity, total_steps, config["min_layer_weights"], config["mask_updates"], config["ramp_fraction"]
    )
    live = training.open_live(paths.live_folder(f"prune/{sparsity}"))
    training.fit(
        wrapped,
        train,
        validation,
        epochs=config["epochs"],
        learning_rate=config["learning_rate"],
        batch_size=batch_size,
        augment=params["train"]["augment"],
        seed=seed,
        class_weight=training.class_weights(params, train[1]),
        callbacks=pruning.callbacks() + [training.live_callback(live)],
    )
    live.end()
    stripped = pruning.strip(wrapped)
    return stripped, pruning.weight_sparsity(stripped)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sparsity", type=float, required=True)
    sparsity = parser.parse_args().sparsity
    params = params_lib.load()
    if not 0 < sparsity < 1:
        raise UserError(f"--sparsity {sparsity}: expected a fraction in (0, 1), as in `prune.sweep`")
    name = paths.variant_name(paths.pruned_model(sparsity), "keras")
    model, sparsity_measured = prune_baseline(params, sparsity)
    validation, test = data.load_split(paths.PREPARED, "validation"), data.load_split(paths.PREPARED, "test")
    threshold, probabilities = training.threshold_and_test_probabilities(
        model, validation, test[0], params["threshold"]["rule"]
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
        },
    )
    print(f"prune: {name} sparsity {sparsity_measured['prunable']:.3f}, test accuracy {test_scores['accuracy']:.4f}")


if __name__ == "__main__":
    run_stage(main)
