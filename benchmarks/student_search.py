"""Search the student space (`benchmarks/student_search.yaml`) under each board's RAM and flash, on demand.

1. measure: every candidate (architecture x patches x clusters) converted to int8 and measured on the host TFLite
   Micro: RAM and flash exactly as `evaluate-student` measures a committed student (a TFLM arena depends on the graph,
   not on the weight values: ImageNet weights, an untrained head). MACs counted by LiteRT.
2. proxy: every architecture that fits at least one board, distilled with the student recipe cut to a few epochs;
   its whole-image int8 validation AUC (LiteRT reference kernels) ranks the architectures.
3. full: per board the best fitting architectures by proxy (and more, up to `full.at_least`), trained with the full
   recipe; their int8 validation AUC, as trained and clustered, and their validation probabilities.
4. frontier: per board, every candidate with its fit, RAM, flash, estimated latency, proxy and full AUC with its
   paired bootstrap interval against the best; the picks (`report.rank_by` rule: the smallest of the candidates
   tied with the best), and the proxy's Spearman rank correlation with the full recipe.

Usage, from the repository root after `dvc repro` (reads data/prepared, data/unlabeled.npz, data/teacher.npz):
    python benchmarks/student_search.py            # every phase; each resumes from its stored records
Writes benchmarks/results/student_search/{measured,proxy,full}.jsonl, full_probabilities.npz and frontier.json.
The test split is not read. Training runs in a scratch folder (${SCRATCH:-/tmp/student_search}).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from scipy import stats  # noqa: E402

from stages import student as student_stage  # noqa: E402
from stages.lib.compress import clustering, patch_models  # noqa: E402
from stages.lib.core import data, paths, scores  # noqa: E402
from stages.lib.core import params as params_lib  # noqa: E402
from stages.lib.core.settings import Board, Settings, Shape, Students  # noqa: E402
from stages.lib.keras import conversion  # noqa: E402
from stages.lib.keras import model as model_lib  # noqa: E402
from stages.lib.report import boards, recommendation, search  # noqa: E402
from stages.lib.runtime import litert, lut, patching, tflm  # noqa: E402

SPACE = ROOT / "benchmarks/student_search.yaml"
RESULTS = ROOT / paths.SEARCH_FRONTIER.parent


def arch_name(size: int, stop: int, keep: dict[str, float]) -> str:
    narrowed = "".join(f"_n{key.removeprefix('block')}x{value:g}" for key, value in sorted(keep.items()))
    return f"b{stop}_{size}{narrowed}"


def candidate_name(arch: str, patches: dict | None, clusters: int | None) -> str:
    return (
        arch
        + (f"_p{patches['grid']}t{patches['through_block']}" if patches else "")
        + (f"_c{clusters}" if clusters else "")
    )


def architectures(space: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        arch_name(size, stop, keep): {"image_size": size, "stop_after_block": stop, "expand_keep": keep}
        for size in space["image_sizes"]
        for stop in space["stop_after_blocks"]
        for keep in space["expand_keeps"]
    }


def read_records(name: str) -> dict[str, dict[str, Any]]:
    path = RESULTS / f"{name}.jsonl"
    if not path.exists():
        return {}
    return {record["name"]: record for record in map(json.loads, path.read_text().splitlines())}


def append_record(name: str, record: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / f"{name}.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def build(arch: dict[str, Any], config: Students) -> Any:
    return model_lib.build_classifier(
        arch["image_size"],
        "efficientnet_lite0",
        "bundled",
        config.dense_units,
        config.dropout,
        arch["stop_after_block"],
        params_lib.expand_keep_by_block(arch["expand_keep"]),
    )


def measure_one(model: Any, patches: dict | None, images: np.ndarray, lut_min_saving: int) -> dict[str, Any]:
    """RAM, flash and MACs of one deployment of `model`, as `evaluate-student` measures them."""
    whole = conversion.convert(model, "int8", images)
    if not patches:
        device, kernels, _ = lut.device_model(whole, lut_min_saving)
        return {
            # The arena and the 8-bit image the runner reads, as `evaluate` counts a whole-image model's RAM.
            "ram_bytes": tflm.minimum_arena(device) + int(np.prod(images.shape[1:])),
            "image_bytes": int(np.prod(images.shape[1:])),
            "flash_bytes": len(device),
            "macs": litert.multiply_accumulates(whole),
            "lut_kernels": len(kernels),
        }
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        plan = patch_models.convert_deployment(
            model, patches["through_block"], patches["grid"], images, folder, lut_min_saving
        )
        arenas = [tflm.minimum_arena(part) for _, part in patching.parts(folder, device=True)]
        return {
            "ram_bytes": patching.ram_bytes(plan, arenas),
            "flash_bytes": patching.flash_bytes(folder),
            "macs": sum(litert.multiply_accumulates(part) for _, part in patching.parts(folder)),
            "lut_kernels": plan["lut"]["kernels"] if plan["lut"] else 0,
        }


def measure(space: dict[str, Any], params: Settings, images: np.ndarray) -> dict[str, dict[str, Any]]:
    done, config = read_records("measured"), params.students
    for arch_key, arch in architectures(space).items():
        model = None
        for clusters in space["clusters"]:
            for patches in space["patches"]:
                name = candidate_name(arch_key, patches, clusters)
                if name in done or (patches and patches["through_block"] >= arch["stop_after_block"]):
                    continue
                if model is None:
                    model_lib.seed_everything(params.seed)
                    model = build(arch, config)
                    clustered = {}
                if clusters and clusters not in clustered:
                    clustered[clusters] = build(arch, config)
                    clustered[clusters].set_weights(model.get_weights())
                    clustering.cluster_channels(clustered[clusters], clusters, config.cluster_min_weights)
                subject = clustered[clusters] if clusters else model
                size = arch["image_size"]
                started = time.perf_counter()
                figures = measure_one(
                    subject, patches, data.resize_all(images, size), params.micro.lut_min_saving_bytes
                )
                record = {"name": name, "arch": arch_key, **arch, "patches": patches, "clusters": clusters, **figures}
                record["measure_seconds"] = round(time.perf_counter() - started, 1)
                append_record("measured", record)
                done[name] = record
                print(
                    f"measured {name}: RAM {figures['ram_bytes']:,} B, flash {figures['flash_bytes']:,} B", flush=True
                )
    return done


def fits(record: dict[str, Any], board: Board) -> bool:
    return boards.fit(record["flash_bytes"], record["ram_bytes"], board)["fits"]


def fitting_archs(measured: dict[str, dict[str, Any]], targets: dict[str, Any]) -> dict[str, set[str]]:
    return {
        board: {record["arch"] for record in measured.values() if fits(record, spec)} for board, spec in targets.items()
    }


class Scratch:
    """A scratch working folder with the data linked: training writes its logs there, not in the repository."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / "data").exists():
            (folder / "data").symlink_to(ROOT / "data")

    def __enter__(self) -> Path:
        self.previous = Path.cwd()
        os.chdir(self.folder)
        return self.folder

    def __exit__(self, *_: Any) -> None:
        os.chdir(self.previous)


