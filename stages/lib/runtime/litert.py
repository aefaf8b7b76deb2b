"""Running a `.tflite` with the LiteRT interpreter (never TensorFlow), and reading what the file holds."""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

# ai-edge-litert is the maintained successor of tflite-runtime, whose last release fails under numpy 2.
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from tqdm import tqdm

from stages.lib.core.io import UserError
from stages.lib.runtime.outputs import probability_rows

COMPRESSION = "gzip -9 (DEFLATE), as tfmot's guides measure compressed size"


def compressed_size(data: bytes) -> int:
    """Size after gzip -9 with a fixed header time, so the number repeats run to run."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))


# A TFLite model: a `.tflite` file, or its bytes (a part of a patch-based deployment's blob).
Model = str | Path | bytes


def model_bytes(model: Model) -> bytes:
    return model if isinstance(model, bytes) else Path(model).read_bytes()


def open_interpreter(path: Model, num_threads: int) -> tuple[Interpreter, str]:
    """A ready interpreter and the kernels it runs on: XNNPACK, or LiteRT's built-in kernels as a fallback.

    XNNPACK cannot run sparse int8 or dynamic-range models, and says so at allocate_tensors() or only
    at the first invoke(), so the probe is a real invoke on zeros.
    """
    if not isinstance(path, bytes) and not Path(path).exists():
        raise UserError(f"{path} is missing; run its convert stage (`dvc repro`)")
    content = model_bytes(path)
    for resolver, kernels in (
        (OpResolverType.AUTO, "xnnpack"),
        (OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES, "builtin"),
    ):
        interpreter = Interpreter(
            model_content=content, num_threads=num_threads, experimental_op_resolver_type=resolver
        )
        detail = interpreter.get_input_details()[0]
        try:
            interpreter.allocate_tensors()
            interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], dtype=detail["dtype"]))
            interpreter.invoke()
            return interpreter, kernels
        except RuntimeError:
            continue
    name = "a deployment's part" if isinstance(path, bytes) else path
    raise RuntimeError(f"{name}: neither XNNPACK nor the built-in kernels could run this model")


def quantize_input(images: np.ndarray, detail: dict) -> np.ndarray:
    """Float values (raw 0-255 pixels, or a block's output) in the model's input type (int8 inputs use the model's
    own scale and zero point)."""
    if detail["dtype"] == np.int8:
        scale, zero_point = detail["quantization"]
        return np.clip(np.round(images / scale + zero_point), -128, 127).astype(np.int8)
    return images.astype(detail["dtype"])


def dequantize_output(values: np.ndarray, detail: dict) -> np.ndarray:
    if detail["dtype"] == np.int8:
        scale, zero_point = detail["quantization"]
        return (values.astype(np.float32) - zero_point) * scale
    return values.astype(np.float32)


def part_runner(interpreter: Interpreter) -> Callable[[np.ndarray], np.ndarray]:
    """The interpreter as float in, float out: its input quantized and its output dequantized, as a device does."""
    input_detail, output_detail = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def run(values: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(input_detail["index"], quantize_input(values.astype(np.float32), input_detail))
        interpreter.invoke()
        return dequantize_output(interpreter.get_tensor(output_detail["index"]), output_detail)

    return run


def predict(interpreter: Interpreter, images: np.ndarray, description: str = "LiteRT") -> np.ndarray:
    """P(class 1) for each image (every class's, N x K, for a softmax), one invoke per image (the way a device runs
    it)."""
    run = part_runner(interpreter)
    return probability_rows([run(image[None]) for image in tqdm(images, desc=description, unit="image", mininterval=2)])


def batch_outputs(model_content: bytes, images: np.ndarray, num_threads: int, batch_size: int) -> np.ndarray:
    """A float32 model's output for every image, `batch_size` images per invoke (features, not device figures)."""
    interpreter = Interpreter(model_content=model_content, num_threads=num_threads)
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    outputs = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].astype(np.float32)
        if start == 0 or len(batch) < batch_size:
            interpreter.resize_tensor_input(input_index, batch.shape)
            interpreter.allocate_tensors()
        interpreter.set_tensor(input_index, batch)
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(output_index).copy())
    return np.concatenate(outputs)


