"""Does each board's pick survive a second training seed? The recommendation of two runs that differ only in `seed`
(same code, same data split), under the pick rule in `stages/lib/report/recommendation.py` (ties by a paired
bootstrap on validation) and under the rule it replaced (models within a fixed 0.005 of the best validation score are
ties).

Usage: python benchmarks/pick_seeds.py RUN_A RUN_B [OUT.json]   (default benchmarks/results/pick_seeds.json)
RUN_A and RUN_B are repository copies after `dvc repro` with the same `data/prepared` (`dvc freeze prepare` in the
second) and different seeds. Only validation predictions and measured sizes are read: the test split decides nothing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stages.lib.core import params as params_lib  # noqa: E402
from stages.lib.core import scores  # noqa: E402
from stages.lib.core.io import write_json  # noqa: E402
from stages.lib.report import recommendation, rows

# The rule the bootstrap replaced: a fixed margin, smaller than one standard deviation of the noise it meant to absorb.
OLD_TOLERANCE = 0.005


def tolerance_pick(candidates: list[dict[str, Any]], rank_by: str, size_tolerance: float) -> dict[str, Any]:
    """The old rule: among the candidates within OLD_TOLERANCE of the best score, the smallest (flash, then arena,
    sizes within `size_tolerance` equal), and among equal sizes the better score."""
    best = max(row[rank_by] for row in candidates)
    pool = [row for row in candidates if row[rank_by] >= best - OLD_TOLERANCE]
    pool = recommendation.smallest_sizes(pool, size_tolerance)
    return max(pool, key=lambda row: (row[rank_by], -row["flash_bytes"], -row["tflm_arena_bytes"]))


def run_picks(folder: Path) -> dict[str, Any]:
    """One run's seed, candidates' validation scores, and per board both rules' picks."""
    here = Path.cwd()
    os.chdir(folder)
    try:
        params = params_lib.load()
        table = rows.collect(params)
    finally:
        os.chdir(here)
    config = params.report
    rank_by = config.rank_by
    advice = recommendation.recommend(table, config, params.statistics.confidence, params.seed)
    boards = {}
    for name, choice in advice.items():
        candidates = [row for row in table if row["variant"] in choice.get("differences_from_best", {})]
        boards[name] = {
            "bootstrap": {key: choice.get(key) for key in ("variant", "best", "tied")},
            "tolerance": tolerance_pick(candidates, rank_by, config.size_tolerance)["variant"] if candidates else None,
        }
    values = {row["variant"]: row[rank_by] for row in table if row["tflm_arena_bytes"]}
    # Issue 37's last target: the deploy model's validation AUC against the baseline int8's, paired.
    base, deploy = rows.find(table, "baseline_int8"), rows.find(table, "deploy_int8")
    deploy_change = scores.paired_auc_differences(
        base["validation_labels"],
        base["validation_probabilities"],
        {"deploy_int8": deploy["validation_probabilities"]},
        config.bootstrap_resamples,
        params.seed,
        params.statistics.confidence,
    )["deploy_int8"]
    return {
        "seed": params.seed,
        "rank_by": rank_by,
        "scores": values,
        "boards": boards,
        "deploy_minus_baseline_int8": deploy_change,
    }


def main() -> None:
    first, second = Path(sys.argv[1]), Path(sys.argv[2])
    out = Path(sys.argv[3]) if len(sys.argv) > 3 else Path(__file__).resolve().parent / "results/pick_seeds.json"
    runs = [run_picks(first), run_picks(second)]
    boards = {}
    for name in runs[0]["boards"]:
        picks = [run["boards"][name] for run in runs]
        boards[name] = {
            "bootstrap": [pick["bootstrap"] for pick in picks],
            "tolerance": [pick["tolerance"] for pick in picks],
            "bootstrap_same_pick": picks[0]["bootstrap"]["variant"] == picks[1]["bootstrap"]["variant"],
            "tolerance_same_pick": picks[0]["tolerance"] == picks[1]["tolerance"],
        }
    record = {
        "seeds": [run["seed"] for run in runs],
        "rank_by": runs[0]["rank_by"],
        "old_tolerance": OLD_TOLERANCE,
        "scores": {variant: [run["scores"].get(variant) for run in runs] for variant in runs[0]["scores"]},
        "boards": boards,
        "deploy_minus_baseline_int8": [run["deploy_minus_baseline_int8"] for run in runs],
    }
    write_json(out, record)
    for name, board in boards.items():
        print(
            f"{name}: bootstrap {[b['variant'] for b in board['bootstrap']]}, tolerance {board['tolerance']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