def train_and_score(
    params: Settings, arch: dict[str, Any], recipe: dict[str, Any], clusters: list[int | None]
) -> dict[str, Any]:
    """Distil the architecture with `recipe`; its int8 whole-image validation AUC and probabilities, per clusters."""
    shape = Shape(**arch, distill=True, patches=None, clusters=None, **recipe)
    config = params.students
    model_lib.seed_everything(params.seed)
    train, validation = data.load_split(paths.PREPARED, "train"), data.load_split(paths.PREPARED, "validation")
    size = arch["image_size"]
    labeled = data.resize_all(train[0], size)
    images, wanted, _ = student_stage.targets(params.distill, shape, labeled, train[1])
    validation = (data.resize_all(validation[0], size), validation[1])
    started = time.perf_counter()
    model, _ = student_stage.train_student(params, shape, "search", (images, wanted), validation)
    seconds = time.perf_counter() - started
    representative = data.representative_images(labeled, params.convert.representative_samples, params.seed)
    weights, result = model.get_weights(), {"train_seconds": round(seconds, 1), "auc": {}, "probabilities": {}}
    for count in clusters:
        model.set_weights(weights)
        if count:
            clustering.cluster_channels(model, count, config.cluster_min_weights)
        flatbuffer = conversion.convert(model, "int8", representative)
        probabilities = litert.predict(litert.reference_interpreter(flatbuffer), validation[0])
        result["auc"][str(count)] = scores.roc_auc(validation[1], probabilities)
        result["probabilities"][str(count)] = probabilities
    return result


