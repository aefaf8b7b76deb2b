"""Stage `firmware`: for every board, the model the report recommends as C source (a 16-byte-aligned array, its
length and its measured TFLite Micro arena), ready to compile into a TFLite Micro application."""

from __future__ import annotations

from stages.lib import c_array, paths
from stages.lib.io import atomic_path, read_json, run_stage, write_json


def main() -> None:
    summary = read_json(paths.SUMMARY)
    chosen = {}
    with atomic_path(paths.FIRMWARE) as folder:
        folder.mkdir()
        for board, choice in summary["recommendation"].items():
            chosen[board] = choice["variant"]
            if choice["variant"] is None:
                continue
            row = summary["variants"][choice["variant"]]
            model = paths.tflite_path(row["model"], row["format"]).read_bytes()
            source, header = c_array.c_array(model, paths.C_ARRAY_NAME, row["tflm_arena_bytes"])
            (folder / board).mkdir()
            (folder / board / f"{paths.C_ARRAY_NAME}.cc").write_text(source)
            (folder / board / f"{paths.C_ARRAY_NAME}.h").write_text(header)
        write_json(folder / "boards.json", chosen)
    print("firmware: " + "; ".join(f"{board}: {variant}" for board, variant in chosen.items()))


if __name__ == "__main__":
    run_stage(main)
