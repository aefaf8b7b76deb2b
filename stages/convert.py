"""Stage `convert-*`: one Keras model to one TFLite format, with its raw and compressed size and conversion time."""

from __future__ import annotations

import argparse
import time

from stages.lib import conversion, data, litert, paths
from stages.lib import model as model_lib
from stages.lib import params as params_lib
from stages.lib.io import UserError, run_stage, write_bytes, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="baseline or pruned/<sparsity>")
    parser.add_argument("--format", required=True, help="float32, float16, dynamic, int8, or <format>_sparse")
    args = parser.parse_args()
    params = params_lib.load()
    fmt, sparse = args.format.removesuffix("_sparse"), args.format.endswith("_sparse")
    if fmt not in params_lib.FORMATS:
        raise UserError(
            f"--format {args.format}: expected one of {', '.join(params_lib.FORMATS)} (optionally with _sparse)"
        )
    model, _ = model_lib.load(paths.keras_folder(args.model))
    representative = None
    if fmt == "int8":
        images, _ = data.load_split(paths.PREPARED, "train")  # calibration never sees validation or test images
        representative = data.representative_images(images, params["convert"]["representative_samples"], params["seed"])
    started = time.perf_counter()
    flatbuffer = conversion.convert(model, fmt, representative, sparse=sparse)
    seconds = time.perf_counter() - started
    write_bytes(paths.tflite_path(args.model, args.format), flatbuffer)
    write_json(
        paths.convert_metrics_path(args.model, args.format),
        {
            "size_bytes": len(flatbuffer),
            "compressed_bytes": litert.compressed_size(flatbuffer),
            "convert_seconds": round(seconds, 2),
            "representative_samples": 0 if representative is None else len(representative),
        },
    )
    print(f"convert: {paths.variant_name(args.model, args.format)} {len(flatbuffer):,} bytes in {seconds:.1f} s")


if __name__ == "__main__":
    run_stage(main)
