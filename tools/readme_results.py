"""Write the generated blocks of README.md (the per-board answer, the results, what a run costs) from
metrics/summary.json and benchmarks/results/stage_times.json, docs/benchmarks.md's table of every recorded run
from benchmarks/results/stage_times*.json, and docs/decisions.md's study records (benchmarks/results/
prune_recipes.jsonl, prune_cache.jsonl), so every number they show comes from a file.

Usage: python tools/readme_results.py [--check]
Each block sits between its two marker lines; --check exits 1 when a document is not what the files say (the test
suite runs it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stages.lib.core import params as params_lib  # noqa: E402
from stages.lib.core.settings import Board  # noqa: E402
from stages.lib.report import boards as boards_lib  # noqa: E402
from stages.lib.report import cells  # noqa: E402

TIMES = ROOT / "benchmarks/results"


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start (tools/readme_results.py writes this block) -->", f"<!-- {name}:end -->"


def _short(variant: str) -> str:
    """`student_b7_96_int8` -> `b7_96`: a board table names int8 models, so the format says nothing there."""
    return variant.removeprefix("student_").removesuffix("_int8")


def boards(summary: dict, params_targets: Mapping[str, Board]) -> str:
    """Per board: the recommended model, the models tied with it, what it scored on TFLite Micro, its RAM and flash."""
    lines = [
        "| board | model | tied with it on validation | TFLM test accuracy | RAM | flash |",
        "|---|---|---|---|---|---|",
    ]
    for name, choice in summary["recommendation"].items():
        description = params_targets[name].description.split(" (")[0].split(" / ")[0]
        if not choice["variant"]:
            lines.append(f"| {description} | nothing fits (see `metrics/report.md`) | – | – | – | – |")
            continue
        row = summary["variants"][choice["variant"]]
        tflm = row["tflm"]["accuracy"] if row.get("tflm") else summary["micro"]["tflm_accuracy"]
        others = [_short(variant) for variant in choice["tied"] if variant != choice["variant"]]
        others = others[:2] + ([f"+{len(others) - 2} (report)"] if len(others) > 2 else [])
        lines.append(
            f"| {description} | `{_short(choice['variant'])}` | {', '.join(others) or 'none'} | {tflm:.1%} "
            f"| {row['ram_bytes']:,} B ({choice['ram_use']:.0%}) "
            f"| {cells.mb(row['flash_bytes'])} ({choice['flash_use']:.0%}) |"
        )
    return "\n".join(lines)


def block(summary: dict, level: str) -> str:
    """Every variant, compact: test accuracy, the paired change against float32, what it stores and the RAM."""
    lines = [
        f"| variant | test accuracy | Δ vs float32, pp ({level} CI) | file | gzip | board stores | RAM |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant, row in summary["variants"].items():
        arena = f"{row['ram_bytes']:,} B" if row["ram_bytes"] else "–"
        stored = cells.mb(row["flash_bytes"]) if row["ram_bytes"] else "–"
        lines.append(
            f"| `{variant}` | {row['accuracy']:.1%} | {cells.change_vs_baseline(variant, row)} "
            f"| {cells.mb(row['size_bytes'])} | {cells.mb(row['compressed_bytes'])} | {stored} | {arena} |"
        )
    verdicts: dict[str, int] = {}
    for check in summary["conclusions"]:
        verdicts[check["verdict"]] = verdicts.get(check["verdict"], 0) + 1
    lines += [
        "",
        "The seed lab's conclusions, checked one claim per row in `metrics/report.md`:",
        ", ".join(f"{count} {verdict}" for verdict, count in sorted(verdicts.items())) + ".",
    ]
    return "\n".join(lines)


def _kind(stage: str) -> str:
    """`prune@0.5` (one stage per sparsity in older runs) and `prune` -> `prune`."""
    return stage.split("@", 1)[0]


def cost(times: dict) -> str:
    """What the committed default run took, on which machine."""
    machine = times["machine"]
    prune = [value for key, value in times["median_step_seconds"].items() if _kind(key) == "prune"]
    return (
        f"A full `dvc repro` took **{times['total_seconds'] / 60:.0f} min** on a {machine['cores']}-core "
        f"{machine['cpu']} at {'-'.join(sorted({f'{min(prune):.2f}', f'{max(prune):.2f}'}))} s per `prune` step\n"
        "(`benchmarks/results/stage_times.json`; scale by your box's step rate, see docs/benchmarks.md)."
    )


def runs_table() -> str:
    """docs/benchmarks.md: every recorded default run, newest first, by stage kind."""
    records = sorted(TIMES.glob("stage_times*.json"), key=lambda path: (path.name != "stage_times.json", path.name))
    lines = [
        "| file | machine | total | train | prune (all) | deploy | students | evaluations | micro | prune step |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for path in records:
        times = json.loads(path.read_text())
        stages = times["stage_seconds"]

        def total(prefixes: tuple[str, ...], stages: dict = stages) -> str:
            return f"{sum(v for k, v in stages.items() if k.startswith(prefixes)):,.0f} s"

        prune = [v for k, v in times.get("median_step_seconds", {}).items() if _kind(k) == "prune"]
        step = f"{sum(prune) / len(prune):.2f} s" if prune else "–"
        lines.append(
            f"| `{path.name}` | {times['machine']['cores']}-core {times['machine']['cpu']} "
            f"| {times['total_seconds']:,.0f} s | {total(('train',))} | {total(('prune',))} | {total(('deploy',))} "
            f"| {total(('student@', 'teacher'))} | {total(('evaluate',))} | {total(('micro',))} | {step} |"
        )
    return "\n".join(lines)


def prune_recipes() -> str:
    """docs/decisions.md: every pruning-recipe run on validation, by sparsity and overrides, seeds side by side."""
    lines = [
        "| sparsity | overrides of `prune.*` | seed: int8 validation AUC (kept epoch / epochs) | mean |",
        "|---|---|---|---|",
    ]
    groups: dict[tuple, list[dict]] = {}
    for line in (TIMES / "prune_recipes.jsonl").read_text().splitlines():
        record = json.loads(line)
        key = (record["sparsity"], json.dumps(record["overrides"], sort_keys=True))
        groups.setdefault(key, []).append(record)
    for (sparsity, overrides), records in sorted(groups.items()):
        runs = ", ".join(
            f"{r['seed']}: {r['int8_validation_auc']:.4f} ({r['epochs']['kept']}/{r['epochs']['fine_tune']})"
            for r in records
        )
        mean = sum(r["int8_validation_auc"] for r in records) / len(records)
        shown = ", ".join(f"{k}={v}" for k, v in json.loads(overrides).items()) or "the params of the time"
        lines.append(f"| {sparsity} | {shown} | {runs} | {mean:.4f} |")
    return "\n".join(lines)


def student_clusters() -> str:
    """docs/decisions.md: every student-clustering candidate on validation, against its unclustered twin."""
    lines = [
        "| student | method | clusters | smallest kernel clustered | int8 validation AUC (twin) | Δ | stored bytes "
        "(× int8) |",
        "|---|---|---|---|---|---|---|",
    ]
    for line in (TIMES / "student_clusters.jsonl").read_text().splitlines():
        r = json.loads(line)
        method = r["method"] + (f", {r['cluster_epochs']} fine-tune epochs" if "cluster_epochs" in r else "")
        lines.append(
            f"| `{r['student']}` | {method} | {r['clusters']} | {r['cluster_min_weights']:,} "
            f"| {r['validation_auc']:.4f} ({r['twin_validation_auc']:.4f}) "
            f"| {r['validation_auc'] - r['twin_validation_auc']:+.4f} "
            f"| {r['lut_bytes']:,} ({r['lut_bytes'] / r['int8_bytes']:.2f}×) |"
        )
    return "\n".join(lines)


def student_lut_trade(params_targets: Mapping[str, Board]) -> str:
    """docs/decisions.md: `b10_96` as the default run of 4b2daa2 stored it, and as a committed run with `clusters: 8`
    stored it (benchmarks/results/student_b10_96_{plain,clustered}_run.json)."""
    clustered = json.loads((TIMES / "student_b10_96_clustered_run.json").read_text())
    clustered["ram_bytes"] = clustered["tflm_arena_bytes"]  # recorded when that key held a deployment's whole RAM
    plain = json.loads((TIMES / "student_b10_96_plain_run.json").read_text())
    names = list(params_targets)
    lines = [
        "| `b10_96` stored | flash | RAM | int8 validation AUC | TFLM test accuracy | "
        + " | ".join(f"est. ms, {name}" for name in names)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(names),
    ]
    for label, row, accuracy in (
        ("stripped", plain, plain["tflm_test_accuracy"]),
        ("clustered to 8, look-up tables", clustered, clustered["tflm_test_accuracy"]),
    ):
        estimates = " | ".join(f"{boards_lib.estimated_ms(row, params_targets[name]):,.0f}" for name in names)
        lines.append(
            f"| {label} | {row['flash_bytes']:,} B | {row['ram_bytes']:,} B | {row['validation_roc_auc']:.4f} "
            f"| {accuracy:.1%} | {estimates} |"
        )
    return "\n".join(lines)


def student_search() -> str:
    """docs/decisions.md: the on-demand student search (benchmarks/results/student_search/): per board what fits, the
    best, the pick and its ties; the architectures trained in full with their proxy and full AUC; the rank
    correlation."""
    record = json.loads((TIMES / "student_search/frontier.json").read_text())
    proxies = {r["name"]: r["auc"] for r in map(json.loads, (TIMES / "student_search/proxy.jsonl").open())}
    fulls = {r["name"]: r for r in map(json.loads, (TIMES / "student_search/full.jsonl").open())}
    correlation = record["proxy_rank_correlation"]
    lines = [
        f"{record['searched']} candidates ({record['architectures']} architectures × patch plans × clusters); "
        f"proxy ({record['space']['proxy']['epochs']} fine-tune epochs) against the full recipe over the "
        f"{correlation['architectures']} architectures trained in full: Spearman ρ = {correlation['spearman']:.2f} "
        f"(p = {correlation['p_value']:.3g}).",
        "",
        "| architecture | proxy AUC | full int8 validation AUC | clustered to 8 | train s (full) |",
        "|---|---|---|---|---|",
    ]
    for name, row in sorted(fulls.items(), key=lambda item: -item[1]["auc"]["None"]):
        lines.append(
            f"| `{name}` | {proxies[name]:.4f} | {row['auc']['None']:.4f} | {row['auc']['8']:.4f} "
            f"| {row['train_seconds']:.0f} |"
        )
    lines += [
        "",
        "| board | fit / searched | best (full AUC) | pick: RAM, flash, AUC | candidates tied with the best |",
        "|---|---|---|---|---|",
    ]
    for board, entry in record["boards"].items():
        rows = {row["name"]: row for row in entry["candidates"]}
        fitting = sum(row["fits"] for row in entry["candidates"])
        if entry["pick"] is None:
            lines.append(f"| {board} | {fitting} / {len(rows)} | – | nothing trained fits | – |")
            continue
        best, pick = rows[entry["best"]], rows[entry["pick"]]
        tied = f"{len(entry['tied'])} candidates, of {len(entry['tied_architectures'])} architectures: " + ", ".join(
            f"`{arch}`" for arch in entry["tied_architectures"]
        )
        lines.append(
            f"| {board} | {fitting} / {len(rows)} | `{best['name']}` ({best['full_auc']:.4f}) | `{pick['name']}`: "
            f"{pick['ram_bytes']:,} B, {pick['flash_bytes']:,} B, {pick['full_auc']:.4f} | {tied} |"
        )
    return "\n".join(lines)


def prune_cache() -> str:
    """docs/decisions.md: what caching the frozen blocks would cost and save in the `prune` stage, one row per
    measurement (`benchmarks/prune_cache.py`); the sweep runs in one stage, so the cache is paid once."""
    lines = [
        "| cache computed by | depthwise trained | step, whole model | step, upper part on cache "
        "| cache per image and view | sweep: saved | cache | net |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for line in (TIMES / "prune_cache.jsonl").read_text().splitlines():
        record = json.loads(line)
        saved, cache = sum(row["saved_seconds"] for row in record["per_sparsity"].values()), record["cache_seconds"]
        lines.append(
            f"| {record['runtime']} | {'yes' if record['train_depthwise'] else 'no'} "
            f"| {record['whole_model_step_seconds']:.3f} s | {record['upper_part_step_seconds']:.3f} s "
            f"| {record['cache_seconds_per_image_view'] * 1e3:.1f} ms | {saved:.0f} s | {cache:.0f} s "
            f"| {saved - cache:+.0f} s |"
        )
    machine = record["machine"]
    lines += ["", f"On a {machine['cores']}-core {machine['cpu']}; the box's speed drifted by up to 25 % between runs."]
    return "\n".join(lines)


AUC_HELD = 0.003  # a test ROC AUC change this small between two seeds' runs: the model held


def _model_held(row: dict) -> bool:
    """Where the model itself held between the seeds, what is left to move is the threshold."""
    return abs(row["test_roc_auc"][0] - row["test_roc_auc"][1]) <= AUC_HELD


def _moves(rows: list[dict], rule: str) -> str:
    """The mean and the largest move of the rows' test accuracy between the seeds under `rule`."""
    moved = [row[rule]["accuracy_move_pp"] for row in rows]
    return f"{sum(moved) / len(moved):.2f} pp (max {max(moved):.1f})"


