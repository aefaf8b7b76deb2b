"""Stage `report`: collect the rows params define -> score them against the baseline -> decide the reference
conclusions and a model per board -> render the markdown, the summary and the figures."""

from __future__ import annotations

import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stages.lib.core import params as params_lib
from stages.lib.core import paths
from stages.lib.core.io import atomic_path, read_json, run_stage, write_json, write_text
from stages.lib.core.settings import Board, Settings
from stages.lib.report import boards, cells, comparison, figures, headline, recommendation, rows, search, verdicts
from stages.lib.runtime.litert import COMPRESSION

TEMPLATE = Path(__file__).resolve().parent / "lib/report/report_template.md"
HEADER = (
    "| model | test accuracy ({level} CI) | Δ vs float32, pp ({level} CI) | McNemar p | file size | compressed "
    "| reduction (gzip vs gzip) | kernel zeros in file | latency median (IQR) | speed-up vs float32 (IQR) "
    "| balanced accuracy | RAM |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def _row(row: dict[str, Any]) -> str:
    change, latency = row["accuracy_change"], row["latency_ms"]
    pruned = (
        f" ({row['zeros_in_pruned_layers']:.1%} in pruned layers)" if row["zeros_in_pruned_layers"] is not None else ""
    )
    speedup = row["speedup_vs_float32"]
    speed = f"{speedup['median']:.2f}× ({speedup['p25']:.2f}–{speedup['p75']:.2f})" if speedup else "1 (itself)"
    return (
        f"| {cells.label(row)} | {cells.row_accuracy(row)} | {cells.change_vs_baseline(row['variant'], row)} "
        f"| {change['mcnemar_p']:.2f} | {cells.sizes(row)} "
        f"| {row['kernel_zeros_in_file']:.1%}{pruned} "
        f"| {latency['median']:.2f} ms ({latency['p25']:.2f}–{latency['p75']:.2f}, "
        f"{row['kernels']}) | {speed} | {row['balanced_accuracy']:.3f} | {cells.ram(row)} |"
    )


def device_accuracy(row: dict[str, Any], micro: dict[str, Any]) -> str:
    """The TFLite Micro test accuracy with its interval where it was measured (students; the deploy model)."""
    if row["tflm"]:
        return cells.tflm_accuracy(row["tflm"])
    if row["model"] == "deploy":
        return cells.accuracy(micro["tflm_accuracy"], *micro["tflm_accuracy_ci"])
    return "not run"


def tested_accuracy(row: dict[str, Any], micro: dict[str, Any]) -> float:
    """A board model's test accuracy on TFLite Micro where it was run (students, the deploy model), else LiteRT's."""
    if row["tflm"]:
        return row["tflm"]["accuracy"]
    return micro["tflm_accuracy"] if row["model"] == "deploy" else row["accuracy"]


def board_matrix(
    table: list[dict[str, Any]],
    advice: dict[str, dict],
    micro: dict[str, Any],
    targets: Mapping[str, Board],
    level: str,
) -> list[str]:
    """Every int8 model against every board: fits or the shortfall, the share of RAM and flash, estimated latency."""
    measured = [row for row in table if row["ram_bytes"]]
    lines = [
        "",
        "### Every int8 model on every board",
        "",
        "RAM and flash: RAM + reserve over RAM (SRAM, else PSRAM), flash images × file + reserve over flash. "
        "Flash: the bytes the board stores, the TFLM look-up-table-compressed file (`int8_lut`) where its clustered "
        "kernels shrink (raw int8 in brackets; such a model needs TFLM built with compression support, and runs on "
        "reference kernels: CMSIS-NN and ESP-NN do not read compressed tensors). "
        "TFLM accuracy: the whole test split on TensorFlow Lite Micro where it was run (students, the deploy model); "
        "the recommendation ranks by the validation scores (LiteRT int8) every row has.",
        "",
        f"| model | RAM | flash | validation AUC / accuracy | TFLM accuracy ({level} CI) | "
        + " | ".join(targets)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(targets),
    ]
    for row in measured:
        fits = []
        for name, board in targets.items():
            fit = advice[name]["fits"][row["variant"]]
            use = f"RAM {fit['ram_use']:.0%}, flash {fit['flash_use']:.0%}"
            fits.append(f"fits ({use}, ~{boards.estimated_ms(row, board):,.0f} ms)" if fit["fits"] else f"no ({use})")
        lines.append(
            f"| {cells.label(row)} | {cells.ram(row)} | {cells.flash(row)} "
            f"| {row['validation_roc_auc']:.3f} / {row['validation_accuracy']:.1%} "
            f"| {device_accuracy(row, micro)} | " + " | ".join(fits) + " |"
        )
    return lines


def ties(choice: dict[str, Any]) -> str:
    """The candidates tied with a board's pick, each with its validation score minus the best's and the interval."""
    if not choice["variant"]:
        return "–"
    differences = choice["differences_from_best"]
    return "; ".join(
        f"`{variant}` " + ("(the best)" if variant == choice["best"] else cells.score_difference(differences[variant]))
        for variant in sorted(choice["tied"], key=lambda v: -differences[v]["difference"])
    )


def _deployment_sentence(row: dict[str, Any]) -> str:
    deployment = row["deployment"]
    arenas = ", ".join(f"{arena:,}" for arena in deployment["part_arena_bytes"])
    return (
        f"{cells.label(row)}: parts' arenas {arenas} B; parts' blob {deployment['size_bytes']:,} B "
        f"({deployment['separate_parts_size_bytes']:,} B as separate files); the same network in one piece needs "
        f"a {deployment['whole_image_tflm_arena_bytes']:,} B arena and "
        f"{deployment['whole_image_size_bytes']:,} B of flash"
    )


def _clustering_sentence(row: dict[str, Any]) -> str:
    clustering, lut = row["clustering"], row["lut"]
    tables = (
        f"{lut['kernels']} kernels as table indices ({lut['kernel_bytes_int8']:,} → {lut['kernel_bytes_lut']:,} B)"
        if lut
        else "no kernel shrank as table indices"
    )
    return (
        f"{cells.label(row)}: each output channel clustered to {clustering['clusters']} values, whole-image int8 "
        "validation AUC "
        f"{clustering['clustered_int8_validation_roc_auc']:.4f} against {clustering['int8_validation_roc_auc']:.4f} "
        f"unclustered; {tables}; {row['flash_bytes']:,} B stored, {row['flash_bytes'] / row['size_bytes']:.2f}× its "
        f"int8 bytes and {row['flash_bytes'] / clustering['int8_bytes']:.2f}× the unclustered whole-image int8 file"
    )


def students_section(table: list[dict[str, Any]], gains: list[dict[str, Any]], params: Settings) -> list[str]:
    """The student models: shape, cost, TFLM accuracy, estimated latency per board, and what distillation buys."""
    students = [row for row in table if row["model"].startswith("students/")]
    if not students:
        return []
    targets, level = params.report.targets, cells.level(params.statistics.confidence)
    unlabeled = (
        ", plus the teacher's labels of elpv's unlabeled cells (p = 1/3, 2/3)" if params.distill.unlabeled else ""
    )
    lines = [
        "## Students: smaller inputs, shorter backbones, distilled from the baseline",
        "",
        "Each student is Lite0 stopped after a block, at a lower input resolution, trained on the float32 "
        f"baseline's soft labels (its mean over {params.distill.teacher_views} of the 8 dihedral views) mixed "
        "with the labels "
        f"(weight {params.distill.soft_label_weight:g} on the teacher)"
        + unlabeled
        + "; full-integer int8 (post-training quantization; the threshold chosen on validation with the integer "
        "kernels). Accuracy on TensorFlow Lite Micro over the whole test split is what a device computes. "
        "Latency: MACs × a published ns per MAC for each board (`ns_per_mac_source` in params.yaml), an estimate.",
        "",
        f"| student | MACs | flash | RAM | TFLM accuracy ({level} CI) "
        f"| Δ TFLM vs float32 baseline, pp ({level} CI) | " + " | ".join(f"est. ms, {name}" for name in targets) + " |",
        "|---|---|---|---|---|---|" + "---|" * len(targets),
    ]
    for row in students:
        lines.append(
            f"| {cells.label(row)} | {row['multiply_accumulates'] / 1e6:.1f} M | {cells.flash(row)} "
            f"| {cells.ram(row)} | {cells.tflm_accuracy(row['tflm'])} "
            f"| {cells.change(row['tflm_accuracy_change'])} | "
            + " | ".join(f"{boards.estimated_ms(row, board):,.0f}" for board in targets.values())
            + " |"
        )
    patched = [row for row in students if row["deployment"]]
    if patched:
        lines += [
            "",
            "Students marked “in patches” run their first blocks one image patch at a time (patch-based inference, "
            "MCUNetV2): one int8 model per patch position, each fed its real neighbours and the whole model's zero "
            "padding at the image border, so the assembled block output is the whole model's; the rest of the network "
            "runs on it. Their RAM is the largest part's arena plus the assembled block output and the input "
            "image, their flash one blob of every part with the weights the patch models share stored once, their "
            "MACs include the recomputed patch borders; their scores are the "
            "deployment's. " + "; ".join(_deployment_sentence(row) for row in patched) + ".",
        ]
    clustered = [row for row in students if row["clustering"]]
    if clustered:
        lines += [
            "",
            "Flash is what a board stores: the int8 file (or blob) stripped of what TFLM never reads, its clustered "
            "kernels as per-channel look-up-table indices (`int8_lut`: TFLM's DECODE operators on reference kernels, "
            "so the latency estimate uses the reference-kernel rate). "
            + "; ".join(_clustering_sentence(row) for row in clustered)
            + ".",
        ]
    for gain in gains:
        mcnemar = f"McNemar p {gain['mcnemar_p']:.2f}"
        lines += ["", f"Distillation: {cells.distillation(gain, level, mcnemar)}."]
    return ["", *lines]


def lut_lines(micro: dict[str, Any]) -> list[str]:
    """The deploy model under TFLM's look-up-table compression, where its kernels shrink."""
    lut = micro.get("int8_lut")
    if not lut:
        return ["- TFLM look-up-table compression: no kernel of this model shrinks (none is clustered)."]
    bits = ", ".join(f"{count} at {width} bits" for width, count in lut["kernels_by_index_bits"].items())
    same = "equal" if lut["tflm_outputs_equal_uncompressed"] else "NOT equal"
    return [
        f"- Under TFLM's look-up-table compression (`int8_lut`, what a board stores): {lut['size_bytes']:,} bytes "
        f"({lut['size_bytes'] / micro['model_bytes']:.2f}× the int8 file; gzip {lut['compressed_bytes']:,}); "
        f"{lut['kernels']} kernels as per-channel table indices ({bits}): {lut['kernel_bytes_int8']:,} → "
        f"{lut['kernel_bytes_lut']:,} bytes; first stripped of what TFLM never reads "
        f"({lut['stripped']['bytes_saved']:,} bytes: {lut['stripped']['tensor_name_bytes']:,} of tensor names, "
        f"{lut['stripped']['zero_points_collapsed']:,} per-channel zero points of zero weights). "
        f"Arena with the decompression scratch {lut['tflm_arena_bytes']:,} bytes; "
        f"TFLM outputs {same} to the uncompressed model's on all {micro['tflm_test_images']} test images "
        f"({lut['tflm_images_differing_from_uncompressed']} differ); {lut['tflm_host_seconds_per_image']:.3f} s per "
        "image on this host."
    ]


def render(
    table: list[dict[str, Any]],
    checks: list[dict[str, str]],
    advice: dict[str, dict],
    micro: dict[str, Any],
    params: Settings,
    gains: list[dict[str, Any]],
    searched: list[str],
    classes: list[str],
) -> str:
    """The markdown report: `report_template.md`'s prose, filled with the run's numbers and tables."""
    config, claims, level = (
        params.report,
        params.report.claims,
        cells.level(params.statistics.confidence),
    )
    base = rows.find(table, comparison.BASELINE)
    # The reference report's absolute accuracy claim, moved by the difference of the two baselines.
    translated = verdicts.translated_accuracy(
        claims.high_accuracy, claims.reference_baseline_accuracy, base["accuracy"]
    )
    values = {
        "test_images": len(base["correct"]),
        "decision_rule": decision_rule(params.threshold.rule, classes),
        "level": level,
        "resamples": f"{config.bootstrap_resamples:,}",
        "compression": COMPRESSION,
        "threads": params.evaluate.num_threads,
        "runs": params.evaluate.latency_runs,
        "small_cost_pp": f"{claims.small_cost_pp:g}",
        "faster_share": f"{claims.faster_share:.0%}",
        "faster_ratio": f"{claims.faster_ratio:g}",
        "reference_high": f"{claims.high_accuracy:.0%}",
        "reference_baseline": f"{claims.reference_baseline_accuracy:.0%}",
        "translated_high": f"{translated:.1%}",
        "floor": f"{config.accuracy_floor:.0%}",
        "ranking": params_lib.RANKINGS[config.rank_by],
        **micro_values(micro),
    }
    blocks = {
        "variant_table": [HEADER.format(level=level), *(_row(row) for row in table)],
        "claim_rows": [f"| {c['claim']} | {c['evidence']} | **{c['verdict']}** |" for c in checks],
        "lut_lines": lut_lines(micro),
        "board_rows": [board_row(config.targets[name], choice, table, micro) for name, choice in advice.items()],
        "board_matrix": board_matrix(table, advice, micro, config.targets, level),
        "students": students_section(table, gains, params),
        "search": searched,
    }
    return fill(TEMPLATE.read_text(encoding="utf-8"), values, blocks)


def decision_rule(rule: str, classes: list[str]) -> str:
    """How each model decides: its own threshold on P(class 1) for two classes, the argmax for more."""
    if len(classes) == 2:
        return (
            f"Each model's decision threshold is its own, chosen on validation by the `{rule}` rule "
            f"({params_lib.THRESHOLD_RULES[rule]})."
        )
    return (
        f"{len(classes)} classes ({', '.join(classes)}): each model's decision is its most probable class, and every "
        "AUC is the macro mean of the one-vs-rest AUCs (the `threshold` rules apply to two classes only)."
    )


def micro_values(micro: dict[str, Any]) -> dict[str, str]:
    """The deploy model's TFLite Micro figures, formatted for the template."""
    return {
        "micro_arena": f"{micro['tflm_arena_bytes']:,}",
        "micro_model_bytes": f"{micro['model_bytes']:,}",
        "micro_accuracy": f"{micro['tflm_accuracy']:.1%}",
        "micro_ci_low": f"{micro['tflm_accuracy_ci'][0]:.1%}",
        "micro_ci_high": f"{micro['tflm_accuracy_ci'][1]:.1%}",
        "micro_images": str(micro["tflm_test_images"]),
        "micro_kernels": micro["litert_kernels"],
        "micro_litert_accuracy": f"{micro['litert_accuracy_same_images']:.1%}",
        "micro_label_agreement": f"{micro['tflm_litert_label_agreement']:.1%}",
        "micro_median_difference": f"{micro['tflm_litert_median_probability_difference']:.4f}",
        "micro_max_difference": f"{micro['tflm_litert_max_probability_difference']:.4f}",
        "micro_reference_agreement": f"{micro['tflm_litert_reference_label_agreement']:.1%}",
        "micro_reference_max_difference": f"{micro['tflm_litert_reference_max_probability_difference']:.4f}",
        "micro_seconds": f"{micro['tflm_host_seconds_per_image']:.3f}",
    }


def board_row(board: Board, choice: dict[str, Any], table: list[dict[str, Any]], micro: dict) -> str:
    """One board's line: its reserves, the pick with what it measured on test, its ties and why."""
    chosen = rows.find(table, choice["variant"]) if choice["variant"] else None
    used = (
        f"{device_accuracy(chosen, micro)} | {choice['ram_use']:.0%} ({choice['arena_memory']}) "
        f"| {choice['flash_use']:.0%} | ~{boards.estimated_ms(chosen, board):,.0f} ms"
        if chosen
        else "– | – | – | –"
    )
    return (
        f"| {board.description} | {board.ram_reserve_bytes // 1024} KiB "
        f"| {board.flash_reserve_bytes // 1024} KiB | {board.flash_images} "
        f"| {('`' + choice['variant'] + '`') if choice['variant'] else 'nothing'} | {used} "
        f"| {ties(choice)} | {choice['reason']} |"
    )


def fill(template: str, values: dict[str, Any], blocks: dict[str, list[str]]) -> str:
    """The template with `$name`s replaced by `values` and lines that are only `$block` by `blocks`' lines (none for
    an empty block). A line starting with two spaces continues the line before it: long paragraphs stay readable in
    the template and come out as one line each."""
    lines: list[str] = []
    for line in template.splitlines():
        if line.startswith("  ") and lines:
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    out: list[str] = []
    for line in lines:
        name = line[1:] if line.startswith("$") else None
        if name in blocks:
            out.extend(blocks[name])
        else:
            out.append(string.Template(line).substitute(values))
    return "\n".join(out) + "\n"


def write_headline(
    table: list[dict[str, Any]], advice: dict[str, dict], checks: list[dict[str, str]], micro: dict[str, Any]
) -> None:
    """The DVC metrics: one small file per model, per board with a pick, and per verdict (`headline`)."""
    files = {
        "models": {row["variant"]: headline.model(row) for row in table},
        "boards": {
            name: headline.board(choice, tested_accuracy(rows.find(table, choice["variant"]), micro))
            for name, choice in advice.items()
            if choice["variant"]
        },
        "verdicts": headline.verdict_counts(checks, verdicts.VERDICTS),
    }
    for group, folder in headline.FOLDERS.items():
        with atomic_path(folder) as temporary:
            temporary.mkdir()
            for name, values in files[group].items():
                write_json(temporary / f"{name}.json", values)


def search_section(targets: Mapping[str, Board], level: str, folder: Path) -> list[str]:
    """The stored student search's lines, and its figure per board into `folder`; or why it is not shown."""
    record, why = search.load(paths.SEARCH_FRONTIER, paths.TEACHER)
    if record is None:
        return [why]
    drawn = [name for name in targets if name in record["boards"]]
    for name in drawn:
        figures.search_frontier(record["boards"][name], name, targets[name], level, folder / f"search_{name}.png")
    return [*search.lines(record, level), "", f"Figures: {', '.join(f'`search_{name}.png`' for name in drawn)}."]


def main() -> None:
    params = params_lib.load()
    config = params.report
    bootstrap = (config.bootstrap_resamples, params.seed, params.statistics.confidence)
    table = comparison.compare_to_baseline(rows.collect(params), *bootstrap)
    micro = read_json(paths.MICRO_METRICS)
    classes = read_json(paths.PREPARE_METRICS)["classes"]
    checks = verdicts.conclusions(table, config, params.statistics.confidence, params.seed)
    advice = recommendation.recommend(table, config, params.statistics.confidence, params.seed)
    gains = comparison.distillation_gains(table, params.students, *bootstrap)
    with atomic_path(paths.REPORT_FIGURES) as folder:
        folder.mkdir()
        level = cells.level(params.statistics.confidence)
        figures.accuracy_vs_size(table, level, folder / "accuracy_vs_size.png")
        figures.latency(table, folder / "latency.png")
        figures.accuracy_vs_sparsity(table, folder / "accuracy_vs_sparsity.png")
        figures.accuracy_vs_memory(table, config.targets, level, folder / "accuracy_vs_memory.png")
        for name, board in config.targets.items():
            figures.board_pick(table, name, board, advice[name], config.rank_by, level, folder / f"pick_{name}.png")
        lives = {"train": paths.live_folder("train")}
        lives |= {f"prune {s}": paths.live_folder(f"prune/{s}") for s in params.prune.sweep}
        figures.training_curves(lives, folder / "training_curves.png")
        searched = search_section(config.targets, level, folder)
    write_text(paths.REPORT, render(table, checks, advice, micro, params, gains, searched, classes))
    keep = ("correct", "variant", "validation_labels", "validation_probabilities")
    write_json(
        paths.SUMMARY,
        {
            "classes": classes,
            "variants": {row["variant"]: {k: v for k, v in row.items() if k not in keep} for row in table},
            "conclusions": checks,
            "recommendation": {
                name: {k: v for k, v in choice.items() if k != "fits"} for name, choice in advice.items()
            },
            "board_fit": {name: choice["fits"] for name, choice in advice.items()},
            "distillation": gains,
            "micro": micro,
        },
    )
    write_headline(table, advice, checks, micro)
    print(f"report: {len(table)} variants; " + "; ".join(f"{name}: {c['variant']}" for name, c in advice.items()))


if __name__ == "__main__":
    run_stage(main)
