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


def test_the_block_shows_every_variant_of_the_summary():
    sys.path.insert(0, str(ROOT / "tools"))
    import readme_results

    summary = json.loads((ROOT / "metrics/summary.json").read_text())
    text = readme_results.block(summary)
    # variant rows (the first table's header opens the text), the board table's header, a row per board
    assert text.count("\n| ") == len(summary["variants"]) + 1 + len(summary["recommendation"])
    deploy = summary["variants"]["deploy_int8"]
    assert f"{deploy['accuracy']:.1%}" in text and f"{deploy['compressed_reduction']:.1f}×" in text


def _flat(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def test_the_quick_profile_is_the_override_the_suite_runs():
    import re

    import yaml

    from conftest import TINY

    text = (ROOT / "README.md").read_text()
    command = text[text.index("dvc exp run --temp") :].split("```")[0]
    given = {key: yaml.safe_load(value) for key, value in re.findall(r"-S '?\+{0,2}([\w.]+)=([^'\s]+)'?", command)}
    assert given == _flat(TINY)
