"""Two-phase transfer learning: what each phase may change, and the epochs it reports."""

from __future__ import annotations

import re

import numpy as np

from conftest import copy_model
from stages.lib import training


def test_two_phase_fit_changes_only_the_head_and_the_blocks_it_fine_tunes(tiny_classifier, elpv_images, tmp_path):
    images, labels = elpv_images
    model = copy_model(tiny_classifier)
    before = {w.name: w.numpy().copy() for w in model.weights}
    live = training.open_live(tmp_path / "live")
    epochs = training.two_phase_fit(
        model,
        (images, labels),
        (images, labels),
        live,
        head_epochs=1,
        head_learning_rate=1e-3,
        epochs=2,
        learning_rate=1e-3,
        fine_tune_from_block=6,
        early_stopping_patience=1,
        batch_size=8,
        augment=True,
        seed=0,
    )
    live.end()
    assert 1 <= epochs["best_fine_tune_epoch"] <= epochs["fine_tune"] <= 2 and epochs["head"] == 1
    changed = {w.name for w in model.weights if not np.array_equal(w.numpy(), before[w.name])}
    assert any(name.startswith("head_dense") for name in changed)
    assert any(name.startswith("block6") for name in changed)
    below = [name for name in changed if name.startswith("stem") or re.match(r"block[0-5]_", name)]
    assert not below, f"frozen layers changed: {below[:3]}"
    assert not [name for name in changed if "_bn/" in name and not name.startswith("head_bn")]
