"""Two-phase transfer learning: what each phase may change, and the epochs it reports."""

from __future__ import annotations

import re

import numpy as np

from conftest import copy_model
from stages.lib.keras import model as model_lib
from stages.lib.keras import training

# Both phases, small: one head epoch, then fine-tuning from block 6.
SMALL = {
    "head_epochs": 1,
    "head_learning_rate": 1e-3,
    "epochs": 1,
    "learning_rate": 1e-3,
    "fine_tune_from_block": 6,
    "early_stopping_patience": 1,
    "best_epoch_metric": "auc",
    "learning_rate_floor": 0.0,
    "batch_size": 8,
    "augment": True,
    "seed": 0,
}


def _fit(model, train, validation, live_folder, frozen_runner=None, **settings) -> dict[str, int]:
    live = training.open_live(live_folder)
    config = training.FitConfig(**{**SMALL, **settings})
    epochs = training.two_phase_fit(model, train, validation, live, config, frozen_runner)
    live.end()
    return epochs


def test_two_phase_fit_changes_only_the_head_and_the_blocks_it_fine_tunes(tiny_classifier, elpv_images, tmp_path):
    images, labels = elpv_images
    model = copy_model(tiny_classifier)
    before = {w.name: w.numpy().copy() for w in model.weights}
    epochs = _fit(model, (images, labels), (images, labels), tmp_path / "live", epochs=2)
    assert 1 <= epochs["best_fine_tune_epoch"] <= epochs["fine_tune"] <= 2 and epochs["head"] == 1
    changed = {w.name for w in model.weights if not np.array_equal(w.numpy(), before[w.name])}
    assert any(name.startswith("head_dense") for name in changed)
    assert any(name.startswith("block6") for name in changed)
    below = [name for name in changed if name.startswith("stem") or re.match(r"block[0-5]_", name)]
    assert not below, f"frozen layers changed: {below[:3]}"
    assert not [name for name in changed if "_bn/" in name and not name.startswith("head_bn")]


def test_training_on_cached_frozen_outputs_matches_training_the_whole_model(tiny_classifier, elpv_images, tmp_path):
    """The blocks below `fine_tune_from_block` run once per view; the fit is the one the whole model gets."""
    images, labels = elpv_images
    trained = {}
    for cached in (False, True):
        model = copy_model(tiny_classifier)
        model.get_layer("head_dropout").rate = 0.0  # dropout's random ops differ between the two graphs
        _fit(model, (images, labels), (images[:8], labels[:8]), tmp_path / f"live{cached}", cache_frozen=cached)
        trained[cached] = model
    whole, split = trained[False], trained[True]
    assert [w.name for w in split.weights] == [w.name for w in whole.weights]  # the caller's model was trained
    original = {w.name: w.numpy() for w in tiny_classifier.weights}
    assert any(not np.array_equal(w.numpy(), original[w.name]) for w in split.weights if w.name.startswith("block6"))
    # Float rounding differs between the graphs, and Adam turns a near-zero gradient's noise into a full step:
    # a handful of weights may move apart, the predictions may not.
    apart = sum(
        int((~np.isclose(a.numpy(), b.numpy(), atol=2e-4)).sum())
        for a, b in zip(whole.weights, split.weights, strict=True)
    )
    assert apart < 1e-4 * sum(int(np.prod(w.shape)) for w in whole.weights)
    np.testing.assert_allclose(model_lib.predict(split, images), model_lib.predict(whole, images), atol=1e-3)
