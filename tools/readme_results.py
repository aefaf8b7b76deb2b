"""Write the README's results block from metrics/summary.json, so every number it shows is the committed run's.

Usage: python tools/readme_results.py [--check]
The block sits between the two marker lines below; --check exits 1 when the README is not what the metrics say
(the test suite runs it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stages.lib import cells  # noqa: E402

START, END = "<!-- results:start (tools/readme_results.py writes this block) -->", "<!-- results:end -->"


def block(summary: dict) -> str:
    """The markdown between the markers."""
    lines = [
        "| model | test accuracy (95 % CI) | Δ vs float32, pp (95 % CI) | file | gzip | reduction (gzip) | latency "
        "| speed-up vs float32 | TFLM arena |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, row in summary["variants"].items():
        speedup = row.get("speedup_vs_float32")
        speed = f"{speedup['median']:.2f}×" if speedup else "–"
        lines.append(
            f"| {cells.label(row)} | {cells.row_accuracy(row)} | {cells.change_vs_baseline(variant, row)} "
            f"| {cells.sizes(row)} | {row['latency_ms']['median']:.2f} ms | {speed} | {cells.arena(row)} |"
        )
    micro = summary["micro"]
    verdicts: dict[str, int] = {}
    for check in summary["conclusions"]:
        verdicts[check["verdict"]] = verdicts.get(check["verdict"], 0) + 1
    lines += [
        "",
        f"On TensorFlow Lite Micro the deploy model needs a {micro['tflm_arena_bytes']:,}-byte arena and "
        f"{micro['model_bytes']:,} bytes of flash, and scores {micro['tflm_accuracy']:.1%} on "
        f"{micro['tflm_test_images']} test images ({micro['tflm_litert_label_agreement']:.1%} label agreement with "
        f"LiteRT's XNNPACK kernels, {micro['tflm_litert_reference_label_agreement']:.1%} and a largest probability "
        f"difference of {micro['tflm_litert_reference_max_probability_difference']:.4f} with its reference kernels).",
        *(
            line
            for gain in summary.get("distillation", [])
            for line in ("", f"Distillation: student {cells.distillation(gain)}.")
        ),
        "",
        "The reference report's conclusions, one claim per row in `metrics/report.md`: "
        + ", ".join(f"{count} {verdict}" for verdict, count in sorted(verdicts.items()))
        + ".",
        "",
        "| board | recommended (validation AUC / accuracy, test accuracy; LiteRT int8) | why |",
        "|---|---|---|",
    ]
    for name, choice in summary["recommendation"].items():
        chosen = (
            f"`{choice['variant']}` ({choice['validation_roc_auc']:.3f} / {choice['validation_accuracy']:.1%}, "
            f"{choice['accuracy']:.1%})"
            if choice["variant"]
            else "nothing"
        )
        lines.append(f"| {name} | {chosen} | {choice['reason']} |")
    return "\n".join(lines)


def render(readme: str, summary: dict) -> str:
    before, rest = readme.split(START, 1)
    _, after = rest.split(END, 1)
    return f"{before}{START}\n{block(summary)}\n{END}{after}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if the README's block differs from the metrics")
    args = parser.parse_args()
    readme_path = ROOT / "README.md"
    readme = readme_path.read_text()
    expected = render(readme, json.loads((ROOT / "metrics/summary.json").read_text()))
    if args.check:
        if expected != readme:
            sys.exit("README.md's results block differs from metrics/summary.json: run python tools/readme_results.py")
        return
    readme_path.write_text(expected)


if __name__ == "__main__":
    main()
