"""Measure the wall time of every stage of a `dvc repro` and write them to benchmarks/results/stage_times.json.

Usage: python benchmarks/stage_times.py [--force] [dvc repro targets...]
A stage's time runs from its "Running stage" line to the next one (or to the end of the run), so it
includes the interpreter start and imports a user waits for. Timings are noisy on shared machines:
compare runs by ratios, and read the machine description stored beside them.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "stage_times.json"


def machine() -> dict[str, object]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--force", action="store_true", help="rerun every stage, not only the changed ones")
    parser.add_argument("targets", nargs="*")
    args = parser.parse_args()
    command = ["dvc", "repro", *(["--force"] if args.force else []), *args.targets]
    started = time.perf_counter()
    marks: list[tuple[str, float]] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        for line in process.stdout:
            sys.stdout.write(line)
            match = re.match(r"Running stage '([^']+)'", line)
            if match:
                marks.append((match.group(1), time.perf_counter()))
    ended = time.perf_counter()
    if process.returncode:
        sys.exit(f"dvc repro failed (exit {process.returncode}); no timings written")
    stages = {name: round((marks[i + 1][1] if i + 1 < len(marks) else ended) - at, 1) for i, (name, at) in enumerate(marks)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"command": " ".join(command), "machine": machine(), "total_seconds": round(ended - started, 1), "stage_seconds": stages}, indent=2) + "\n")
    print(f"{len(stages)} stages in {ended - started:.0f} s -> {RESULTS}")


if __name__ == "__main__":
    main()
