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


SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile")
# Keras' verbose=2 epoch line: "49/49 - 20s - loss: ... - 20s/epoch - 409ms/step"
STEP = re.compile(r"^\s*(\d+)/\1 - (\d+)s - ")


def machine() -> dict[str, object]:
    """CPU model, the SIMD flags TensorFlow's kernels use, cores: what makes two boxes' timings comparable."""
    info = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    field = {line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip() for line in reversed(info) if ":" in line}
    flags = set(field.get("flags", "").split())
    return {
        "cpu": field.get("model name", platform.processor()),
        "simd_flags": [flag for flag in SIMD_FLAGS if flag in flags],
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }


def step_seconds(lines: list[str]) -> list[float]:
    """Seconds per training step of every epoch Keras logged: epoch wall time (validation included) over steps."""
    found = [STEP.match(line) for line in lines]
    return [int(m.group(2)) / int(m.group(1)) for m in found if m]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--force", action="store_true", help="rerun every stage, not only the changed ones")
    parser.add_argument("targets", nargs="*")
    args = parser.parse_args()
    command = ["dvc", "repro", *(["--force"] if args.force else []), *args.targets]
    started = time.perf_counter()
    marks: list[tuple[str, float]] = []
    lines: dict[str, list[str]] = {}
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        for line in process.stdout:
            sys.stdout.write(line)
            match = re.match(r"Running stage '([^']+)'", line)
            if match:
                marks.append((match.group(1), time.perf_counter()))
            elif marks:
                lines.setdefault(marks[-1][0], []).append(line)
    ended = time.perf_counter()
    if process.returncode:
        sys.exit(f"dvc repro failed (exit {process.returncode}); no timings written")
    stages = {
        name: round((marks[i + 1][1] if i + 1 < len(marks) else ended) - at, 1) for i, (name, at) in enumerate(marks)
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    steps = {name: step_seconds(stage_lines) for name, stage_lines in lines.items()}
    rates = {name: round(sorted(values)[len(values) // 2], 3) for name, values in steps.items() if values}
    RESULTS.write_text(
        json.dumps(
            {
                "command": " ".join(command),
                "machine": machine(),
                "total_seconds": round(ended - started, 1),
                "stage_seconds": stages,
                # Median seconds per training step (batch of train.batch_size) per stage: the rate to compare boxes by.
                "median_step_seconds": rates,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"{len(stages)} stages in {ended - started:.0f} s -> {RESULTS}")


if __name__ == "__main__":
    main()
