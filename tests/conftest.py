"""Shared fixtures: small real models and images, and a runner for stage command lines."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import stages  # noqa: E402,F401  (sets the Keras 2 switch before TensorFlow loads)

# Modules that build, train, convert or run real models, compile C++, or run the pipeline: the full suite (the CI
# command) runs them; `pytest -m "not slow"` is the fast tier of pure logic (see CONTRIBUTING.md).
SLOW_MODULES = {
    "test_backbones",
    "test_firmware",
    "test_litert",
    "test_lut",
    "test_model",
    "test_own_model",
    "test_patch_models",
    "test_pipeline",
    "test_pruning",
    "test_qat",
    "test_reliability",
    "test_tflite_bundle",
    "test_tflm",
    "test_training",
}


def pytest_collection_modifyitems(items: list) -> None:
    for item in items:
        if item.module.__name__ in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
    # The tests that wait on background work (`_BACKGROUND_RUNS`, `_CLONE_RUNS`) go last: it overlaps everything
    # before them.
    items.sort(key=lambda item: any(name in item.fixturenames for name in (*_BACKGROUND_RUNS, *_CLONE_RUNS)))


def run_module(
    module: str, cwd: Path, *args: str, timeout: int = 600, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run `python -m <module>` in `cwd` with this checkout's code on the path."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="session")
def elpv_images() -> tuple[np.ndarray, np.ndarray]:
    """24 real solar-cell images (12 per class) at 32 px, as the pipeline feeds them."""
    from stages.lib.core import data

    images, labels, _ = data.load_elpv("functional_vs_defective")
    keep = data.cap_per_class(labels, 12, seed=0)
    return np.stack([np.repeat(data.resize(images[i], 32), 3, axis=-1) for i in keep]), labels[keep]


@pytest.fixture(scope="session")
def tiny_classifier():
    """The real classifier (Lite0 with its ImageNet weights) at 32 px."""
    from stages.lib.keras import model

    model.seed_everything(0)  # the head's initial weights, whichever tests ran before
    return model.build_classifier(32, "efficientnet_lite0", "bundled", dense_units=32, dropout=0.1)


@pytest.fixture(scope="session")
def short_classifier():
    """The real classifier with Lite0 stopped after block 3 (ImageNet weights), at 32 px: ~40 K weights to
    cluster and quantize instead of 4 M, the same layer kinds."""
    from stages.lib.keras import model

    model.seed_everything(0)  # the head's initial weights, whichever tests ran before
    return model.build_classifier(32, "efficientnet_lite0", "bundled", dense_units=32, dropout=0.1, stop_after_block=3)


def fit_briefly(net, images: np.ndarray, labels: np.ndarray, epochs: int, callbacks=()) -> None:
    import tf_keras as keras

    net.compile(optimizer=keras.optimizers.Adam(1e-4), loss="binary_crossentropy")
    net.fit(
        images.astype(np.float32),
        labels.astype(np.float32),
        batch_size=8,
        epochs=epochs,
        callbacks=list(callbacks),
        verbose=0,
    )


def copy_model(net):
    """An independent copy: tfmot's wrappers modify the layers they wrap."""
    import tf_keras as keras

    copy = keras.models.clone_model(net)
    copy.set_weights(net.get_weights())
    return copy


@pytest.fixture(scope="session")
def pruned(short_classifier, elpv_images):
    """The short classifier pruned to 60 % (every Conv2D/Dense layer) and stripped."""
    from stages.lib.compress import pruning
    from stages.lib.keras import model

    images, labels = elpv_images
    model.seed_everything(0)  # the same fine-tune whichever tests ran before: session fixtures share the RNG
    net = copy_model(short_classifier)
    model.set_trainable(net, from_block=0)
    steps = 4 * 3  # 24 images / batch 8 = 3 steps per epoch, 4 epochs
    polynomial, _ = pruning.schedule(0.0, 0.6, steps, 20, 0.5, 3)
    wrapped = pruning.prune(net, polynomial, min_weights=0)
    fit_briefly(wrapped, images, labels, 4, pruning.callbacks())
    return pruning.strip(wrapped)


