"""The geometry and the RAM of a patch-based deployment."""

from __future__ import annotations

import pytest

from stages.lib.runtime import patching


def test_grid_regions_tile_the_map_once_row_major():
    regions = patching.grid_regions((7, 6), 3)
    assert regions[:3] == [(0, 2, 0, 2), (0, 2, 2, 4), (0, 2, 4, 6)]
    covered = [(r, c) for r0, r1, c0, c1 in regions for r in range(r0, r1) for c in range(c0, c1)]
    assert sorted(covered) == [(r, c) for r in range(7) for c in range(6)]


def test_a_grid_finer_than_the_map_is_refused():
    with pytest.raises(ValueError, match="4x4 grid does not split a 3x8 map"):
        patching.grid_regions((3, 8), 4)


def test_ram_is_the_largest_part_arena_plus_the_buffer_and_the_image():
    plan = {"buffer_shape": [12, 12, 40], "input_shape": [96, 96, 3]}
    assert patching.ram_bytes(plan, [90_000, 120_000, 100_000]) == 120_000 + 12 * 12 * 40 + 96 * 96 * 3
