"""Stage `report`: the reference table from our measurements, the reference conclusions checked, the fit on
microcontroller targets, a recommendation per target, and the figures."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from stages.lib import figures, params as params_lib, summary, tflite, variants
from stages.lib.io import atomic_path, read_json, run_stage, write_json, write_text

REPORT, SUMMARY, FIGURES = "metrics/report.md", "metrics/summary.json", "plots/report"


def _mb(value: float) -> str:
    return f"{value / 1e6:.2f} MB"


def _row(label: str, row: dict[str, Any]) -> str:
    low, high = row["accuracy_ci95"]
    arena = f"{row['tflm_arena_bytes'] / 1024:.0f} KiB" if row["tflm_arena_bytes"] else "–"
    return (f"| {label} | {row['accuracy']:.1%} ({low:.1%}–{high:.1%}) | {_mb(row['size_bytes'])} | {row['size_reduction']:.1f}× | {row['note']} "
            f"| {_mb(row['compressed_bytes'])} | {row['compressed_reduction']:.1f}× | {row['sparsity_measured']:.1%} "
            f"| {row['latency_ms']:.2f} ± {row['latency_iqr_ms'] / 2:.2f} ms ({row['kernels']}) | {row['balanced_accuracy']:.3f} "
            f"| {row['accuracy_change_pp']:+.1f} | {row['mcnemar_p']:.2f} | {arena} |")


HEADER = ("| model | test accuracy (95 % CI) | file size | size reduction | notes | compressed size | compressed reduction "
          "| sparsity measured | latency median ± IQR/2 | balanced accuracy | Δ accuracy (pp) | McNemar p | TFLM arena |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def render(rows: list[dict[str, Any]], checks: list[dict[str, str]], advice: dict[str, dict], micro: dict[str, Any], params: dict[str, Any]) -> str:
    """The markdown report."""
    sweep = params["prune"]["sweep"]
    reference = [("baseline float32", "baseline_float32"), ("float16", "baseline_float16"), ("dynamic-range quantization", "baseline_dynamic"),
                 ("full-integer int8", "baseline_int8")]
    reference += [(f"pruned {s:.0%}", variants.variant_name(f"pruned/{s}", "float32")) for s in sweep]
    reference += [(f"pruned {s:.0%} + int8", variants.variant_name(f"pruned/{s}", "int8")) for s in sweep]
    reference += [(f"deploy: pruned {params['prune']['sparsity']:.0%} + {params['deploy']['method'].upper()} int8", "deploy_int8")]
    base = summary.find(rows, summary.BASELINE)
    lines = [
        "# edge-opt report", "",
        f"Test split: {base['correct'].__len__()} images, never used for training, early stopping, thresholds or calibration. "
        "Accuracy intervals: 95 % Wilson score. Δ and McNemar's exact test (two-sided) are paired against the float32 baseline on the same images. "
        f"Compressed size: {tflite.COMPRESSION}. Latency: LiteRT interpreter, single image, {params['evaluate']['num_threads']} threads, "
        f"{params['evaluate']['latency_runs']} runs after warm-up, on the machine that ran `dvc repro`.", "",
        "## The reference table, from our measurements", "", HEADER,
    ]
    lines += [_row(label, summary.find(rows, variant)) for label, variant in reference if summary.find(rows, variant)]
    lines += ["", "## Every variant", "", HEADER] + [_row(row["variant"], row) for row in rows]
    lines += ["", "## The reference report's conclusions, checked", "", "| claim | our evidence | verdict |", "|---|---|---|"]
    lines += [f"| {c['claim']} | {c['evidence']} | **{c['verdict']}** |" for c in checks]
    lines += ["", "## The deploy model on TensorFlow Lite Micro", "",
              f"- Tensor arena (smallest that TFLM allocates, measured): {micro['tflm_arena_bytes']:,} bytes; model (flash): {micro['model_bytes']:,} bytes.",
              f"- Accuracy on TFLM: {micro['tflm_accuracy']:.1%} on {micro['tflm_test_images']} test images; LiteRT on the same images: "
              f"{micro['litert_accuracy_same_images']:.1%}; label agreement {micro['tflm_litert_label_agreement']:.1%}, "
              f"largest probability difference {micro['tflm_litert_max_probability_difference']:.4f}.",
              f"- TFLM on this host CPU: {micro['tflm_host_seconds_per_image']:.3f} s per image (reference kernels; not a device latency).", "",
              "| target | fits | arena in | arena short by | flash use |", "|---|---|---|---|---|"]
    for name, fit in micro["targets"].items():
        lines.append(f"| {params['report']['targets'][name]['description']} | {'yes' if fit['fits'] else 'no'} | {fit['arena_memory']} "
                     f"| {fit['arena_shortfall_bytes']:,} B | {fit['flash_use']:.0%} |")
    lines += ["", f"## Recommendation (accuracy floor {params['report']['accuracy_floor']:.0%}, computed from the rows above)", ""]
    for name, choice in advice.items():
        target = params["report"]["targets"][name]["description"]
        if choice["variant"]:
            lines.append(f"- **{target}**: `{choice['variant']}` — {choice['accuracy']:.1%} accuracy, {_mb(choice['size_bytes'])} in flash, "
                         f"arena in {choice['arena_memory']}; {choice['reason']}.")
        else:
            lines.append(f"- **{target}**: nothing to recommend — {choice['reason']}.")
    return "\n".join(lines) + "\n"


def main() -> None:
    params = params_lib.load()
    rows = summary.compare_to_baseline(summary.collect())
    micro = read_json("metrics/micro.json")
    checks = summary.conclusions(rows)
    advice = summary.recommend(rows, params["report"]["targets"], params["report"]["accuracy_floor"])
    with atomic_path(FIGURES) as folder:
        folder.mkdir()
        figures.accuracy_vs_size(rows, folder / "accuracy_vs_size.png")
        figures.latency(rows, folder / "latency.png")
        figures.accuracy_vs_sparsity(rows, folder / "accuracy_vs_sparsity.png")
        lives = {"train": Path("plots/train")} | {f"prune {p.name}": p for p in sorted(Path("plots/prune").glob("*"))}
        figures.training_curves(lives, folder / "training_curves.png")
    write_text(REPORT, render(rows, checks, advice, micro, params))
    write_json(SUMMARY, {
        "variants": {row["variant"]: {k: v for k, v in row.items() if k not in ("correct", "variant", "accuracy_ci95")} for row in rows},
        "recommendation": advice,
    })
    print(f"report: {len(rows)} variants; " + "; ".join(f"{name}: {choice['variant']}" for name, choice in advice.items()))


if __name__ == "__main__":
    run_stage(main)