# The quick look: the tiny override the suite, CI and `python tools/quick_look.py` all run (one file, one truth).
TINY = yaml.safe_load((ROOT / "profiles/tiny.yaml").read_text())


def copy_dict(value: dict) -> dict:
    """A deep copy of a YAML mapping (merging must not change TINY)."""
    return yaml.safe_load(yaml.safe_dump(value))


def merge(base: dict, override: dict) -> dict:
    for key, value in override.items():
        base[key] = merge(base[key], value) if isinstance(value, dict) and isinstance(base[key], dict) else value
    return base


def run_tool(
    command: list[str], cwd: Path, timeout: int = 1200, extra_env: dict | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    """Run a command (dvc, git) in `cwd` with this interpreter's tools first on PATH; fail the test on error."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", DVC_NO_ANALYTICS="1")
    env.update(extra_env or {})
    env.pop("PYTHONPATH", None)  # the stages must run from the copy, as `dvc repro` runs them for a user
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert not check or result.returncode == 0, (
        f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@localhost"]


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="session")
def repo(tmp_path_factory, request) -> Path:
    """A fresh git + DVC copy of the project's tracked files, with the tiny params, after one full `dvc repro`, its
    results committed.

    The experiments that start from that commit in a clone of their own (`_CLONE_RUNS`) are then queued on the
    background worker, when this session's tests need them."""
    copy = tiny_repo(tmp_path_factory.mktemp("edge-opt"), TINY, tmp_path_factory.mktemp("trace"))
    run_tool([*GIT, "add", "-A"], copy)
    run_tool([*GIT, "commit", "-qm", "tiny results"], copy)
    for name, (cache, experiment) in _CLONE_RUNS.items():
        if _needed(request, name):
            clone = tmp_path_factory.mktemp(name) / "clone"
            run_tool(["git", "clone", "-q", str(copy), str(clone)], clone.parent)
            if cache:  # copied now, before the tests after this one change the run's outputs
                shutil.copytree(copy / ".dvc" / "cache", clone / ".dvc" / "cache")
            _BACKGROUND[name] = _submit(experiment, clone)
    return copy


# Three classes through every stage, from a model of your own: the tiny profile on a folder of three classes of
# real cells (the elpv defect probabilities 0, 1/3 and 1) with a MobileNetV2 (alpha 0.35, random weights, softmax,
# inputs scaled to -1..1) saved by tf-keras as the baseline, kept as it is; one distilled student in 2 x 2 patches
# (per-class soft labels, the patch tail's softmax), to the firmware.
OWN_MOBILENET = "models/own/mobilenet_v2.keras"
THREE_CLASSES = {
    "data": {"source": "cells"},
    "model": {"file": OWN_MOBILENET, "input_scaling": "-1-1", "fine_tune": False},
    "students": {"run": ["b7_96"], "shapes": {"b7_96": {"patches": {"grid": 2, "through_block": 0}}}},
}
# A plain Sequential CNN of your own (.h5, two classes, inputs scaled to 0-1), fine-tuned, pruned, quantized, to the
# firmware; no students (`students.run: []`: the other two runs train them).
OWN_CNN = "models/own/cnn.h5"
CNN = {"model": {"file": OWN_CNN, "input_scaling": "0-1", "fine_tune": True}, "students": {"run": []}}


def mobilenet_v2(classes: int, size: int):
    """MobileNetV2 at alpha 0.35 with random weights, its BatchNormalization statistics those of one batch of -1..1
    inputs (at Keras' initial statistics its activations die out: a constant output, which int8 cannot quantize):
    one sigmoid unit for two classes, else a softmax."""
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    activation, units = ("sigmoid", 1) if classes == 2 else ("softmax", classes)
    model = keras.applications.MobileNetV2(
        input_shape=(size, size, 3), alpha=0.35, weights=None, classes=units, classifier_activation=activation
    )
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.momentum = 0.0
    model(np.random.default_rng(0).uniform(-1, 1, (16, size, size, 3)).astype(np.float32), training=True)
    for layer in norms:
        layer.momentum = 0.999
    return model


def small_cnn(size: int):
    """A plain Sequential CNN: convolutions (one followed by BatchNormalization), pooling, one sigmoid unit."""
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            layers.Conv2D(8, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(16, 3),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.GlobalAveragePooling2D(),
            layers.Dropout(0.2),
            layers.Dense(1, activation="sigmoid"),
        ],
        name="cnn",
    )


