"""End to end: the real `dvc repro` on a tiny params override in a temporary copy of the repository, then what
DVC promises on it: a second repro runs nothing; every stage declares exactly the code, params and files it reads;
`dvc exp run -S` reaches any value; a sweep change leaves no stale rows; metrics diff between two commits."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import ROOT, TINY, run_tool, stages_run
from stages.lib.core import scores
from stages.lib.core.params import read_yaml


def test_repro_runs_every_stage(repo: Path):
    ran = stages_run((repo / "first_repro.log").read_text())
    expected = {"prepare", "train", "prune", "deploy", "evaluate-deploy", "micro", "report"}
    expected |= {"convert-baseline", "convert-pruned@0.5", "evaluate-pruned-sparse@0.5-int8", "teacher", "firmware"}
    expected |= {f"{kind}@{name}" for kind in ("student", "evaluate-student") for name in TINY["students"]["run"]}
    formats = TINY["convert"]["formats"]
    expected |= {f"evaluate-baseline@{fmt}" for fmt in formats} | {f"evaluate-pruned@0.5-{fmt}" for fmt in formats}
    assert ran == expected


def test_outputs_are_measured_from_their_artifacts(repo: Path):
    from stages.lib.runtime import litert, patching

    for metrics in (repo / "metrics/evaluate").rglob("*.json"):
        values = json.loads(metrics.read_text())
        assert 0 <= values["accuracy"] <= 1 and values["latency_ms"]["median"] > 0 and values["test_images"] > 0
        tflite = (repo / "models/tflite" / metrics.relative_to(repo / "metrics/evaluate")).with_suffix(".tflite")
        if "deployment" in values:  # a patch-based deployment: what a board stores is the blob of its parts
            deployment = tflite.parent / "patches"
            # What the board stores: the parts' blob stripped of what TFLM never reads, under the converter's blob.
            assert values["size_bytes"] == (deployment / "device.bin").stat().st_size
            assert values["size_bytes"] < values["deployment"]["unstripped_size_bytes"]
            assert values["deployment"]["unstripped_size_bytes"] == (deployment / "parts.bin").stat().st_size
            assert values["deployment"]["unstripped_size_bytes"] < values["deployment"]["separate_parts_size_bytes"]
            assert values["deployment"]["whole_image_size_bytes"] == tflite.stat().st_size
            parts = [model for _, model in patching.parts(deployment)]
            assert values["multiply_accumulates"] == sum(litert.multiply_accumulates(part) for part in parts)
            assert values["multiply_accumulates"] > litert.multiply_accumulates(tflite)  # the patches' halos
        else:
            assert values["size_bytes"] == tflite.stat().st_size
        reference = metrics.relative_to(repo / "metrics/evaluate").as_posix() == "baseline/float32.json"
        # Every other variant is timed alternately with the float32 baseline in its own process.
        assert reference == ("speedup_vs_float32" not in values)
        if not reference:
            speedup = values["speedup_vs_float32"]
            assert speedup["runs"] == values["latency_ms"]["runs"] and 0 < speedup["p25"] <= speedup["median"]
        # Every file carries its validation scores, and its validation predictions: what the board pick pairs on.
        predictions = repo / "predictions/validation" / metrics.relative_to(repo / "metrics/evaluate")
        predictions = json.loads(predictions.read_text())
        assert values["validation_roc_auc"] == pytest.approx(
            scores.roc_auc(np.array(predictions["labels"]), np.array(predictions["probabilities"]))
        )
    summary = json.loads((repo / "metrics/summary.json").read_text())
    for choice in summary["recommendation"].values():
        if choice["variant"]:
            assert choice["validation_accuracy"] == summary["variants"][choice["variant"]]["validation_accuracy"]
    deploy_file = repo / "models/tflite/deploy/int8.tflite"
    assert litert.io_types(deploy_file) == ("int8", "int8")
    deploy = json.loads((repo / "metrics/evaluate/deploy/int8.json").read_text())
    assert deploy["kernel_zeros_in_file"] == litert.tflite_weight_sparsity(deploy_file)
    # The pruned model's zeros survive QAT (the short tiny backbone keeps ~1/4 of its kernel weights dense).
    pruned_int8 = json.loads((repo / "metrics/evaluate/pruned/0.5/int8.json").read_text())
    assert deploy["kernel_zeros_in_file"] >= pruned_int8["kernel_zeros_in_file"] - 0.01 > 0.3
    # int8 rounding zeroes a few small weights of the unpruned baseline; pruning leaves ~47 % zeros.
    assert json.loads((repo / "metrics/evaluate/baseline/int8.json").read_text())["kernel_zeros_in_file"] < 0.05
    report = (repo / "metrics/report.md").read_text()
    assert "baseline float32" in report and "pruned 50% + int8" in report and "## Boards" in report
    figures = sorted(p.name for p in (repo / "plots/report").iterdir())
    expected = ["accuracy_vs_memory.png", "accuracy_vs_size.png", "accuracy_vs_sparsity.png", "latency.png"]
    boards = yaml.safe_load((repo / "params.yaml").read_text())["report"]["targets"]
    picks = [f"pick_{name}.png" for name in boards]  # one per board: its pick, ties and limits
    assert figures == sorted([*expected, *picks, "training_curves.png"])


def _array_bytes(source_file: Path) -> bytes:
    """The bytes of the C array in a generated `.cc` file."""
    source = source_file.read_text()
    body = source[source.index("{") + 1 : source.index("}")]
    return bytes(int(v, 16) for v in re.findall(r"0x([0-9a-f]{2})", body))


def test_c_array_equals_the_deployed_model(repo: Path):
    assert _array_bytes(repo / "models/micro/edge_model.cc") == (repo / "models/tflite/deploy/int8.tflite").read_bytes()
    micro = json.loads((repo / "metrics/micro.json").read_text())
    assert f"edge_model_arena_bytes = {micro['tflm_arena_bytes']};" in (repo / "models/micro/edge_model.h").read_text()
    # TFLM follows LiteRT's reference kernels: equal on the committed default run (333 images); on this tiny model
    # one image in four was seen two output steps (2/256) apart, a rounding difference not yet traced to its op.
    assert micro["tflm_litert_reference_max_probability_difference"] <= 2 / 256


def test_students_are_measured_on_tflite_micro_and_each_board_gets_its_c_array(repo: Path):
    import numpy as np

    from stages.lib.runtime import litert

    for name in TINY["students"]["run"]:
        path = repo / f"models/tflite/students/{name}/int8.tflite"
        values = json.loads((repo / f"metrics/evaluate/students/{name}/int8.json").read_text())
        assert 0 <= values["tflm"]["accuracy"] <= 1 and values["tflm_arena_bytes"] > 0
        patched = TINY["students"]["shapes"][name].get("patches")
        assert ("deployment" in values) == bool(patched)
        if patched:  # RAM: the largest part's arena, the assembled block 0 output (16x16x16) and the 32 px image
            deployment = values["deployment"]
            assert values["tflm_arena_bytes"] == max(deployment["part_arena_bytes"])
            assert values["ram_bytes"] == values["tflm_arena_bytes"] + 16 * 16 * 16 + 32 * 32 * 3
            assert len(deployment["part_arena_bytes"]) == 2 * 2 + 1
        else:  # RAM: the arena and the 32 px image
            assert values["multiply_accumulates"] == litert.multiply_accumulates(path) > 0
            assert values["ram_bytes"] == values["tflm_arena_bytes"] + 32 * 32 * 3
        assert litert.io_types(path) == ("int8", "int8")
        assert litert.input_size(litert.open_interpreter(path, 1)[0]) == 32
        # Clustered where asked, and stored by the board stripped (and compressed where that shrinks it): fewer bytes.
        converted = json.loads((repo / f"metrics/convert/students/{name}.json").read_text())["int8"]
        clusters = TINY["students"]["shapes"][name].get("clusters")
        assert (converted["clustering"] or {}).get("clusters") == clusters
        assert converted["device_bytes"] < converted["size_bytes"]
        student = json.loads((repo / f"metrics/students/{name}.json").read_text())
        assert student["unlabeled_images"] == (16 if not name.endswith("_labels") else 0)
    # The teacher labels every training image; the unlabeled cells share no content with any labeled image.
    with np.load(repo / "data/prepared/train.npz") as train:
        assert len(np.load(repo / "data/teacher.npz")["train"]) == len(train["labels"])
    labeled = set()
    for split in ("train", "validation", "test"):
        with np.load(repo / f"data/prepared/{split}.npz") as part:
            labeled |= set(part["hashes"].tolist())
    with np.load(repo / "data/unlabeled.npz") as unlabeled:
        assert len(unlabeled["hashes"]) == 16 and not set(unlabeled["hashes"].tolist()) & labeled
    summary = json.loads((repo / "metrics/summary.json").read_text())
    assert [gain["student"] for gain in summary["distillation"]] == ["b7_96"]
    report = (repo / "metrics/report.md").read_text()
    assert "## Students" in report and "Distillation: `b7_96` minus" in report
    boards = json.loads((repo / "models/firmware/boards.json").read_text())
    assert boards.keys() == summary["recommendation"].keys() and any(boards.values())

    for board, variant in boards.items():
        if variant:
            row = summary["variants"][variant]
            folder = repo / "models/firmware" / board
            stored = repo / "models/tflite" / row["model"] / f"{row['format']}.tflite"
            if row["deployment"]:
                stored = repo / "models/tflite" / row["model"] / "patches/device.bin"
            elif row["model"].startswith("students/"):
                stored = repo / "models/tflite" / row["model"] / "int8_device.tflite"
            assert _array_bytes(folder / "edge_model_data.cc") == stored.read_bytes()
            header = (folder / "edge_model.h").read_text()
            assert f"edge_model_threshold = {row['threshold']!r};" in header
            assert f"edge_model_flash_bytes = {row['flash_bytes']};" in header


def test_every_boards_firmware_compiles_and_reproduces_the_report_on_tflite_micro(repo: Path, tmp_path: Path):
    """Each board's folder builds with -Wall -Werror, and its runner on TFLM gives `evaluate --tflm`'s answers on
    the test split (the tiny run's test split; tests/test_firmware.py runs 100 images)."""
    assert firmware_reproduces_the_report(repo, tmp_path) > 0


def firmware_reproduces_the_report(repo: Path, tmp_path: Path) -> int:
    """Check every board's firmware against the pipeline's TFLM answers and the report's decisions; the boards."""
    from test_firmware import CXX, compile_board, run_on_tflm

    from stages.lib.core import data
    from stages.lib.runtime import patching, tflm

    if CXX is None:
        pytest.skip("no C++ compiler")
    summary = json.loads((repo / "metrics/summary.json").read_text())
    images, _ = data.load_split(repo / "data/prepared", "test")
    checked = 0
    for board, variant in json.loads((repo / "models/firmware/boards.json").read_text()).items():
        if not variant:
            continue
        row = summary["variants"][variant]
        folder = tmp_path / board
        shutil.copytree(repo / "models/firmware" / board, folder)
        library = compile_board(folder, tmp_path)
        arena = 4 * row["tflm_arena_bytes"]
        answers, classes = run_on_tflm(library, images, arena)
        if row["deployment"]:
            deployment = repo / "models/tflite" / row["model"] / "patches"
            runner = lambda _, model, arena=arena: tflm._micro_runner(model, arena)  # noqa: E731
            np.testing.assert_array_equal(answers, patching.predict(deployment, images, runner, "", device=True))
        else:
            stored = _array_bytes(folder / "edge_model_data.cc")
            np.testing.assert_array_equal(answers, tflm.micro_predict(stored, images, arena, workers=1))
        if row["model"].startswith("students/"):  # the decisions the report counted
            expected = json.loads((repo / f"plots/confusion/{row['model']}/int8_tflm.json").read_text())
            assert classes.tolist() == [entry["predicted"] for entry in expected]
        checked += 1
    return checked


def test_second_repro_runs_nothing(repo: Path):
    assert stages_run(run_tool(["dvc", "repro"], repo).stdout) == set()


def _file_covered(path: str, declared: set[str]) -> bool:
    return any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in declared)


