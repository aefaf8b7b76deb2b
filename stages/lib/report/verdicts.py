"""The reference report's conclusions, one claim per row, each decided by a statistic with three outcomes:
supported, not supported, or inconclusive at this test size."""

from __future__ import annotations

from typing import Any

from stages.lib.core.params import SHARE_QUANTILES
from stages.lib.core.paths import variant_name
from stages.lib.core.settings import Claims, Report
from stages.lib.report import cells
from stages.lib.report.comparison import BASELINE, paired
from stages.lib.report.rows import find

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, UNTESTED = "supported", "not supported", "inconclusive", "not testable here"
VERDICTS = (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, UNTESTED)
# The numbers the reference report's claims are worded with ("little cost up to ~70 %", "~50 % pruning + int8 is
# 6-8x smaller"): part of each claim's text, not settings. The thresholds that decide them are in params.yaml.
REFERENCE_KNEE_SPARSITY, REFERENCE_HYBRID_SPARSITY, REFERENCE_HYBRID_REDUCTION = 0.7, 0.5, 6


def _interval(change: dict[str, float], level: str) -> str:
    return f"{change['pp']:+.1f} pp ({level} CI {change['low_pp']:+.1f} to {change['high_pp']:+.1f})"


def costs_little(change: dict[str, float], margin_pp: float) -> str:
    """Non-inferiority: the whole interval above -margin is supported, the whole interval below it is not."""
    if change["low_pp"] > -margin_pp:
        return SUPPORTED
    return NOT_SUPPORTED if change["high_pp"] < -margin_pp else INCONCLUSIVE


def declines(change: dict[str, float]) -> str:
    """A drop: the whole interval below zero is supported, an interval at or above zero is not."""
    if change["high_pp"] < 0:
        return SUPPORTED
    return NOT_SUPPORTED if change["low_pp"] >= 0 else INCONCLUSIVE


def above(interval: list[float], threshold: float) -> str:
    """An accuracy above a threshold: its whole interval above it, or below it."""
    if interval[0] > threshold:
        return SUPPORTED
    return NOT_SUPPORTED if interval[1] < threshold else INCONCLUSIVE


def faster(row: dict[str, Any], ratio: float, share: float) -> str:
    """The row runs `ratio`x faster than float32, from runs alternated with it in one process: supported when `share`
    of the paired speed-ups reach the ratio, not supported when their median does not, else inconclusive."""
    speedup = row["speedup_vs_float32"]
    if speedup[SHARE_QUANTILES[share]] >= ratio:
        return SUPPORTED
    return NOT_SUPPORTED if speedup["median"] < ratio else INCONCLUSIVE


def _speed(row: dict[str, Any]) -> str:
    own, reference, speedup = row["latency_ms"], row["float32_latency_ms"], row["speedup_vs_float32"]
    return (
        f"{speedup['median']:.2f}x (IQR {speedup['p25']:.2f}-{speedup['p75']:.2f}) over {speedup['runs']} runs "
        f"alternated with float32 in one process: median {own['median']:.2f} ms vs {reference['median']:.2f} ms"
    )


def translated_accuracy(claimed: float, reference_baseline: float, our_baseline: float) -> float:
    """An absolute accuracy claimed against the reference baseline, moved by the difference of the baselines."""
    return claimed - reference_baseline + our_baseline


def conclusions(rows: list[dict[str, Any]], config: Report, confidence: float, seed: int) -> list[dict[str, str]]:
    """Each claim of the reference report with our evidence and a verdict computed from the rows."""
    claims, level = config.claims, cells.level(confidence)
    bootstrap = (config.bootstrap_resamples, seed, confidence)
    out = _quantization_claims(rows, claims, level)
    out += _pruning_claims(rows, claims, config.size_tolerance, bootstrap, level)
    out += _hybrid_claims(rows, claims, level)
    out.append(
        _claim(
            "Float16 suits GPUs/NPUs when accuracy is critical.",
            "our evaluation runs LiteRT on a CPU; no GPU or NPU delegate was measured",
            UNTESTED,
        )
    )
    return out


def _claim(claim: str, evidence: str, verdict: str) -> dict[str, str]:
    return {"claim": claim, "evidence": evidence, "verdict": verdict}


def _quantization_claims(rows: list[dict[str, Any]], claims: Claims, level: str) -> list[dict[str, str]]:
    """Post-training quantization costs little accuracy; float16 and int8 run faster."""
    margin, ratio, share = claims.small_cost_pp, claims.faster_ratio, claims.faster_share
    out = []
    for fmt in ("float16", "dynamic", "int8"):
        row = find(rows, f"baseline_{fmt}")
        if row:
            change = row["accuracy_change"]
            out.append(
                _claim(
                    f"{fmt} quantization costs less than {margin:g} pp accuracy.",
                    f"{_interval(change, level)}, McNemar p {change['mcnemar_p']:.2f}",
                    costs_little(change, margin),
                )
            )
    for fmt in ("float16", "int8"):
        row = find(rows, f"baseline_{fmt}")
        if row:
            out.append(
                _claim(
                    f"{fmt} runs at least {ratio:g}x faster than float32 (LiteRT, this CPU).",
                    _speed(row),
                    faster(row, ratio, share),
                )
            )
    return out


