"""End to end: the real `dvc repro` on a tiny params override in a temporary copy of the repository, then the
rerun scopes DVC promises (a second repro runs nothing; each params change reruns exactly its dependants)."""
from __future__ import annotations

import json
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import yaml

from conftest import merge, run_tool, stages_run


def test_repro_runs_every_stage(repo: Path):
    ran = stages_run((repo / "first_repro.log").read_text())
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
    assert stages_run(run_tool(["dvc", "repro"], repo).stdout) == set()


@contextmanager
def _params_changed(repo: Path, change: dict) -> Iterator[None]:
    """params.yaml with `change` merged in for the block, restored after."""
    original = (repo / "params.yaml").read_text()
    try:
        (repo / "params.yaml").write_text(yaml.safe_dump(merge(yaml.safe_load(original), change), sort_keys=False))
        yield
    finally:
        (repo / "params.yaml").write_text(original)


def _repro_after(repo: Path, change: dict, dry: bool) -> set[str]:
    """The stages `dvc repro` runs (or, dry, would start with) after a params change; params restored after."""
    with _params_changed(repo, change):
        return stages_run(run_tool(["dvc", "repro", *(["--dry"] if dry else [])], repo).stdout)


def test_deploy_sparsity_reruns_only_the_deploy_branch(repo: Path):
    assert _repro_after(repo, {"prune": {"sparsity": 0.7}}, dry=False) == {"deploy", "evaluate-deploy", "micro", "report"}
    # Back to the original params: the deploy branch runs again (metrics are uncached, so DVC's run cache
    # cannot serve it), and nothing upstream does.
    assert stages_run(run_tool(["dvc", "repro"], repo).stdout) <= {"deploy", "evaluate-deploy", "micro", "report"}


# A dry run lists the stages whose own inputs changed; their dependants follow once those have run.
def test_training_epochs_rerun_train_not_prepare(repo: Path):
    assert _repro_after(repo, {"train": {"epochs": 3}}, dry=True) == {"train"}


def test_sweep_change_adds_and_removes_matching_stages(repo: Path):
    with _params_changed(repo, {"prune": {"sweep": [0.9]}}):
        stages = set(run_tool(["dvc", "stage", "list", "--name-only"], repo).stdout.split())
        assert {"prune@0.9", "convert-pruned@0.9-int8", "convert-sparse@0.9-int8", "evaluate-pruned@0.9-float32"} <= stages
        assert not any("@0.5" in stage for stage in stages)
        # The new sparsity is the only pruning that would run; the baseline it reads is up to date.
        assert stages_run(run_tool(["dvc", "repro", "--dry", "prune@0.9"], repo).stdout) == {"prune@0.9"}


def test_dvc_metrics_and_plots_see_every_variant(repo: Path):
    shown = json.loads(run_tool(["dvc", "metrics", "show", "--json"], repo).stdout)
    files = next(iter(shown.values()))["data"]
    assert "metrics/evaluate/pruned/0.5/int8.json" in files and "metrics/summary.json" in files
    plots = run_tool(["dvc", "plots", "show", "--json", "--split"], repo).stdout
    assert "plots/confusion/deploy/int8.json" in plots and "plots/train/plots/metrics" in plots
