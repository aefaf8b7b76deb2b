"""Stage `prune@<sparsity>`: magnitude-prune the baseline's Conv2D and Dense layers to one sparsity and fine-tune."""
from __future__ import annotations

import argparse

from stages.lib import data, model as model_lib, params as params_lib, scores, training, variants
from stages.lib.io import UserError, atomic_path, run_stage, write_json

PREPARED = "data/prepared"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sparsity", type=float, required=True)
    sparsity = parser.parse_args().sparsity
    params = params_lib.load()
    if not 0 < sparsity < 1:
        raise UserError(f"--sparsity {sparsity}: expected a fraction in (0, 1), as in `prune.sweep`")
    name = variants.variant_name(f"pruned/{sparsity}", "keras")
    model, sparsity_measured = training.prune_baseline(params, sparsity, f"plots/prune/{sparsity}")
    validation, test = data.load_split(PREPARED, "validation"), data.load_split(PREPARED, "test")
    threshold, probabilities = model_lib.threshold_and_test_probabilities(model, validation, test[0])
    with atomic_path(variants.keras_folder(f"pruned/{sparsity}")) as folder:
        folder.mkdir()
        model_lib.save(folder, model, {"variant": name, "threshold": threshold, "sparsity_target": sparsity}, probabilities)
    test_scores = scores.classification_scores(test[1], probabilities, threshold)
    write_json(f"metrics/prune/{sparsity}.json", {name: {
        "sparsity_target": sparsity,
        "sparsity_measured": sparsity_measured,
        "keras_test_accuracy": test_scores["accuracy"],
        "keras_test_balanced_accuracy": test_scores["balanced_accuracy"],
        "threshold": threshold,
    }})
    print(f"prune: {name} sparsity {sparsity_measured['prunable']:.3f}, test accuracy {test_scores['accuracy']:.4f}")


if __name__ == "__main__":
    run_stage(main)
