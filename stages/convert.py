"""Stage `convert-*`: one Keras model to every TFLite format in params, with raw and compressed sizes and times.

One process per model: TensorFlow's import and the model load are paid once, not once per format. A sparse file
re-encodes its dense file (no second conversion), and gzip runs in a thread beside the next conversion.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

from stages.lib.core import data, paths
from stages.lib.core import params as params_lib
from stages.lib.core.io import UserError, atomic_path, run_stage, write_json
from stages.lib.keras import conversion
from stages.lib.keras import model as model_lib
from stages.lib.runtime import litert


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="baseline or pruned/<sparsity>")
    model_name = parser.parse_args().model
    if model_name != "baseline" and not model_name.startswith("pruned/"):
        raise UserError(f"--model {model_name}: expected baseline or pruned/<sparsity>")
    params = params_lib.load()
    model, _ = model_lib.load(paths.keras_folder(model_name))
    names = paths.converted_formats(params.convert, model_name)
    representative = None
    if any(name.removesuffix("_sparse") == "int8" for name in names):
        images, _ = data.load_split(paths.PREPARED, "train")  # calibration never sees validation or test images
        samples = params.convert.representative_samples
        representative = data.representative_images(images, samples, params.seed)
    results, converted, compressed = {}, {}, {}
    with atomic_path(paths.tflite_folder(model_name)) as folder, ThreadPoolExecutor(1) as gzip:
        folder.mkdir(parents=True)
        for name in names:
            fmt, sparse = name.removesuffix("_sparse"), name.endswith("_sparse")
            calibration = representative if fmt == "int8" else None
            started = time.perf_counter()
            dense = converted.get(fmt) or conversion.convert(model, fmt, calibration)
            flatbuffer = conversion.sparsify(dense) if sparse else dense
            seconds = time.perf_counter() - started
            converted.setdefault(fmt, dense)
            (folder / f"{name}.tflite").write_bytes(flatbuffer)
            compressed[name] = gzip.submit(litert.compressed_size, flatbuffer)
            results[name] = {
                "size_bytes": len(flatbuffer),
                "convert_seconds": round(seconds, 2),
                "representative_samples": 0 if calibration is None else len(calibration),
            }
            print(f"convert: {paths.variant_name(model_name, name)} {len(flatbuffer):,} bytes in {seconds:.1f} s")
        for name, size in compressed.items():
            results[name]["compressed_bytes"] = size.result()
    write_json(paths.convert_metrics_path(model_name), results)


if __name__ == "__main__":
    run_stage(main)
