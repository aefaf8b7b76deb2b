"""Run a profile (default: profiles/tiny.yaml, the quick look) as one DVC experiment in a temporary copy.

Usage: python tools/quick_look.py [--profile PATH] [--print] [-- extra `dvc exp run` arguments]
The profile is a partial params.yaml; each of its values becomes one `-S key=value` of `dvc exp run --temp` (`++key`
where params.yaml has no such key, e.g. a new shape's `expand_keep` entry). Your params.yaml and workspace are left as
they are; compare with `dvc exp show --only-changed` and `dvc metrics diff`. `--print` shows the command instead.
Extra arguments go to `dvc exp run`: `python tools/quick_look.py -- -S deploy.learning_rate=0.00003`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{a: {b: 1}}` -> `{"a.b": 1}`; lists and nulls stay values."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _has(tree: Any, dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return False
        tree = tree[part]
    return True


def overrides(profile: dict[str, Any], params: dict[str, Any]) -> list[str]:
    """One `key=value` per profile leaf, in the override syntax `dvc exp run -S` takes (JSON-like flow values)."""
    result = []
    for key, value in flatten(profile).items():
        text = "null" if value is None else json.dumps(value, separators=(",", ":")).replace('"', "")
        result.append(f"{'' if _has(params, key) else '++'}{key}={text}")
    return result


def command(profile_path: Path, extra: list[str]) -> list[str]:
    profile = yaml.safe_load(profile_path.read_text())
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    flags = [part for override in overrides(profile, params) for part in ("-S", override)]
    return ["dvc", "exp", "run", "--temp", *flags, *extra]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", type=Path, default=ROOT / "profiles/tiny.yaml")
    parser.add_argument("--print", action="store_true", help="print the dvc command instead of running it")
    parser.add_argument("extra", nargs="*", help="more `dvc exp run` arguments, after --")
    args = parser.parse_args()
    run = command(args.profile, args.extra)
    if args.print:
        print(shlex.join(run))
        return
    sys.exit(subprocess.run(run, cwd=ROOT).returncode)


if __name__ == "__main__":
    main()