def proxy(space: dict[str, Any], params: Settings, archs: set[str]) -> dict[str, dict[str, Any]]:
    done, recipe = read_records("proxy"), space["proxy"]
    shapes = architectures(space)
    with Scratch(Path(os.environ.get("SCRATCH", "/tmp/student_search"))):
        for arch in sorted(
            archs - set(done), key=lambda key: (shapes[key]["image_size"], shapes[key]["stop_after_block"])
        ):
            students = dataclasses.replace(params.students, head_epochs=recipe["head_epochs"])
            scratch_params = dataclasses.replace(params, students=students)
            result = train_and_score(
                scratch_params,
                shapes[arch],
                {"epochs": recipe["epochs"], "fine_tune_from_block": space["full"]["fine_tune_from_block"]},
                [None],
            )
            record = {"name": arch, "auc": result["auc"]["None"], "train_seconds": result["train_seconds"]}
            append_record("proxy", record)
            done[arch] = record
            print(f"proxy {arch}: int8 validation AUC {record['auc']:.4f} in {record['train_seconds']} s", flush=True)
    return done


def full_choice(space: dict[str, Any], proxied: dict[str, dict[str, Any]], fitting: dict[str, set[str]]) -> list[str]:
    """Per board its best `per_board` fitting architectures by proxy; then the next by proxy up to `at_least`."""
    by_proxy = sorted(proxied, key=lambda arch: -proxied[arch]["auc"])
    chosen: list[str] = []
    for archs in fitting.values():
        for arch in [arch for arch in by_proxy if arch in archs][: space["full"]["per_board"]]:
            if arch not in chosen:
                chosen.append(arch)
    for arch in by_proxy:
        if len(chosen) >= space["full"]["at_least"]:
            break
        if arch not in chosen:
            chosen.append(arch)
    return chosen


def full(space: dict[str, Any], params: Settings, chosen: list[str]) -> dict[str, dict[str, Any]]:
    done, shapes = read_records("full"), architectures(space)
    store = RESULTS / "full_probabilities.npz"
    probabilities = dict(np.load(store)) if store.exists() else {}
    recipe = {key: space["full"][key] for key in ("epochs", "fine_tune_from_block")}
    with Scratch(Path(os.environ.get("SCRATCH", "/tmp/student_search"))):
        for arch in [arch for arch in chosen if arch not in done]:
            result = train_and_score(params, shapes[arch], recipe, space["clusters"])
            record = {"name": arch, "auc": result["auc"], "train_seconds": result["train_seconds"]}
            for count, values in result["probabilities"].items():
                probabilities[candidate_name(arch, None, None if count == "None" else int(count))] = values
            np.savez(store, **probabilities)
            append_record("full", record)
            done[arch] = record
            print(f"full {arch}: int8 validation AUC {record['auc']} in {record['train_seconds']} s", flush=True)
    return done