def _summary(values: list[float]) -> dict[str, float]:
    p10, p25, median, p75, p90 = np.percentile(values, [10, 25, 50, 75, 90])
    return {
        "median": float(median),
        "p10": float(p10),
        "p25": float(p25),
        "p75": float(p75),
        "p90": float(p90),
        "iqr": float(p75 - p25),
        "runs": len(values),
    }


def _timed_invoke(interpreter: Interpreter) -> float:
    start = time.perf_counter()
    interpreter.invoke()
    return (time.perf_counter() - start) * 1000.0


def _load(interpreter: Interpreter, image: np.ndarray) -> None:
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], quantize_input(image[None].astype(np.float32), detail))
    for _ in range(3):  # warm-up
        interpreter.invoke()


def latency_ms(interpreter: Interpreter, image: np.ndarray, runs: int) -> dict[str, float]:
    """Median and spread of single-image invoke() times, after a warm-up."""
    _load(interpreter, image)
    return _summary([_timed_invoke(interpreter) for _ in range(runs)])


def paired_latency_ms(
    interpreter: Interpreter, reference: Interpreter, image: np.ndarray, reference_image: np.ndarray, runs: int
) -> dict[str, dict[str, float]]:
    """Latency of `interpreter` and of `reference`, invoked alternately in one process, and the per-pair speed-up.

    Timings taken minutes apart in separate processes differ by the machine's drift (1.4x was seen on one box);
    alternating the two models exposes both to the same load, so their ratio is what the model changes.
    """
    _load(interpreter, image)
    _load(reference, reference_image)
    own, other = [], []
    for run in range(runs):
        if run % 2:  # alternate which goes first: neither always runs on a warmer cache
            own.append(_timed_invoke(interpreter))
            other.append(_timed_invoke(reference))
        else:
            other.append(_timed_invoke(reference))
            own.append(_timed_invoke(interpreter))
    return {
        "latency_ms": _summary(own),
        "reference_latency_ms": _summary(other),
        "speedup": _summary([r / o for r, o in zip(other, own, strict=True)]),
    }


def reference_interpreter(path: Model) -> Interpreter:
    """LiteRT with its reference kernels: the plain arithmetic TFLite Micro's reference kernels also follow."""
    interpreter = Interpreter(model_content=model_bytes(path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interpreter.allocate_tensors()
    return interpreter


def io_types(path: Model) -> tuple[str, str]:
    """The input and output dtypes of a `.tflite` (e.g. ('int8', 'int8') for full-integer models)."""
    interpreter = Interpreter(model_content=model_bytes(path))
    return interpreter.get_input_details()[0]["dtype"].__name__, interpreter.get_output_details()[0]["dtype"].__name__


def tflite_weight_sparsity(path: Model) -> float:
    """Fraction of zeros in the constant tensors of rank >= 2 (the conv and dense kernels) of a `.tflite`.

    One denominator for every variant: all conv, depthwise and dense kernels in the file.

    Before `allocate_tensors()` only constant tensors hold data; reading an activation raises, which
    is how they are told apart.
    """
    interpreter = Interpreter(model_content=model_bytes(path))
    zeros = total = 0
    for detail in interpreter.get_tensor_details():
        if len(detail["shape"]) < 2:
            continue
        try:
            values = interpreter.get_tensor(detail["index"])
        except ValueError:
            continue
        zeros += int((values == 0).sum())
        total += values.size
    return zeros / total if total else 0.0


MAC_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def multiply_accumulates(path: Model) -> int:
    """Multiply-accumulates of one inference, counted from the file: for each conv, depthwise and dense op, its
    output positions (output elements over output channels) times its weight tensor's elements."""
    interpreter = Interpreter(model_content=model_bytes(path))
    shapes = {detail["index"]: detail["shape"] for detail in interpreter.get_tensor_details()}
    total = 0
    for op in interpreter._get_ops_details():  # noqa: SLF001 (the only way LiteRT lists a graph's ops)
        if op["op_name"] in MAC_OPS:
            output = shapes[op["outputs"][0]]
            total += int(np.prod(output[:-1])) * int(np.prod(shapes[op["inputs"][1]]))
    return total


def input_size(interpreter: Interpreter) -> int:
    """The square input resolution a model expects."""
    return int(interpreter.get_input_details()[0]["shape"][1])


def input_bytes(interpreter: Interpreter) -> int:
    """One input image as a board holds it: height x width x channels bytes (8-bit pixels)."""
    return int(np.prod(interpreter.get_input_details()[0]["shape"][1:]))
