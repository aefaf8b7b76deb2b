"""Board fit: arena + RAM reserve against SRAM (else PSRAM), flash images x model + flash reserve against flash."""

from __future__ import annotations

from dataclasses import replace

import pytest

from stages.lib.core.settings import Board
from stages.lib.report import boards

BOARD = Board(
    description="test board",
    sram_bytes=1000,
    psram_bytes=5000,
    flash_bytes=10000,
    ram_reserve_bytes=100,
    flash_reserve_bytes=1000,
    flash_images=2,
    ns_per_mac=10,
    ns_per_mac_source="a test figure",
    reference_ns_per_mac=50,
)


@pytest.mark.parametrize(
    "model_bytes,arena,fits,memory,ram_short,flash_short",
    [
        (100, 900, True, "internal SRAM", 0, 0),  # 900 + 100 = 1000: exactly fills SRAM
        (100, 901, True, "PSRAM", 0, 0),  # one byte more and the reserve pushes the arena to PSRAM
        (100, 4901, False, "does not fit", 1, 0),
        (4500, 900, True, "internal SRAM", 0, 0),  # 2 x 4500 + 1000 = 10000: exactly fills flash
        (4501, 900, False, "internal SRAM", 0, 2),  # two OTA images: one more byte each
    ],
)
def test_fit_counts_reserves_and_images(model_bytes, arena, fits, memory, ram_short, flash_short):
    fit = boards.fit(model_bytes, arena, BOARD)
    assert fit["fits"] is fits and fit["arena_memory"] == memory
    assert fit["ram_shortfall_bytes"] == ram_short and fit["flash_shortfall_bytes"] == flash_short
    assert fit["flash_needed_bytes"] == 2 * model_bytes + 1000 and fit["ram_needed_bytes"] == arena + 100


def test_without_psram_the_sram_is_the_limit():
    fit = boards.fit(100, 950, replace(BOARD, psram_bytes=0))
    assert not fit["fits"] and fit["ram_shortfall_bytes"] == 50
    assert boards.shortfall(fit) == "arena + reserve needs 1,050 B, 50 B more than the RAM"
    assert boards.shortfall(boards.fit(100, 100, BOARD)) == ""


@pytest.mark.parametrize(
    "arena,memory,use",
    [
        (400, "internal SRAM", 500 / 1000),  # the share of the SRAM it lands in
        (2400, "PSRAM", 2500 / 5000),  # of the PSRAM, not of the larger of the two whatever the memory
        (5400, "does not fit", 5500 / 5000),  # fits nowhere: of the largest
    ],
)
def test_ram_use_is_the_share_of_the_memory_the_arena_lands_in(arena, memory, use):
    fit = boards.fit(100, arena, BOARD)
    assert fit["arena_memory"] == memory and fit["ram_use"] == pytest.approx(use)


def test_an_arena_in_sram_reports_its_sram_share_beside_a_large_psram():
    # The ESP32-S3 with 8 MB PSRAM and an arena filling its 512 KB SRAM: 98 %, not 6 %.
    board = replace(BOARD, sram_bytes=524288, psram_bytes=8388608, ram_reserve_bytes=163840)
    assert boards.fit(100, 352512, board)["ram_use"] == pytest.approx((352512 + 163840) / 524288)
