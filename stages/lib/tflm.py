"""TensorFlow Lite Micro on the host: the real tensor arena a model needs, and its predictions.

TFLite Micro runs here through the `tflite-micro` package (TFLM compiled for the host, reference kernels).
Its Python wrapper can crash the process after a failed allocation, so every arena probe runs in a child process.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

ARENA_ALIGNMENT = 16
PROBE_TIMEOUT_S = 120


def arena_allocates(path: str | Path, arena_bytes: int) -> bool:
    """Whether TFLite Micro can allocate every tensor of the model in an arena of this size (child process)."""
    command = [sys.executable, "-m", "stages.lib.tflm", str(path), str(arena_bytes)]
    result = subprocess.run(
        command, capture_output=True, timeout=PROBE_TIMEOUT_S, cwd=Path(__file__).resolve().parents[2]
    )
    return result.returncode == 0


def minimum_arena(path: str | Path) -> int:
    """The smallest arena (to 16 bytes) in which TFLite Micro allocates the model: doubling, then bisection."""
    high = 64 * 1024
    progress = tqdm(desc=f"TFLM arena of {Path(path).name}", unit="probe", mininterval=2)
    while not arena_allocates(path, high):
        progress.update()
        high *= 2
        if high > 1 << 31:
            raise RuntimeError(
                f"{path}: TFLite Micro cannot allocate it even in 2 GiB; is it an int8 model TFLM supports?"
            )
    low = 0  # invariant: low fails (or is zero), high allocates
    while high - low > ARENA_ALIGNMENT:
        middle = (low + high) // 2 // ARENA_ALIGNMENT * ARENA_ALIGNMENT
        if middle <= low:
            break
        low, high = (low, middle) if arena_allocates(path, middle) else (middle, high)
        progress.update()
    progress.close()
    return high


def micro_predict(path: str | Path, images: np.ndarray, arena_bytes: int, workers: int | None = None) -> np.ndarray:
    """P(class 1) for each image from the TFLite Micro interpreter, one invoke per image.

    TFLM runs on one core, so the images are split over `workers` processes (default: every core this process may
    use); each image's result does not depend on the split.
    """
    workers = min(workers or len(os.sched_getaffinity(0)), len(images))
    if workers <= 1:
        return _predict_chunk(str(path), images, arena_bytes, True)
    chunks = np.array_split(images, workers)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = pool.map(
            _predict_chunk, [str(path)] * workers, chunks, [arena_bytes] * workers, [i == 0 for i in range(workers)]
        )
        return np.concatenate(list(parts))


def _predict_chunk(path: str, images: np.ndarray, arena_bytes: int, progress: bool) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime

    from stages.lib.litert import dequantize_output, quantize_input

    interpreter = runtime.Interpreter.from_bytes(Path(path).read_bytes(), arena_size=arena_bytes)

    # TFLM reports quantization in its own layout; put it in LiteRT's so both share one (de)quantizer.
    def litert_detail(detail: dict) -> dict:
        parameters = detail["quantization_parameters"]
        return {
            "dtype": detail["dtype"],
            "quantization": (float(parameters["scales"][0]), int(parameters["zero_points"][0])),
        }

    input_detail, output_detail = (
        litert_detail(interpreter.get_input_details(0)),
        litert_detail(interpreter.get_output_details(0)),
    )
    probabilities = np.empty(len(images), dtype=np.float32)
    shown = tqdm(images, desc="TFLite Micro", unit="image", mininterval=2, disable=not progress)
    for index, image in enumerate(shown):
        interpreter.set_input(quantize_input(image[None].astype(np.float32), input_detail), 0)
        interpreter.invoke()
        probabilities[index] = dequantize_output(interpreter.get_output(0), output_detail).reshape(-1)[0]
    return probabilities


def _probe_main(path: str, arena_bytes: str) -> None:
    from tflite_micro.python.tflite_micro import runtime

    try:
        runtime.Interpreter.from_file(path, arena_size=int(arena_bytes))
    except RuntimeError:
        os._exit(1)  # skip the wrapper's destructor, which can crash after a failed allocation
    os._exit(0)


if __name__ == "__main__":
    _probe_main(*sys.argv[1:3])
