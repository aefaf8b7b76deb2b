"""Magnitude pruning on the real classifier: sparsity is measured by counting zeros."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import copy_model
from stages.lib.compress import pruning


def test_pruning_reaches_the_target_sparsity(pruned):
    sparsity = pruning.weight_sparsity(pruned)
    assert sparsity["conv2d"] == pytest.approx(0.6, abs=0.01)
    assert sparsity["dense"] == pytest.approx(0.6, abs=0.01)
    assert sparsity["depthwise_conv2d"] < 0.05  # tfmot does not prune depthwise kernels


def test_unpruned_model_has_no_sparsity(tiny_classifier):
    assert pruning.weight_sparsity(tiny_classifier)["prunable"] < 0.01


def test_a_chained_prune_keeps_the_zeros_it_starts_from(pruned, elpv_images):
    """From 60 % to 80 %: the ramp starts at the zeros the model has, and no pruned weight comes back."""
    from conftest import fit_briefly
    from stages.lib.keras import model

    images, labels = elpv_images
    model.seed_everything(0)
    net = copy_model(pruned)
    model.set_trainable(net, from_block=0)
    polynomial, _ = pruning.schedule(0.6, 0.8, 12, 20, 0.5, 3)
    assert float(polynomial(0)[1]) == pytest.approx(0.6)  # the first mask update holds the start, not 0
    wrapped = pruning.prune(net, polynomial, min_weights=0)
    fit_briefly(wrapped, images, labels, 4, pruning.callbacks())
    chained = pruning.strip(wrapped)
    assert pruning.weight_sparsity(chained)["conv2d"] == pytest.approx(0.8, abs=0.01)
    for before, after in zip(pruned.layers, chained.layers, strict=True):
        if pruning.prunable(before):
            assert np.all(after.kernel.numpy()[before.kernel.numpy() == 0] == 0), before.name


@pytest.mark.parametrize("chain", [True, False])
@pytest.mark.parametrize("sweep", [[0.5], [0.8, 0.5, 0.7], [0.3, 0.5, 0.9]])
def test_every_model_of_the_sweep_gets_its_epochs(sweep, chain):
    """Chained or not, the model at each sparsity has fine-tuned `epochs_for` it since the baseline (one epoch at least
    per link); chained, each link starts where the one before ended."""
    steps = pruning.steps(sweep, chain, 3, 2)
    assert [sparsity for sparsity, _, _ in steps] == sorted(sweep)
    since_baseline = 0
    for i, (sparsity, start, epochs) in enumerate(steps):
        before = since_baseline if chain else 0
        since_baseline = before + epochs
        assert start == (steps[i - 1][0] if chain and i else 0.0)
        assert since_baseline == max(pruning.epochs_for(sparsity, 3, 2), before + 1)


@pytest.mark.parametrize("total", [1, 3, 49, 147, 1000])
@pytest.mark.parametrize("updates,ramp", [(20, 0.5), (5, 1.0), (50, 0.25)])
def test_schedule_ends_on_a_mask_update_within_the_ramp(total, updates, ramp):
    schedule, end_step = pruning.schedule(0.0, 0.5, total, updates, ramp, 3)
    assert 1 <= end_step <= max(total, 1) and end_step % schedule.frequency == 0
    if total >= 2 * updates:  # room for the ramp: it ends where params say, to within one update
        assert abs(end_step - ramp * total) <= schedule.frequency


@pytest.mark.parametrize("ramp_end,first", [(49, 0), (50, 1), (98, 1), (147, 2)])
def test_the_kept_epoch_is_one_at_the_target_sparsity(ramp_end, first):
    """Epochs ending before the ramp does hold a denser model: the best is chosen from the first at the target on."""
    keep = pruning.keep_best_at_target(ramp_end, 49, 6, "val_auc", "max")
    assert keep.start_from_epoch == first and keep.patience == 6 and keep.restore_best_weights


def test_the_best_epoch_at_target_is_restored(tiny_classifier):
    import tf_keras as keras

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    keep = pruning.keep_best_at_target(98, 49, 4, "val_auc", "max")
    keep.set_model(model)
    keep.on_train_begin()
    for epoch, (auc, weight) in enumerate([(0.99, 1.0), (0.90, 2.0), (0.95, 3.0), (0.93, 4.0)]):
        model.set_weights([np.full((1, 1), weight), np.zeros(1)])
        keep.on_epoch_end(epoch, {"val_auc": auc})
    keep.on_train_end()
    assert keep.best_epoch == 2 and model.get_weights()[0][0, 0] == 3.0  # epoch 0 (0.99) was still ramping


def test_small_layers_stay_dense(tiny_classifier):
    polynomial, _ = pruning.schedule(0.0, 0.5, 10, 20, 0.5, 3)
    wrapped = pruning.prune(copy_model(tiny_classifier), polynomial, min_weights=16384)
    names = {layer.name for layer in wrapped.layers if type(layer).__name__ == "PruneLowMagnitude"}
    assert "prune_low_magnitude_top_conv" in names and "prune_low_magnitude_block15_project_conv" in names
    assert not any(name.endswith(("stem_conv", "block0_project_conv", "head_output")) for name in names)


def test_depthwise_layers_are_not_wrapped(tiny_classifier):
    assert not pruning.prunable(tiny_classifier.get_layer("block1_dw_conv"))
    assert pruning.prunable(tiny_classifier.get_layer("block1_expand_conv"))
    assert pruning.prunable(tiny_classifier.get_layer("head_dense"))


def test_layers_pruning_touches_must_be_trained(short_classifier):
    from stages.lib.keras import model

    net = copy_model(short_classifier)
    model.set_trainable(net, from_block=2)
    assert "block1_project_conv" in pruning.frozen_prunable(net, min_weights=1000)
    model.set_trainable(net, from_block=1)
    assert pruning.frozen_prunable(net, min_weights=1000) == []