def _three_class_folder(copy: Path) -> None:
    from PIL import Image

    from stages.lib.core import data

    images, levels, _ = data.load_elpv("defect_levels")
    for name, level in (("cracked", 3), ("clean", 0), ("unsure", 1)):
        (copy / "cells" / name).mkdir(parents=True)
        for index in np.flatnonzero(levels == level)[: TINY["data"]["max_images_per_class"]]:
            Image.fromarray(images[index]).save(copy / "cells" / name / f"{index}.png")
    mobilenet_v2(3, TINY["data"]["image_size"]).save(copy / OWN_MOBILENET)


def _own_cnn_file(copy: Path) -> None:
    small_cnn(TINY["data"]["image_size"]).save(copy / OWN_CNN)


def _in_a_process_of_its_own(function: str) -> Callable[[Path], None]:
    """conftest.`function` run on the copy in a child process: a background thread must not touch this process's
    Keras state (its random seed, its layer names) under the tests running beside it."""

    def prepare(copy: Path) -> None:
        code = f"import conftest, pathlib; conftest.{function}(pathlib.Path({str(copy)!r}))"
        run_tool([sys.executable, "-c", code], ROOT / "tests")

    return prepare


# Work that runs beside the tests, one job after the other on one worker thread: a tiny run keeps about one core
# busy, so two streams fill the 2-core box (three at once slowed `repo`). The runs from a model of your own start
# with the session; the experiments on clones of `repo`'s commit, when it is ready.
_WORKER = ThreadPoolExecutor(1, thread_name_prefix="tiny-run")
_BACKGROUND: dict[str, Future] = {}
# name: (the tiny run's override of TINY, the conftest function that writes the model (and data) into the copy).
_BACKGROUND_RUNS: dict[str, tuple[dict, str]] = {
    "three_classes": (THREE_CLASSES, "_three_class_folder"),
    "own_cnn": (CNN, "_own_cnn_file"),
}
# `dvc exp run -S deploy.learning_rate=0.00003 -S prune.sweep=[0.5,0.9]` (DVC writes the float as 3e-05).
SWEEP = ("-S", "deploy.learning_rate=0.00003", "-S", "prune.sweep=[0.5,0.9]")


def _sweep_experiment(clone: Path) -> Path:
    """The clone, which has a copy of the committed run's cache, after the experiment `sweep09` (`SWEEP`), run as
    `dvc exp run --temp`; its output in sweep09.log."""
    result = run_tool(["dvc", "exp", "run", "--temp", "-n", "sweep09", *SWEEP], clone)
    (clone / "sweep09.log").write_text(result.stdout)
    return clone


def _twice_without_the_cache(clone: Path) -> list[str]:
    """In the clone, which has none of the committed run's cached outputs (no remote either), `dvc exp run --temp
    teacher` as it is, then with a value changed: each one's output."""
    changed = ("-S", "deploy.learning_rate=0.00003")
    runs = [run_tool(["dvc", "exp", "run", "--temp", *extra, "teacher"], clone) for extra in ((), changed)]
    return [result.stdout + result.stderr for result in runs]


# name: (whether the clone gets a copy of the committed run's cache, the experiment run on it).
_CLONE_RUNS: dict[str, tuple[bool, Callable[[Path], object]]] = {
    "sweep_clone": (True, _sweep_experiment),
    "bare_clone": (False, _twice_without_the_cache),
}


