"""Shared fixtures: small real models and images, and a runner for stage command lines."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import stages  # noqa: E402,F401  (sets the Keras 2 switch before TensorFlow loads)


def run_module(module: str, cwd: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run `python -m <module>` in `cwd` with this checkout's code on the path."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def elpv_images() -> tuple[np.ndarray, np.ndarray]:
    """24 real solar-cell images (12 per class) at 32 px, as the pipeline feeds them."""
    from stages.lib import data

    images, labels, _ = data.load_elpv("functional_vs_defective")
    keep = data.cap_per_class(labels, 12, seed=0)
    return np.stack([np.repeat(data.resize(images[i], 32), 3, axis=-1) for i in keep]), labels[keep]


@pytest.fixture(scope="session")
def tiny_classifier():
    """The real classifier (Lite0 with its ImageNet weights) at 32 px."""
    from stages.lib import model

    return model.build_classifier(32, "efficientnet_lite0", "bundled", dense_units=32, dropout=0.1)