def _pruning_claims(
    rows: list[dict[str, Any]], claims: Claims, tolerance: float, bootstrap: tuple, level: str
) -> list[dict[str, str]]:
    """Moderate pruning costs little, accuracy declines past the knee, the file shrinks only after compression and
    dense kernels run no faster."""
    margin, ratio, share = claims.small_cost_pp, claims.faster_ratio, claims.faster_share
    knee = REFERENCE_KNEE_SPARSITY
    base = find(rows, BASELINE)
    pruned = sorted(
        (r for r in rows if r["model"].startswith("pruned/") and r["format"] == "float32"),
        key=lambda r: r["sparsity_target"],
    )
    out = []
    for row in (r for r in pruned if r["sparsity_target"] <= knee):
        change = row["accuracy_change"]
        out.append(
            _claim(
                f"Pruning to {row['sparsity_target']:.0%} costs less than {margin:g} pp accuracy.",
                f"{_interval(change, level)}, McNemar p {change['mcnemar_p']:.2f}",
                costs_little(change, margin),
            )
        )
    moderate = [r for r in pruned if r["sparsity_target"] <= knee]
    for row in (r for r in pruned if r["sparsity_target"] > knee):
        if not moderate:
            out.append(
                _claim(
                    f"Accuracy declines from ~70 % to {row['sparsity_target']:.0%} sparsity.",
                    "needs a sweep point at or below 70 %",
                    UNTESTED,
                )
            )
            continue
        anchor = moderate[-1]
        change = paired(anchor, row, *bootstrap)
        out.append(
            _claim(
                f"Accuracy declines from {anchor['sparsity_target']:.0%} to {row['sparsity_target']:.0%} sparsity.",
                f"{row['sparsity_target']:.0%} minus {anchor['sparsity_target']:.0%}: {_interval(change, level)}",
                declines(change),
            )
        )
    for row in pruned:
        out += _pruned_file_claims(row, base, tolerance, ratio, share)
    return out


def _pruned_file_claims(
    row: dict[str, Any], base: dict[str, Any], tolerance: float, ratio: float, share: float
) -> list[dict[str, str]]:
    """A pruned file shrinks only under compression, and its dense kernels run no faster."""
    raw_same = abs(row["size_bytes"] - base["size_bytes"]) <= tolerance * base["size_bytes"]
    smaller = row["compressed_bytes"] * (1 + tolerance) < base["compressed_bytes"]
    verdict = faster(row, ratio, share)
    return [
        _claim(
            f"Pruning to {row['sparsity_target']:.0%} shrinks the file only after compression.",
            f"raw {row['size_reduction']:.2f}x, gzip {row['compressed_reduction']:.2f}x (exact sizes; equal "
            f"within {tolerance:.0%})",
            SUPPORTED if raw_same and smaller else NOT_SUPPORTED,
        ),
        _claim(
            f"Pruned to {row['sparsity_target']:.0%}, dense kernels run no faster (sparse kernels are needed).",
            f"{_speed(row)} ({row['kernels']})",
            {SUPPORTED: NOT_SUPPORTED, NOT_SUPPORTED: SUPPORTED}.get(verdict, INCONCLUSIVE),
        ),
    ]


def _hybrid_claims(rows: list[dict[str, Any]], claims: Claims, level: str) -> list[dict[str, str]]:
    """The reference report's hybrid (pruned + int8) and our deploy model: smaller, cheap and accurate."""
    margin, base = claims.small_cost_pp, find(rows, BASELINE)
    high = translated_accuracy(claims.high_accuracy, claims.reference_baseline_accuracy, base["accuracy"])
    hybrid = REFERENCE_HYBRID_SPARSITY
    candidates = [find(rows, variant_name(f"pruned/{hybrid}", "int8")), find(rows, "deploy_int8")]
    out = []
    for row in (r for r in candidates if r):
        name = "deploy (the model we ship)" if row["model"] == "deploy" else f"pruned {hybrid:.0%} + post-training int8"
        change, (low, high_ci) = row["accuracy_change"], row["accuracy_ci"]
        out += [
            _claim(
                f"{name}: 6-8x smaller than float32 (gzip vs gzip).",
                f"{row['compressed_reduction']:.1f}x (exact)",
                SUPPORTED if row["compressed_reduction"] >= REFERENCE_HYBRID_REDUCTION else NOT_SUPPORTED,
            ),
            _claim(
                f"{name}: costs less than {margin:g} pp accuracy.",
                _interval(change, level),
                costs_little(change, margin),
            ),
            _claim(
                f"{name}: accuracy above {claims.high_accuracy:.0%} (reference scale), i.e. above {high:.1%} on ours.",
                f"{row['accuracy']:.1%} ({level} CI {low:.1%}-{high_ci:.1%}); threshold "
                f"{claims.high_accuracy:.0%} - {claims.reference_baseline_accuracy:.0%} + our baseline "
                f"{base['accuracy']:.1%}",
                above(row["accuracy_ci"], high),
            ),
        ]
    return out
