"""TensorFlow Lite Micro on the host: the real tensor arena a model needs, and its predictions.

TFLite Micro runs here through the `tflite-micro` package (TFLM compiled for the host, reference kernels).
Its Python wrapper can crash the process after a failed allocation, so every arena probe runs in a child process.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from stages.lib.runtime import patching
from stages.lib.runtime.outputs import probability_rows
from stages.lib.runtime.patching import PartRunner

ARENA_ALIGNMENT = 16
PROBE_TIMEOUT_S = 120
# The checkout holding the `stages` package (stages/lib/runtime/tflm.py), where the probe's `python -m` runs.
CHECKOUT = Path(__file__).resolve().parents[3]


def _probe(path: str | Path, arena_bytes: int) -> int | None:
    """The arena bytes TFLite Micro used when it allocated the model in `arena_bytes` (child process); None when it
    could not. The used bytes are TFLM's own `Arena allocation total`, printed by its recording allocator."""
    command = [sys.executable, "-m", "stages.lib.runtime.tflm", str(path), str(arena_bytes)]
    result = subprocess.run(command, capture_output=True, timeout=PROBE_TIMEOUT_S, cwd=CHECKOUT)
    if result.returncode != 0:
        return None
    used = re.search(rb"Arena allocation total (\d+) bytes", result.stdout + result.stderr)
    return int(used.group(1)) if used else arena_bytes


def arena_allocates(path: str | Path, arena_bytes: int) -> bool:
    """Whether TFLite Micro can allocate every tensor of the model in an arena of this size (child process)."""
    return _probe(path, arena_bytes) is not None


def minimum_arena(path: str | Path | bytes) -> int:
    """The smallest arena (to 16 bytes) in which TFLite Micro allocates the model (a file, or a model's bytes).

    Doubling finds an arena that allocates; TFLM's allocation total there is the candidate, checked by probes at it
    and 16 bytes below (three or four probes in all, against ~20 for bisection alone); bisection settles any gap."""
    if isinstance(path, bytes):  # the probes run in child processes, which read a file
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "part.tflite").write_bytes(path)
            return minimum_arena(Path(folder) / "part.tflite")
    high = 64 * 1024
    progress = tqdm(desc=f"TFLM arena of {Path(path).name}", unit="probe", mininterval=2)
    while (used := _probe(path, high)) is None:
        progress.update()
        high *= 2
        if high > 1 << 31:
            raise RuntimeError(
                f"{path}: TFLite Micro cannot allocate it even in 2 GiB; is it an int8 model TFLM supports?"
            )
    low = 0  # invariant: low fails (or is zero), high allocates
    candidate = -(-used // ARENA_ALIGNMENT) * ARENA_ALIGNMENT
    if ARENA_ALIGNMENT < candidate < high:
        low, high = (low, candidate) if arena_allocates(path, candidate) else (candidate, high)
        if high == candidate and not arena_allocates(path, candidate - ARENA_ALIGNMENT):
            low = candidate - ARENA_ALIGNMENT
    while high - low > ARENA_ALIGNMENT:
        middle = (low + high) // 2 // ARENA_ALIGNMENT * ARENA_ALIGNMENT
        if middle <= low:
            break
        low, high = (low, middle) if arena_allocates(path, middle) else (middle, high)
        progress.update()
    progress.close()
    return high


def micro_predict(
    path: str | Path | bytes, images: np.ndarray, arena_bytes: int, workers: int | None = None
) -> np.ndarray:
    """P(class 1) (N x K for a softmax) for each image from the TFLite Micro interpreter (a model file or its
    bytes), one invoke per image.

    TFLM runs on one core, so the images are split over `workers` processes (default: every core this process may
    use); each image's result does not depend on the split.
    """
    return _in_workers(_predict_chunk, (path if isinstance(path, bytes) else str(path), arena_bytes), images, workers)


def micro_predict_deployment(
    folder: str | Path, images: np.ndarray, arenas: list[int], workers: int | None = None
) -> np.ndarray:
    """P(class 1) for each image from a patch-based deployment (`patching`), every part of the board's stripped blob
    on TFLite Micro in its own measured arena (`arenas`, in `patching.parts` order); split over processes as
    `micro_predict`."""
    return _in_workers(_predict_deployment_chunk, (str(folder), arenas), images, workers)


def _in_workers(
    chunk_function: Callable[..., np.ndarray], arguments: tuple, images: np.ndarray, workers: int | None
) -> np.ndarray:
    workers = min(workers or len(os.sched_getaffinity(0)), len(images))
    if workers <= 1:
        return chunk_function(*arguments, images, True)
    chunks = np.array_split(images, workers)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(chunk_function, *arguments, chunk, i == 0) for i, chunk in enumerate(chunks)]
        return np.concatenate([future.result() for future in futures])


def _micro_runner(path: str | Path | bytes, arena_bytes: int) -> PartRunner:
    """A TFLM interpreter as float in, float out, with LiteRT's (de)quantizer (TFLM's layout translated)."""
    from tflite_micro.python.tflite_micro import runtime

    from stages.lib.runtime.litert import dequantize_output, model_bytes, quantize_input

    interpreter = runtime.Interpreter.from_bytes(model_bytes(path), arena_size=arena_bytes)

    def litert_detail(detail: dict) -> dict:
        parameters = detail["quantization_parameters"]
        return {
            "dtype": detail["dtype"],
            "quantization": (float(parameters["scales"][0]), int(parameters["zero_points"][0])),
        }

    input_detail = litert_detail(interpreter.get_input_details(0))
    output_detail = litert_detail(interpreter.get_output_details(0))

    def run(values: np.ndarray) -> np.ndarray:
        interpreter.set_input(quantize_input(values.astype(np.float32), input_detail), 0)
        interpreter.invoke()
        return dequantize_output(interpreter.get_output(0), output_detail)

    return run


def _predict_chunk(path: str | bytes, arena_bytes: int, images: np.ndarray, progress: bool) -> np.ndarray:
    run = _micro_runner(path, arena_bytes)
    progress_bar = tqdm(images, desc="TFLite Micro", unit="image", mininterval=2, disable=not progress)
    return probability_rows([run(image[None]) for image in progress_bar])


def _predict_deployment_chunk(folder: str, arenas: list[int], images: np.ndarray, progress: bool) -> np.ndarray:
    arena_of = dict(zip((name for name, _ in patching.parts(folder)), arenas, strict=True))
    description = "TFLite Micro (patches)" if progress else ""
    run_part = lambda name, model: _micro_runner(model, arena_of[name])  # noqa: E731
    return patching.predict(folder, images, run_part, description, device=True)


def _probe_main(path: str, arena_bytes: str) -> None:
    from tflite_micro.python.tflite_micro import runtime

    try:
        interpreter = runtime.Interpreter.from_file(path, arena_size=int(arena_bytes))
    except RuntimeError:
        os._exit(1)  # skip the wrapper's destructor, which can crash after a failed allocation
    interpreter.print_allocations()  # its `Arena allocation total` is what `_probe` reads
    os._exit(0)


if __name__ == "__main__":
    _probe_main(*sys.argv[1:3])
