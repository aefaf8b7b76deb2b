"""Patch-based inference on the real (short) Lite0 classifier: the patches assemble to the whole model's block
output, and the int8 deployment is as close to the float model as the whole int8 model, on LiteRT and on TFLite
Micro alike."""

from __future__ import annotations

import numpy as np
import pytest

from stages.lib.compress import patch_models
from stages.lib.core.io import UserError
from stages.lib.keras import conversion
from stages.lib.keras import model as model_lib
from stages.lib.runtime import litert, patching, tflm


@pytest.mark.parametrize("block,grid", [(0, 2), (1, 2), (2, 3)])
def test_patches_assemble_to_the_whole_models_block_output(short_classifier, elpv_images, block, grid):
    images = elpv_images[0][:4].astype(np.float32)
    lower, _ = model_lib.split_at_block(short_classifier, block + 1)  # the whole-image model to `block`'s output
    whole = lower.predict(images, verbose=0)
    assembled = np.full_like(whole, np.nan)
    for part, (r0, r1, c0, c1), (o0, o1, p0, p1) in patch_models.patch_models(short_classifier, block, grid):
        assembled[:, o0:o1, p0:p1] = part.predict(images[:, r0:r1, c0:c1], verbose=0)
    # Every position written once, each equal to the whole model's (the same sums in another order at most).
    assert not np.isnan(assembled).any()
    np.testing.assert_allclose(assembled, whole, rtol=0, atol=1e-4 * np.abs(whole).max())


def test_a_grid_finer_than_the_block_output_is_a_user_error(short_classifier):
    # At 32 px block 2's output is 8x8.
    with pytest.raises(UserError, match=r"`patches.grid` is 9, but block 2's output is 8x8 .* at most 8"):
        patch_models.patch_models(short_classifier, 2, 9)


def test_interior_patches_read_beyond_their_share_of_the_image(short_classifier):
    (_, first, _), (_, second, _) = patch_models.patch_models(short_classifier, 1, 2)[:2]
    # Row-major: the second patch is right of the first; both read the columns around the middle (the halo).
    assert first[3] > second[2] and first[0] == second[0] == 0


def test_int8_deployment_is_as_good_as_the_whole_int8_model_and_tflite_micro_runs_it_alike(
    short_classifier, elpv_images, tmp_path
):
    images = elpv_images[0].astype(np.float32)
    float_answers = short_classifier.predict(images, verbose=0).reshape(-1)
    plan = patch_models.convert_deployment(short_classifier, 1, 2, images, tmp_path, 1024)
    parts = [model for _, model in patching.parts(tmp_path)]
    assert len(parts) == 5 and plan["buffer_shape"] == [8, 8, 24] and plan["input_shape"] == [32, 32, 3]
    # The four patch models share their weights: the blob is smaller than the parts written apart; the board's blob,
    # stripped of what TFLM never reads, is smaller again.
    unstripped = (tmp_path / patching.BUNDLE_FILE).stat().st_size
    assert patching.flash_bytes(tmp_path) < unstripped < plan["separate_bytes"]
    assert all(litert.io_types(part) == ("int8", "int8") for part in parts)
    whole = tmp_path / "whole.tflite"
    whole.write_bytes(conversion.convert(short_classifier, "int8", images))
    whole_error = np.abs(litert.predict(litert.reference_interpreter(whole), images) - float_answers).mean()
    reference = patching.predict(
        tmp_path, images, lambda _, model: litert.part_runner(litert.reference_interpreter(model)), ""
    )
    # The parts are calibrated apart and requantized between them: int8 error of the whole model's size, not more.
    # (This untrained head is sensitive: the whole int8 model is off by up to 0.2 here.)
    assert np.abs(reference - float_answers).mean() <= 1.5 * whole_error + 0.01
    arenas = [tflm.minimum_arena(part) for _, part in patching.parts(tmp_path, device=True)]
    micro = tflm.micro_predict_deployment(tmp_path, images, arenas, workers=2)
    # TFLite Micro's reference kernels on the stripped parts do LiteRT's reference arithmetic on the converter's:
    # the same int8 outputs.
    np.testing.assert_allclose(micro, reference, atol=1e-6)
    assert patching.ram_bytes(plan, arenas) == max(arenas) + 8 * 8 * 24 + 32 * 32 * 3