def threshold_seeds() -> str:
    """docs/decisions.md: each row's test accuracy in two runs with different seeds, under both threshold rules."""
    found = json.loads((TIMES / "threshold_seeds.json").read_text())
    first, second = found["seeds"]
    lines = [
        f"| row | test ROC AUC, seed {first} / {second} | `accuracy` rule: test accuracy | moved "
        "| `logistic` rule: test accuracy | moved |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in found["rows"].items():
        columns = [f"`{name}`", " / ".join(f"{value:.3f}" for value in row["test_roc_auc"])]
        for rule in ("accuracy", "logistic"):
            columns += [
                " / ".join(f"{value:.1%}" for value in row[rule]["test_accuracies"]),
                f"{row[rule]['accuracy_move_pp']:.1f} pp",
            ]
        lines.append("| " + " | ".join(columns) + " |")
    every, held = list(found["rows"].values()), [row for row in found["rows"].values() if _model_held(row)]
    lines.append(f"| **mean (max)** | | | **{_moves(every, 'accuracy')}** | | **{_moves(every, 'logistic')}** |")
    lines += [
        "",
        f"The {len(held)} rows whose test ROC AUC moved by {AUC_HELD} or less between the seeds (the model held): "
        f"`accuracy` rule {_moves(held, 'accuracy')}, `logistic` rule {_moves(held, 'logistic')}.",
    ]
    return "\n".join(lines)


def pick_seeds() -> str:
    """docs/decisions.md: each board's pick in two runs that differ only in the seed, under the old and new rule."""
    found = json.loads((TIMES / "pick_seeds.json").read_text())
    first, second = found["seeds"]
    lines = [
        f"| board | bootstrap ties: pick, seed {first} / {second} | tied with it, seed {first} / {second} "
        f"| old rule (within {found['old_tolerance']:g}): pick, seed {first} / {second} |",
        "|---|---|---|---|",
    ]
    for name, board in found["boards"].items():
        bootstrap = board["bootstrap"]
        picks = " / ".join(f"`{_short(pick['variant'])}`" if pick["variant"] else "nothing" for pick in bootstrap)
        tied = " / ".join(
            ", ".join(_short(v) for v in pick["tied"] if v != pick["variant"]) or "none" for pick in bootstrap
        )
        old = " / ".join(f"`{_short(pick)}`" if pick else "nothing" for pick in board["tolerance"])
        same, was_same = board["bootstrap_same_pick"], board["tolerance_same_pick"]
        lines.append(
            f"| {name} | {picks}{'' if same else ' (**flips**)'} | {tied} | {old}{'' if was_same else ' (**flips**)'} |"
        )
    lines += ["", f"Validation ROC AUC (LiteRT int8), seed {first} / {second}:", ""]
    lines.append(
        "; ".join(f"`{_short(v)}` {a:.4f} / {b:.4f}" for v, (a, b) in found["scores"].items() if a and b) + "."
    )
    deploy = " and ".join(cells.score_difference(change) for change in found["deploy_minus_baseline_int8"])
    lines += ["", f"The deploy model minus the baseline int8, paired, seed {first} / {second}: {deploy}."]
    return "\n".join(lines)


def dashboard(command: str) -> str:
    """What `command` (`dvc metrics diff` or `dvc exp show`) printed for a real experiment (benchmarks/dashboard.sh),
    the experiment's commit hash blanked."""
    import re

    parts = (TIMES / "dashboard.txt").read_text().rstrip().split("\n\n")
    text = next(part for part in parts if part.startswith(f"$ {command}"))
    text = re.sub(r"\b[0-9a-f]{7} \[", " " * 8 + "[", text)
    return f"```text\n{text}\n```"


def task_record(name: str, level: str) -> str:
    """docs/decisions.md: a stored run of the default pipeline on another task (benchmarks/results/tasks/): its classes
    and counts, every variant's test scores and the pick per board."""
    record = json.loads((TIMES / f"tasks/{name}.json").read_text())
    classes, counts = record["classes"], record["counts"]
    minutes = f", {record['total_seconds'] / 60:.0f} min" if record["total_seconds"] else ""
    own = record.get("model")
    baseline = ""
    if own:
        trained = own.get("training")
        how = (
            f"trained {trained['epochs']} epochs in {trained['train_seconds'] / 60:.0f} min, epoch "
            f"{trained['kept_epoch']} kept at validation AUC {trained['validation_auc']:.3f}; "
            if trained
            else ""
        )
        baseline = (
            f"baseline `{own['file']}` ({how}SHA-256 `{own['sha256'][:12]}…`, {own['image_size']} px, input scaling "
            f"`{own['input_scaling']}`, {'fine-tuned' if own['fine_tune'] else 'kept as it is'} by `train`); "
        )
    lines = [
        f"{baseline}`data.task: {record['data']['task']}`, {len(classes)} classes: "
        + ", ".join(f"`{c}` ({sum(split[c] for split in counts.values()):,})" for c in classes)
        + f"; test split {sum(counts['test'].values()):,} cells; {record['machine']['cores']}-core "
        f"{record['machine']['cpu']}{minutes}.",
        "",
        f"| variant | test accuracy ({level} CI) | balanced accuracy | macro F1 | test AUC (macro) | validation AUC |",
        "|---|---|---|---|---|---|",
    ]
    for variant, row in record["variants"].items():
        accuracy = cells.accuracy(row["accuracy"], row["accuracy_ci_low"], row["accuracy_ci_high"])
        lines.append(
            f"| `{variant}` | {accuracy} | {row['balanced_accuracy']:.3f} | {row.get('macro_f1', row.get('f1')):.3f} "
            f"| {row['roc_auc']:.4f} | {row['validation_roc_auc']:.4f} |"
        )
    lines += ["", "| board | pick | test accuracy (TFLM where run) | why |", "|---|---|---|---|"]
    for board, pick in record["boards"].items():
        if pick["variant"] is None:
            lines.append(f"| {board} | nothing | – | {pick['reason']} |")
            continue
        accuracy = f"{pick['test_accuracy']:.1%}"
        lines.append(f"| {board} | `{_short(pick['variant'])}` | {accuracy} | {pick['reason']} |")
    return "\n".join(lines)


def render(text: str, blocks: dict[str, str]) -> str:
    for name, content in blocks.items():
        start, end = markers(name)
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = f"{before}{start}\n{content}\n{end}{after}"
    return text


def documents() -> dict[Path, str]:
    """Each document as the files say it should be."""
    summary = json.loads((ROOT / "metrics/summary.json").read_text())
    params = params_lib.load(ROOT / "params.yaml")
    targets, level = params.report.targets, cells.level(params.statistics.confidence)
    times = json.loads((TIMES / "stage_times.json").read_text())
    readme, benchmarks, decisions = ROOT / "README.md", ROOT / "docs/benchmarks.md", ROOT / "docs/decisions.md"
    return {
        readme: render(
            readme.read_text(),
            {
                "boards": boards(summary, targets),
                "results": block(summary, level),
                "cost": cost(times),
                "dashboard": dashboard("dvc metrics diff"),
            },
        ),
        benchmarks: render(benchmarks.read_text(), {"runs": runs_table()}),
        decisions: render(
            decisions.read_text(),
            {
                "prune_recipes": prune_recipes(),
                "prune_cache": prune_cache(),
                "threshold_seeds": threshold_seeds(),
                "pick_seeds": pick_seeds(),
                "exp_show": dashboard("dvc exp show"),
                "student_clusters": student_clusters(),
                "student_lut_trade": student_lut_trade(targets),
                "student_search": student_search(),
                **{
                    f"task_{path.stem}": task_record(path.stem, level)
                    for path in sorted((TIMES / "tasks").glob("*.json"))
                },
            },
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated block differs from the files")
    args = parser.parse_args()
    for path, expected in documents().items():
        if path.read_text() == expected:
            continue
        if args.check:
            sys.exit(f"{path.relative_to(ROOT)}'s generated blocks differ from the files: run tools/readme_results.py")
        path.write_text(expected)


if __name__ == "__main__":
    main()