def frontier(space: dict[str, Any], params: Settings, measured: dict, proxied: dict, trained: dict) -> dict[str, Any]:
    """Per board: every candidate, the ties with the best fully trained one and the pick; the proxy's rank
    correlation with the full recipe."""
    labels = data.load_split(paths.PREPARED, "validation")[1]
    probabilities = dict(np.load(RESULTS / "full_probabilities.npz"))
    table = scores.bootstrap_auc_table(labels, probabilities, params.report.bootstrap_resamples, params.seed)
    archs = sorted(trained)
    rho, p_value = stats.spearmanr([proxied[a]["auc"] for a in archs], [trained[a]["auc"]["None"] for a in archs])
    result: dict[str, Any] = {
        # The report shows this search only for a run on the same teacher (stages/lib/report/search.py).
        "teacher_md5": search.file_md5(ROOT / paths.TEACHER),
        "space": space,
        "searched": len(measured),
        "architectures": len({record["arch"] for record in measured.values()}),
        "proxy_rank_correlation": {
            "spearman": round(float(rho), 3),
            "p_value": round(float(p_value), 4),
            "architectures": len(archs),
        },
        "boards": {},
    }
    for board, spec in params.report.targets.items():
        rows = []
        for record in sorted(measured.values(), key=lambda r: (r["flash_bytes"], r["ram_bytes"])):
            fit = boards.fit(record["flash_bytes"], record["ram_bytes"], spec)
            key = candidate_name(record["arch"], None, record["clusters"])
            rate = spec.reference_ns_per_mac if record["lut_kernels"] else spec.ns_per_mac
            rows.append(
                {
                    "name": record["name"],
                    "arch": record["arch"],
                    "ram_bytes": record["ram_bytes"],
                    "flash_bytes": record["flash_bytes"],
                    "fits": fit["fits"],
                    "ram_use": round(fit["ram_use"], 4),
                    "flash_use": round(fit["flash_use"], 4),
                    "macs": record["macs"],
                    "estimated_ms": round(record["macs"] * rate / 1e6, 1),
                    "proxy_auc": proxied.get(record["arch"], {}).get("auc"),
                    "full_auc": table[key][0] if key in table else None,
                    "full_key": key if key in table else None,
                }
            )
        scored = [row for row in rows if row["fits"] and row["full_key"]]
        entry: dict[str, Any] = {"candidates": rows, "pick": None, "tied": []}
        if scored:
            best = max(scored, key=lambda row: row["full_auc"])
            differences = scores.auc_differences(
                table, best["full_key"], sorted({row["full_key"] for row in scored}), params.statistics.confidence
            )
            for row in scored:
                row["difference_from_best"] = {k: round(v, 4) for k, v in differences[row["full_key"]].items()}
            tied = [row for row in scored if differences[row["full_key"]]["high"] >= 0]
            # The report's rule (`recommendation.smallest`): flash, then RAM, sizes within `report.size_tolerance`
            # equal; then the fewest MACs.
            candidates = [{**row, "variant": row["name"], "multiply_accumulates": row["macs"]} for row in tied]
            pick = recommendation.smallest(candidates, params.report.size_tolerance)
            entry |= {"best": best["name"], "pick": pick["name"], "tied": [row["name"] for row in tied]}
            entry["tied_architectures"] = sorted({row["arch"] for row in tied})
        result["boards"][board] = entry
    return result


def main() -> None:
    space = yaml.safe_load(SPACE.read_text())
    params = params_lib.load(ROOT / "params.yaml")
    images = data.load_split(ROOT / paths.PREPARED, "train")[0][:32]
    measured = measure(space, params, images)
    fitting = fitting_archs(measured, params.report.targets)
    proxied = proxy(space, params, set().union(*fitting.values()))
    chosen = full_choice(space, proxied, fitting)
    trained = full(space, params, chosen)
    result = frontier(space, params, measured, proxied, {arch: trained[arch] for arch in chosen if arch in trained})
    (ROOT / paths.SEARCH_FRONTIER).write_text(json.dumps(result, indent=1) + "\n")
    print(
        json.dumps(
            {board: {k: v for k, v in entry.items() if k != "candidates"} for board, entry in result["boards"].items()},
            indent=1,
        )
    )
    print("proxy rank correlation:", result["proxy_rank_correlation"])


if __name__ == "__main__":
    main()