def _needed(request, name: str) -> bool:
    return any(name in item.fixturenames for item in request.session.items)


_STOP = threading.Event()


def _submit(function: Callable, *args) -> Future:
    """`function(*args)` queued on the worker, unless the session is over (or interrupted) when its turn comes."""

    def job():
        if _STOP.is_set():
            raise RuntimeError("the test session ended before this background run started")
        return function(*args)

    return _WORKER.submit(job)


def pytest_sessionstart() -> None:
    """On Ctrl-C, start nothing more in the background: the worker's running job dies with its `dvc` child; the
    queued ones would otherwise run, minutes each, before the interpreter may exit."""
    interrupted = signal.getsignal(signal.SIGINT)

    def stop(signum, frame):
        _STOP.set()
        interrupted(signum, frame)

    if callable(interrupted):
        signal.signal(signal.SIGINT, stop)


def pytest_sessionfinish() -> None:
    _STOP.set()


@pytest.fixture(scope="session", autouse=True)
def _background_runs(tmp_path_factory, request) -> None:
    """Queue the runs this session's tests need (none in the fast tier), each on a copy of its own."""
    for name, (override, prepare) in _BACKGROUND_RUNS.items():
        if _needed(request, name):
            copy, trace = tmp_path_factory.mktemp(name), tmp_path_factory.mktemp(f"trace-{name}")
            override = merge(copy_dict(TINY), copy_dict(override))
            _BACKGROUND[name] = _submit(tiny_repo, copy, override, trace, _in_a_process_of_its_own(prepare))


@pytest.fixture(scope="session")
def three_classes(_background_runs) -> Path:
    """The tiny run on a folder of three classes from a MobileNetV2 of your own (`THREE_CLASSES`), after its
    `dvc repro`."""
    return _BACKGROUND["three_classes"].result()


@pytest.fixture(scope="session")
def own_cnn(_background_runs) -> Path:
    """The tiny run from a Sequential CNN of your own (`CNN`), after its `dvc repro`."""
    return _BACKGROUND["own_cnn"].result()


@pytest.fixture(scope="session")
def sweep_clone(repo: Path) -> Path:
    """A clone of `repo`'s commit, with its cache, after the experiment `sweep09` (`SWEEP`)."""
    return _BACKGROUND["sweep_clone"].result()


@pytest.fixture(scope="session")
def bare_clone(repo: Path) -> list[str]:
    """The outputs of two `dvc exp run --temp teacher` in a clone of `repo`'s commit without its cache."""
    return _BACKGROUND["bare_clone"].result()


def tiny_repo(copy: Path, override: dict, trace: Path, prepare: Callable[[Path], None] | None = None) -> Path:
    """`copy` as a git + DVC copy of the project's tracked files with params.yaml overridden by `override` (and
    `prepare` run on it), after one full `dvc repro` whose log is first_repro.log."""
    kept = ("stages", "firmware", "dvc.yaml", ".dvcignore", ".gitignore", ".dvc/config", "pyproject.toml")
    for name in (*kept, "models/own/README.md", "benchmarks/results/student_search/frontier.json"):
        source = ROOT / name
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(
            source, target, ignore=shutil.ignore_patterns("__pycache__")
        ) if source.is_dir() else shutil.copy(source, target)
    params = merge(yaml.safe_load((ROOT / "params.yaml").read_text()), copy_dict(override))
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    if prepare is not None:
        prepare(copy)
    run_tool(["git", "init", "-q"], copy)
    run_tool([*GIT, "add", "-A"], copy)
    run_tool([*GIT, "commit", "-qm", "tiny"], copy)
    result = run_tool(["dvc", "repro"], copy, extra_env={"EDGE_OPT_TRACE_DIR": str(trace)})
    (copy / "first_repro.log").write_text(result.stdout)
    (copy / "trace_dir.txt").write_text(str(trace))
    return copy
