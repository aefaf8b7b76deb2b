"""End to end: the real `dvc repro` on a tiny params override in a temporary copy of the repository, then the
rerun scopes DVC promises (a second repro runs nothing; each params change reruns exactly its dependants)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

TINY = {
    "data": {"image_size": 32, "max_images_per_class": 16},
    "train": {"head_epochs": 1, "epochs": 1, "batch_size": 8, "fine_tune_from_block": 12},
    "prune": {"sweep": [0.5], "epochs": 1},
    "deploy": {"qat_epochs": 1, "clusters": 4},
    "convert": {"representative_samples": 4},
    "evaluate": {"latency_runs": 3},
}


def _merge(base: dict, override: dict) -> dict:
    for key, value in override.items():
        base[key] = _merge(base[key], value) if isinstance(value, dict) else value
    return base


def _run(command: list[str], cwd: Path, timeout: int = 1200) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", DVC_NO_ANALYTICS="1")
    env.pop("PYTHONPATH", None)  # the stages must run from the copy, as `dvc repro` runs them for a user
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A fresh git + DVC copy of the project's tracked files, with the tiny params, after one full `dvc repro`."""
    copy = tmp_path_factory.mktemp("edge-opt")
    for name in ("stages", "dvc.yaml", ".dvcignore", ".gitignore", ".dvc/config"):
        source = ROOT / name
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__")) if source.is_dir() else shutil.copy(source, target)
    params = _merge(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY)
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["git", "init", "-q"], copy)
    _run(["git", "-c", "user.name=test", "-c", "user.email=test@localhost", "add", "-A"], copy)
    _run(["git", "-c", "user.name=test", "-c", "user.email=test@localhost", "commit", "-qm", "tiny"], copy)
    result = _run(["dvc", "repro"], copy)
    (copy / "first_repro.log").write_text(result.stdout)
    return copy


def test_repro_runs_every_stage(repo: Path):
    ran = _stages_run((repo / "first_repro.log").read_text())
    expected = {"prepare", "train", "prune@0.5", "deploy", "evaluate-deploy", "micro", "report", "convert-sparse@0.5-int8"}
    expected |= {f"{kind}@{fmt}" for kind in ("convert-baseline", "evaluate-baseline") for fmt in ("float32", "float16", "dynamic", "int8")}
    expected |= {f"{kind}@0.5-{fmt}" for kind in ("convert-pruned", "evaluate-pruned") for fmt in ("float32", "float16", "dynamic", "int8")}
    assert expected <= ran


def test_outputs_are_measured_from_their_artifacts(repo: Path):
    from stages.lib import tflite

    for metrics in (repo / "metrics/evaluate").rglob("*.json"):
        values = json.loads(metrics.read_text())
        assert 0 <= values["accuracy"] <= 1 and values["latency_ms"]["median"] > 0 and values["test_images"] > 0
    assert tflite.io_types(repo / "models/tflite/deploy/int8.tflite") == ("int8", "int8")
    deploy = json.loads((repo / "metrics/deploy.json").read_text())
    assert deploy["sparsity_in_tflite"] > 0.4  # the deploy model kept its zeros through QAT and conversion
    assert deploy["size_bytes"] == (repo / "models/tflite/deploy/int8.tflite").stat().st_size
    report = (repo / "metrics/report.md").read_text()
    assert "baseline float32" in report and "pruned 50% + int8" in report and "Recommendation" in report
    assert sorted(p.name for p in (repo / "plots/report").iterdir()) == ["accuracy_vs_size.png", "accuracy_vs_sparsity.png", "latency.png", "training_curves.png"]


def test_c_array_equals_the_deployed_model(repo: Path):
    source = (repo / "models/micro/edge_model.cc").read_text()
    body = source[source.index("{") + 1:source.index("}")]
    assert bytes(int(v, 16) for v in re.findall(r"0x([0-9a-f]{2})", body)) == (repo / "models/tflite/deploy/int8.tflite").read_bytes()
    micro = json.loads((repo / "metrics/micro.json").read_text())
    assert f"edge_model_arena_bytes = {micro['tflm_arena_bytes']};" in (repo / "models/micro/edge_model.h").read_text()


def test_second_repro_runs_nothing(repo: Path):
    assert _stages_run(_run(["dvc", "repro"], repo).stdout) == set()


def _dry_run_after(repo: Path, change: dict) -> set[str]:
    original = (repo / "params.yaml").read_text()
    try:
        (repo / "params.yaml").write_text(yaml.safe_dump(_merge(yaml.safe_load(original), change), sort_keys=False))
        return _stages_run(_run(["dvc", "repro", "--dry"], repo).stdout)
    finally:
        (repo / "params.yaml").write_text(original)


def test_deploy_sparsity_reruns_only_the_deploy_branch(repo: Path):
    assert _dry_run_after(repo, {"prune": {"sparsity": 0.7}}) == {"deploy", "evaluate-deploy", "micro", "report"}


def test_training_epochs_rerun_everything_after_prepare(repo: Path):
    ran = _dry_run_after(repo, {"train": {"epochs": 3}})
    assert "prepare" not in ran and {"train", "prune@0.5", "deploy", "evaluate-baseline@int8", "report"} <= ran


def test_sweep_change_adds_only_the_new_stages(repo: Path):
    ran = _dry_run_after(repo, {"prune": {"sweep": [0.5, 0.9]}})
    assert "prune@0.9" in ran and "convert-pruned@0.9-int8" in ran and "evaluate-sparse@0.9-int8" in ran
    assert not any("@0.5" in stage for stage in ran) and "train" not in ran and "deploy" not in ran


def test_dvc_metrics_and_plots_see_every_variant(repo: Path):
    shown = json.loads(_run(["dvc", "metrics", "show", "--json"], repo).stdout)
    files = next(iter(shown.values()))["data"]
    assert "metrics/evaluate/pruned/0.5/int8.json" in files and "metrics/summary.json" in files
    plots = _run(["dvc", "plots", "show", "--json", "--split"], repo).stdout
    assert "plots/confusion/deploy/int8.json" in plots and "plots/train/plots/metrics" in plots
