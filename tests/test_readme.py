"""The README's numbers are the committed run's: its results block is generated from metrics/summary.json."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT


def test_readme_results_block_equals_the_metrics():
    result = subprocess.run(
        [sys.executable, "tools/readme_results.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_the_blocks_show_every_variant_and_every_board():
    from stages.lib.core import params

    sys.path.insert(0, str(ROOT / "tools"))
    import readme_results

    summary = json.loads((ROOT / "metrics/summary.json").read_text())
    results = readme_results.block(summary, "95 %")
    assert results.count("\n| ") == len(summary["variants"])  # a row per variant below the header
    deploy = summary["variants"]["deploy_int8"]
    assert f"| `deploy_int8` | {deploy['accuracy']:.1%} |" in results
    targets = params.load(ROOT / "params.yaml").report.targets
    assert readme_results.boards(summary, targets).count("\n| ") == len(summary["recommendation"])


def test_the_readme_is_short_and_for_a_user():
    import re

    text = (ROOT / "README.md").read_text()
    lines = text.splitlines()
    assert len(lines) <= 200
    assert [n for n, line in enumerate(lines, 1) if len(line) > 120] == []
    assert not re.search(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b", text), "a commit hash in the README"
    for document in (
        "docs/decisions.md",
        "docs/benchmarks.md",
        "docs/design.md",
        "docs/firmware.md",
        "CONTRIBUTING.md",
    ):
        assert (ROOT / document).exists() and f"]({document}" in text


def _flat(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def test_the_quick_look_runs_the_profile_the_suite_runs():
    """The README's one-line quick look runs profiles/tiny.yaml, the override the suite runs, every value of it."""
    import shlex
    import subprocess
    import sys

    import yaml

    from conftest import TINY

    assert "python tools/quick_look.py" in (ROOT / "README.md").read_text()
    printed = subprocess.run(
        [sys.executable, "tools/quick_look.py", "--print"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    words = shlex.split(printed)
    assert words[:4] == ["dvc", "exp", "run", "--temp"] and set(words[4::2]) == {"-S"}
    overrides = [override.split("=", 1) for override in words[5::2]]
    assert {key.lstrip("+"): yaml.safe_load(value) for key, value in overrides} == _flat(TINY)
    # `++` adds a key params.yaml lacks (a plain `-S` on a new key fails); only there.
    assert {key[2:] for key, _ in overrides if key.startswith("++")} == {"students.shapes.b7_96.expand_keep.block1"}