def _key_covered(key: str, declared: set[str]) -> bool:
    """`train.batch_size` is covered by `train`; reading all of `report.targets` is covered by `report.targets`."""
    return any(key == d or key.startswith(d + ".") or d.startswith(key + ".") for d in declared)


def test_every_stage_declares_exactly_the_params_and_files_it_reads(repo: Path):
    """Each stage process recorded the params keys it read and the files it opened (stages/lib/core/trace.py)."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    traces = [json.loads(p.read_text()) for p in Path((repo / "trace_dir.txt").read_text()).glob("*.json")]
    by_cmd = {" ".join(["python -m", record["module"], *record["args"]]): record for record in traces}
    assert len(by_cmd) == len(traces), "a stage wrote more than one record (trace.py merges its workers' reads)"
    families: dict[str, dict[str, set]] = {}
    for name, stage in lock.items():
        trace = by_cmd[stage["cmd"]]
        declared_params = set(stage.get("params", {}).get("params.yaml", {}))
        outs = {out["path"] for out in stage.get("outs", [])}
        deps = {dep["path"] for dep in stage["deps"]}
        unread = [key for key in trace["params"] if not _key_covered(key, declared_params)]
        assert not unread, f"{name} reads params it does not declare: {unread}"
        # DVCLive reads the repository's ignore files to check its own folder: configuration, not a stage input.
        undeclared = [f for f in trace["files"] if not _file_covered(f, deps | outs | {".gitignore", ".dvcignore"})]
        assert not undeclared, f"{name} reads files it does not declare: {undeclared}"
        family = families.setdefault(name.split("@")[0], {"declared": declared_params, "read": set()})
        family["read"] |= set(trace["params"])
    for family, seen in families.items():  # a foreach family shares one declaration; together they read all of it
        unused = [key for key in seen["declared"] if not _key_covered(key, seen["read"])]
        assert not unused, f"{family} declares params none of its stages reads: {unused}"


def test_editing_a_module_marks_exactly_the_stages_that_run_it(repo: Path):
    """After each edit, DVC's own check of every stage's code dependencies (`Dependency.changed`, what `dvc status`
    asks of each; ~0.1 s here against ~1 s for a whole status, which also hashes every data dependency and output).
    Modules that the very same dependency entries cover (only a folder entry can cover several) are edited together:
    one check per distinct set of entries."""
    from dvc.repo import Repo

    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    groups: dict[tuple, list[Path]] = {}
    for module in sorted((repo / "stages").rglob("*.py")):
        if module.read_text().strip():
            relative = module.relative_to(repo).as_posix()
            entries = tuple(
                (name, dep)
                for name, stage in stages.items()
                for dep in stage.get("do", stage)["deps"]
                if _file_covered(relative, {dep})
            )
            groups.setdefault(entries, []).append(module)
    with Repo(str(repo)) as dvc_repo, dvc_repo.lock:
        code = [
            (stage, [dep for dep in stage.deps if dep.def_path.startswith("stages")]) for stage in dvc_repo.index.stages
        ]
        assert all(deps for _, deps in code), "every stage depends on its code"
        for entries, modules in groups.items():
            users = {name for name, _ in entries}
            originals = {module: module.read_text() for module in modules}
            try:
                for module, original in originals.items():
                    module.write_text(original + "\n# edited\n")
                changed = {stage.name.split("@")[0] for stage, deps in code if any(dep.changed() for dep in deps)}
            finally:
                for module, original in originals.items():
                    module.write_text(original)
            edited = [module.relative_to(repo).as_posix() for module in modules]
            assert changed == users, f"editing {edited} changes {sorted(changed)}, expected {sorted(users)}"
    assert "up to date" in run_tool(["dvc", "status"], repo).stdout


def test_changing_one_student_marks_only_that_student_and_the_report(repo: Path):
    original = (repo / "params.yaml").read_text()
    params = yaml.safe_load(original)
    params["students"]["shapes"]["b7_96"]["image_size"] = 40
    try:
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        status = json.loads(run_tool(["dvc", "status", "--json"], repo).stdout)
    finally:
        (repo / "params.yaml").write_text(original)
    assert set(status) == {"student@b7_96", "report"}  # the rest follows from their outputs: evaluation, firmware


def _experiment_file(repo: Path, name: str, path: str) -> str:
    return run_tool(["git", "show", f"refs/exps/{_exp_ref(repo, name)}:{path}"], repo).stdout


def _exp_ref(repo: Path, name: str) -> str:
    refs = run_tool(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], repo).stdout.split()
    return next(ref.removeprefix("refs/exps/") for ref in refs if ref.endswith("/" + name))


def test_exp_run_small_float_and_sweep_change_leave_no_stale_rows(sweep_clone: Path):
    """`-S deploy.learning_rate=0.00003` (DVC writes 3e-05) and a new sweep, as one real experiment (`SWEEP`, run on
    a clone of the tiny run's commit beside the other tests)."""
    repo = sweep_clone
    ran = stages_run((repo / "sweep09.log").read_text())
    assert {"prune", "convert-pruned@0.9", "deploy", "report"} <= ran and not ran & {"prepare", "train", "teacher"}
    params = _experiment_file(repo, "sweep09", "params.yaml")
    assert "learning_rate: 3e-05" in params  # what DVC wrote, and what PyYAML would read as a string
    lock = read_yaml(_experiment_file(repo, "sweep09", "dvc.lock"))  # YAML 1.2, as DVC wrote it
    assert lock["stages"]["deploy"]["params"]["params.yaml"]["deploy"]["learning_rate"] == pytest.approx(3e-05)
    summary = json.loads(_experiment_file(repo, "sweep09", "metrics/summary.json"))
    report = _experiment_file(repo, "sweep09", "metrics/report.md")
    assert "pruned_90_int8" in summary["variants"] and "pruned 90%" in report
    # baseline, pruned 50 and 90 % (+ sparse), deploy, the students
    assert len(summary["variants"]) == 2 + 2 * (2 + 1) + 1 + len(TINY["students"]["run"])
    # The working copy's 0.5-only files are not rows of the new report, nor are any other sparsities.
    assert not any(v.startswith(("pruned_70", "pruned_80")) for v in summary["variants"])
    figures = run_tool(
        ["git", "ls-tree", "--name-only", f"refs/exps/{_exp_ref(repo, 'sweep09')}", "plots/report/"], repo
    )
    assert "plots/report/accuracy_vs_sparsity.png" in figures.stdout


def test_metrics_diff_between_two_commits(sweep_clone: Path):
    """DVC's own comparison: a branch made from an experiment against the commit it started from."""
    repo = sweep_clone
    run_tool(["dvc", "exp", "branch", "sweep09", "sweep-branch"], repo)
    diff = json.loads(run_tool(["dvc", "metrics", "diff", "HEAD", "sweep-branch", "--json"], repo).stdout)
    assert diff["metrics/models/pruned_90_int8.json"]["acc"]["old"] is None  # a new row
    # Deploy trained with another learning rate; on the tiny profile its rounded figures may not move, so the
    # change is read where DVC records it rather than in the metrics.
    params = json.loads(run_tool(["dvc", "params", "diff", "HEAD", "sweep-branch", "--json"], repo).stdout)
    assert params["params.yaml"]["deploy.learning_rate"]["new"] == pytest.approx(3e-05)
    assert all(path.startswith(("metrics/models/", "metrics/boards/", "metrics/verdicts/")) for path in diff)
    subprocess.run(["git", "branch", "-D", "sweep-branch"], cwd=repo, capture_output=True)


def test_plots_diff_draws_every_plot_offline_in_a_real_browser(sweep_clone: Path, tmp_path: Path):
    """`dvc plots diff` fills the page `npm ci` wrote (tools/plots_page.js); headless Chromium, with no network,
    draws a canvas for every Vega plot and raises no script error."""
    repo = sweep_clone
    page = ROOT / ".dvc" / "plots_page.html"
    assert page.is_file(), "run `npm ci` (the README's install command): it writes .dvc/plots_page.html"
    assert shutil.which("chromium"), "install Debian's chromium package (.ci/run does)"
    shutil.copy(page, repo / ".dvc" / "plots_page.html")
    run_tool(["dvc", "config", "--local", "plots.html_template", "plots_page.html"], repo)
    out = tmp_path / "plots"
    run_tool(["dvc", "plots", "diff", "HEAD", "refs/exps/" + _exp_ref(repo, "sweep09"), "-o", str(out)], repo)
    html = (out / "index.html").read_text()
    assert "cdn.jsdelivr" not in html and "vega-embed.min.js" in html
    embeds = html.count("vegaEmbed('#")
    assert embeds >= len(TINY["students"]["run"]) + 10  # confusion matrices, training curves
    dom = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--proxy-server=127.0.0.1:9",
            "--virtual-time-budget=30000",
            "--dump-dom",
            (out / "index.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert '<pre class="plot-error">' not in dom  # tools/plots_page.html shows any script error there
    assert dom.count("<canvas") == embeds  # every Vega plot drew
    images = re.findall(r'<img src="(static/[^"]+)"', html)
    assert images and all((out / image).is_file() for image in images)  # the report's PNGs beside it


def test_dvc_metrics_and_plots_see_every_variant(repo: Path):
    shown = json.loads(run_tool(["dvc", "metrics", "show", "--json"], repo).stdout)
    files = next(iter(shown.values()))["data"]
    # The headline only (stages/lib/report/headline.py): a file per row, per board with a pick and per verdict.
    assert "metrics/models/pruned_50_int8.json" in files and "metrics/summary.json" not in files
    assert {path.split("/")[1] for path in files} == {"models", "boards", "verdicts"}
    plots = run_tool(["dvc", "plots", "show", "--json", "--split"], repo).stdout
    assert "plots/confusion/deploy/int8.json" in plots and "dvclive/train/plots/metrics" in plots


def test_a_three_class_folder_runs_every_stage_to_firmware_that_reproduces_it(three_classes: Path, tmp_path: Path):
    ran = stages_run((three_classes / "first_repro.log").read_text())
    assert {"prepare", "train", "prune", "deploy", "teacher", "student@b7_96", "report", "firmware"} <= ran
    summary = json.loads((three_classes / "metrics/summary.json").read_text())
    assert summary["classes"] == ["clean", "cracked", "unsure"]
    soft = np.load(three_classes / "data/teacher.npz")["train"]  # the teacher's per-class soft labels
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=1e-4)
    for row in summary["variants"].values():  # argmax decisions, macro AUCs, per-class recall
        assert row["threshold"] is None and 0 <= row["roc_auc"] <= 1 and 0 <= row["validation_roc_auc"] <= 1
    baseline = json.loads((three_classes / "metrics/evaluate/baseline/int8.json").read_text())
    assert {"macro_f1", "class_2_recall", "class_2_precision"} <= set(baseline)
    predicted = json.loads((three_classes / "plots/confusion/baseline/int8.json").read_text())
    assert {entry["actual"] for entry in predicted} == {0, 1, 2}
    assert "3 classes (clean, cracked, unsure)" in (three_classes / "metrics/report.md").read_text()
    assert firmware_reproduces_the_report(three_classes, tmp_path) > 0
    header = next((three_classes / "models/firmware").glob("*/edge_model.h")).read_text()
    assert "edge_model_output_count = 3;" in header


def test_a_mobilenet_of_your_own_is_the_baseline_as_it_is_on_raw_pixels(three_classes: Path):
    from conftest import OWN_MOBILENET
    from stages.lib.core import data
    from stages.lib.keras import model as model_lib
    from stages.lib.keras import own_model

    record = json.loads((three_classes / "data/prepared/own_model.json").read_text())
    assert record["sha256"] == own_model.fingerprint(three_classes / OWN_MOBILENET) and record["image_size"] == 32
    # Kept as it is (`model.fine_tune: false`): the baseline on raw pixels is the file's model on pixels / 127.5 - 1.
    images, _ = data.load_split(three_classes / "data/prepared", "test")
    mine = own_model.read(three_classes / OWN_MOBILENET).predict(images / 127.5 - 1, verbose=0)
    baseline = np.load(three_classes / "models/baseline/test_probabilities.npy")
    np.testing.assert_allclose(baseline, mine, atol=1e-4)  # the scaling in the graph rounds as float32 does
    model, _ = model_lib.load(three_classes / "models/baseline")
    assert model.layers[1].name == "input_scaling" and not any(isinstance(layer, type(model)) for layer in model.layers)
    pruned = json.loads((three_classes / "metrics/prune/0.5.json").read_text())
    assert pruned["sparsity_measured"]["prunable"] > 0.4


def test_a_sequential_cnn_of_your_own_is_fine_tuned_pruned_quantized_and_runs_on_the_boards(
    own_cnn: Path, tmp_path: Path
):
    ran = stages_run((own_cnn / "first_repro.log").read_text())
    assert {"prepare", "train", "prune", "deploy", "teacher", "micro", "report", "firmware"} <= ran
    assert not any(stage.startswith("student") for stage in ran)  # `students.run: []`
    train = json.loads((own_cnn / "metrics/train.json").read_text())
    assert train["epochs_run"]["head"] == 0 and train["epochs_run"]["fine_tune"] >= 1  # `model.fine_tune: true`
    assert json.loads((own_cnn / "metrics/prune/0.5.json").read_text())["sparsity_measured"]["prunable"] > 0.4
    micro = json.loads((own_cnn / "metrics/micro.json").read_text())
    assert micro["tflm_litert_reference_label_agreement"] == 1.0
    assert firmware_reproduces_the_report(own_cnn, tmp_path) > 0
