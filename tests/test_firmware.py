"""The firmware contract on the host: every generated file compiles with -Wall -Werror, and the reference C++ runner,
driven through ctypes with TFLite Micro (the `tflite-micro` runtime) running each part, gives the pipeline's own
answers (`patching.predict` on TFLM) bit for bit on 100 real images, for a whole-image model and a patch deployment,
each with two classes (a sigmoid and its threshold) and with three (a softmax and its argmax)."""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, copy_model
from stages import firmware
from stages.lib.compress import clustering, patch_models
from stages.lib.core import data, scores
from stages.lib.core import params as params_lib
from stages.lib.firmware import contract
from stages.lib.keras import conversion
from stages.lib.runtime import litert, patching, tflm

CXX = shutil.which("g++") or shutil.which("c++")
FLAGS = ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-O1", "-fPIC"]
pytestmark = pytest.mark.skipif(CXX is None, reason="no C++ compiler (.ci/run installs g++)")
PARAMS = params_lib.load(ROOT / "params.yaml")
# What the header takes: the class names (`prepare`'s, label order) and the arena margin.
CLASSES = {2: ["functional", "defective"], 3: ["clean", "cracked", "unsure"]}
MARGIN = PARAMS.firmware.arena_margin

# Exposes the generated plan and the runner to ctypes, and registers the operators on a resolver that records them.
HARNESS = r"""
#include <cstring>
#include "edge_model.h"

struct Recorder {
  char names[2048] = {0};
  int Add(const char* name) { std::strcat(names, name); std::strcat(names, " "); return 0; }
%METHODS%
};

extern "C" {
const edge::Plan* board_plan() { return &edge_model_plan; }
const unsigned char* board_data() { return edge_model_data; }
unsigned board_data_len() { return edge_model_data_len; }
unsigned board_part_offset(int part) { return edge_model_part_offsets[part]; }
size_t board_buffer_bytes() { return edge_model_buffer_bytes; }
int board_threshold_int8() { return edge_model_threshold_int8; }
double board_threshold() { return edge_model_threshold; }
int board_operators(char* out) {
  Recorder recorder;
  const bool ok = edge_model_register_operators(recorder);
  std::strcpy(out, recorder.names);
  return ok ? edge_model_operator_count : -1;
}
int board_output_count() { return edge_model_output_count; }
int board_run(const uint8_t* image, int8_t* buffer, size_t buffer_bytes, const edge::PartRunner* runner, float* p,
              int* class_index) {
  return edge::Run(edge_model_plan, image, buffer, buffer_bytes, *runner, p, class_index);
}
}
"""
BEGIN = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_size_t))
INVOKE = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_size_t))


class PartRunner(ctypes.Structure):
    _fields_ = [("context", ctypes.c_void_p), ("begin", BEGIN), ("invoke", INVOKE)]


def compile_board(folder: Path, build: Path) -> ctypes.CDLL:
    """The board's generated files and the runner, with the harness, as a shared library (every file -Werror)."""
    header = (folder / "edge_model.h").read_text()
    methods = sorted(set(re.findall(r"resolver\.(\w+)\(\)", header)))
    harness = HARNESS.replace("%METHODS%", "\n".join(f'  int {m}() {{ return Add("{m}"); }}' for m in methods))
    if "edge_model_threshold =" not in header:  # more than two classes: the argmax, no threshold
        harness = "\n".join(line for line in harness.splitlines() if "board_threshold" not in line)
    (folder / "harness.cc").write_text(harness)
    sources = [folder / name for name in ("harness.cc", "edge_model_data.cc", "edge_model_run.cc")]
    library = build / f"{folder.name}.so"
    subprocess.run([CXX, *FLAGS, "-shared", "-o", library, *sources], check=True, capture_output=True, text=True)
    return ctypes.CDLL(str(library))


def run_on_tflm(library: ctypes.CDLL, images: np.ndarray, arena_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """The probabilities (P(class 1), or N x K) and the class index per image from the C++ runner, each part invoked
    on TFLite Micro's interpreter."""
    from tflite_micro.python.tflite_micro import runtime

    library.board_plan.restype = ctypes.c_void_p
    library.board_data.restype = ctypes.POINTER(ctypes.c_ubyte)
    library.board_buffer_bytes.restype = ctypes.c_size_t
    blob = ctypes.string_at(library.board_data(), library.board_data_len())
    interpreters, inputs, outputs = {}, {}, {}

    def begin(_context, part, size):
        if part not in interpreters:
            model = blob[library.board_part_offset(part) :]
            interpreters[part] = runtime.Interpreter.from_bytes(model, arena_size=arena_bytes)
        shape = interpreters[part].get_input_details(0)["shape"]
        inputs[part] = np.zeros(shape, dtype=np.int8)
        size[0] = inputs[part].size
        return inputs[part].ctypes.data

    def invoke(_context, part, size):
        interpreters[part].set_input(inputs[part], 0)
        interpreters[part].invoke()
        outputs[part] = np.ascontiguousarray(interpreters[part].get_output(0), dtype=np.int8)
        size[0] = outputs[part].size
        return outputs[part].ctypes.data

    runner = PartRunner(None, BEGIN(begin), INVOKE(invoke))
    buffer = np.zeros(max(1, library.board_buffer_bytes()), dtype=np.int8)
    outputs_per_image = library.board_output_count()
    probabilities = np.empty((len(images), outputs_per_image), dtype=np.float32)
    classes = np.empty(len(images), dtype=np.int64)
    probability, class_index = (ctypes.c_float * outputs_per_image)(), ctypes.c_int(-1)
    for index, image in enumerate(images):
        image = np.ascontiguousarray(image, dtype=np.uint8)
        status = library.board_run(
            image.ctypes.data_as(ctypes.c_void_p),
            buffer.ctypes.data_as(ctypes.c_void_p),
            ctypes.c_size_t(library.board_buffer_bytes()),
            ctypes.byref(runner),
            probability,
            ctypes.byref(class_index),
        )
        assert status == 0, f"edge::Run returned {status}"
        probabilities[index], classes[index] = probability[:], class_index.value
    return (probabilities[:, 0] if outputs_per_image == 1 else probabilities), classes


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """100 real solar-cell images at 32 px, 3 channels, uint8: what the board's preprocessing produces."""
    cells, labels, _ = data.load_elpv("functional_vs_defective")
    keep = data.cap_per_class(labels, 50, seed=1)
    return np.stack([np.repeat(data.resize(cells[i], 32), 3, axis=-1) for i in keep])


@pytest.fixture(scope="module")
def three_class_classifier(images):
    """The short classifier with a softmax over three classes whose output layer is centred on these images'
    features (an untrained head answers one class for every image; centred, the images differ in their class)."""
    import tf_keras as keras

    from stages.lib.keras import model

    model.seed_everything(1)
    net = model.build_classifier(32, "efficientnet_lite0", "bundled", 32, 0.1, stop_after_block=3, classes=3)
    features = keras.Model(net.input, net.get_layer("head_dropout").output).predict(images.astype(np.float32))
    output = net.get_layer("head_output")
    kernel = np.random.default_rng(1).normal(0.0, 1.0, output.kernel.shape).astype(np.float32)
    kernel /= features.std(axis=0).mean() + 1e-6
    output.set_weights([kernel, -(features.mean(axis=0) @ kernel)])
    return net


@pytest.fixture(scope="module")
def boards(short_classifier, three_class_classifier, images, tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """The contract of a whole-image int8 model and of a 2x2 patch deployment of blocks 0-1, as `firmware` writes,
    for two classes (`whole`, `patches`) and for three (`whole3`, `patches3`)."""
    made = {}
    for suffix, classifier in (("", short_classifier), ("3", three_class_classifier)):
        made |= {f"{kind}{suffix}": board for kind, board in _boards(classifier, images, tmp_path_factory).items()}
    return made


def _boards(classifier, images: np.ndarray, tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    calibration = images[:16].astype(np.float32)
    root = tmp_path_factory.mktemp("firmware")
    whole = conversion.convert(classifier, "int8", calibration)
    classes = CLASSES[2 if classifier.output_shape[-1] == 1 else classifier.output_shape[-1]]
    deployment = root / "deployment"
    deployment.mkdir()
    # Clustered as a student is, so the board's parts hold look-up-table kernels and DECODE operators.
    clustered = copy_model(classifier)
    assert clustering.cluster_channels(clustered, 8, 0) > 0
    patch_models.convert_deployment(clustered, 1, 2, calibration, deployment, 64)
    arenas = [tflm.minimum_arena(model) for _, model in patching.parts(deployment, device=True)]
    made = {}
    for name, blob, board_plan, arena in (
        ("whole", whole, None, tflm.minimum_arena(whole)),
        ("patches", *patching.device_blob(deployment), max(arenas)),
    ):
        row = {
            "threshold": 0.4 if len(classes) == 2 else None,
            "tflm_arena_bytes": arena,
            "ram_bytes": arena,
            "deployment": {"part_arena_bytes": arenas},
        }
        folder = root / name
        folder.mkdir()
        firmware.write_contract(folder, f"test board: {name}", blob, board_plan, {"arena": arena}, row, classes, MARGIN)
        made[name] = (folder, {"arena": arena, "model": whole, "deployment": deployment})
    return made


@pytest.mark.parametrize("kind", ["whole", "patches", "whole3", "patches3"])
def test_runner_reproduces_the_pipelines_tflm_answers_bit_for_bit(boards, images, kind, tmp_path):
    folder, made = boards[kind]
    library = compile_board(folder, tmp_path)
    answers, classes = run_on_tflm(library, images, made["arena"] * 2)
    if kind.startswith("whole"):
        expected = tflm.micro_predict(made["model"], images, made["arena"], workers=1)
    else:
        runner = lambda _, model: tflm._micro_runner(model, made["arena"] * 2)  # noqa: E731
        expected = patching.predict(made["deployment"], images, runner, "", device=True)
    assert len(images) >= 100
    np.testing.assert_array_equal(answers, expected)
    if kind.endswith("3"):  # the class is the pipeline's argmax, and the model's answers are not all one class
        np.testing.assert_array_equal(classes, scores.decide(expected, None))
        assert expected.shape == (len(images), 3) and len(np.unique(classes)) > 1
        return
    library.board_threshold.restype = ctypes.c_double
    np.testing.assert_array_equal(classes, scores.decide(expected, library.board_threshold()))
    # The int8 threshold takes the same decisions as the probability threshold.
    threshold, threshold_int8 = library.board_threshold(), library.board_threshold_int8()
    header = (folder / "edge_model.h").read_text()
    output_quant = re.findall(r"edge_model_output_quant\[\d+\] = \{(.*)\};", header)[0].split("}, {")[-1]
    scale, zero_point = (float(v.strip(" {}f")) for v in output_quant.split(","))
    outputs = np.arange(-128, 128)
    probabilities = (outputs.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)
    np.testing.assert_array_equal(probabilities >= threshold, outputs >= threshold_int8)


@pytest.mark.parametrize("kind", ["whole", "patches"])
def test_operator_registration_lists_every_operator_of_every_part(boards, kind, tmp_path):
    folder, made = boards[kind]
    library = compile_board(folder, tmp_path)
    names = ctypes.create_string_buffer(2048)
    count = library.board_operators(names)
    registered = set(names.value.decode().split())
    models = [made["model"]] if kind == "whole" else [model for _, model in patching.parts(made["deployment"])]
    expected = set()
    for model in models:  # LiteRT's own reading of the operators, not the contract's
        interpreter = litert.reference_interpreter(model)
        expected |= {contract.resolver_method(op["op_name"]) for op in interpreter._get_ops_details()}
    if kind == "patches":
        # The board's parts decompress their clustered kernels: TFLM's DECODE, which LiteRT does not know.
        assert patching.read_plan(made["deployment"])["lut"]["kernels"] > 0
        expected.add("AddDecode")
        assert "AddPad" in registered  # the patches pad their borders inside the model
    assert count == len(registered) and registered == expected


def test_header_carries_the_whole_contract(boards):
    folder, made = boards["patches"]
    header = (folder / "edge_model.h").read_text()
    _, plan = patching.device_blob(made["deployment"])
    offsets = ", ".join(str(part["offset"]) for part in [*plan["patches"], plan["tail"]])
    assert f"edge_model_part_offsets[5] = {{{offsets}}};" in header
    first = ", ".join(str(v) for v in plan["patches"][0]["input_region"])
    assert "edge_model_input_regions[4] = {\n  {" + first + "}" in header
    margin = PARAMS.firmware.arena_margin
    arena = made["arena"]
    assert f"edge_model_arena_bytes_measured = {arena};" in header
    assert f"edge_model_arena_bytes = {arena + int(-(-arena * margin // 16) * 16)};" in header
    assert "edge_model_threshold = 0.4;" in header and "bilinear" in header
    assert sorted(p.name for p in folder.iterdir() if p.name != "harness.cc") == sorted(
        ["edge_model.h", "edge_model_data.cc", *contract.RUNNER_FILES]
    )


def test_a_three_class_header_names_its_classes_and_decides_by_the_argmax(boards):
    header = (boards["patches3"][0] / "edge_model.h").read_text()
    assert 'edge_model_class_names[3] = {"clean", "cracked", "unsure"};' in header
    assert "edge_model_output_count = 3;" in header and "threshold" not in header.split("// Parts:")[0]
    binary = (boards["patches"][0] / "edge_model.h").read_text()
    assert "edge_model_output_count = 1;" in binary and "Output: P(defective)" in binary


def test_a_class_name_becomes_a_valid_c_string_whatever_it_holds():
    assert contract.c_string('a"b\\c?é') == '"a\\042b\\134c\\077\\303\\251"'


def test_quantize_rounds_half_to_even_and_saturates_as_the_pipeline_does(boards, tmp_path):
    folder, _ = boards["whole"]
    source = tmp_path / "quantize.cc"
    source.write_text(
        '#include "edge_model_run.h"\nextern "C" int quantize(float v, float s, int z) { return edge::Quantize(v, '
        "{s, z}); }\n"
    )
    library = tmp_path / "quantize.so"
    runner = folder / "edge_model_run.cc"
    subprocess.run([CXX, *FLAGS, "-shared", "-I", folder, "-o", library, source, runner], check=True)
    quantize = ctypes.CDLL(str(library)).quantize
    quantize.argtypes = [ctypes.c_float, ctypes.c_float, ctypes.c_int]
    values = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 300.0, -300.0, 127.4, 12.49], dtype=np.float32)
    values = np.concatenate([values, np.random.default_rng(0).uniform(-50, 50, 200).astype(np.float32)])
    for scale, zero_point in ((1.0, 0), (0.9999968, -128), (0.0731, 3)):
        detail = {"dtype": np.int8, "quantization": (scale, zero_point)}
        expected = litert.quantize_input(values, detail)
        got = np.array([quantize(float(v), np.float32(scale), zero_point) for v in values], dtype=np.int8)
        np.testing.assert_array_equal(got, expected)


def test_a_board_given_the_compressed_deploy_model_gets_its_bytes_and_the_build_note(boards, tmp_path, monkeypatch):
    _, made = boards["whole"]
    stored = tmp_path / "repo"
    (stored / "models/micro").mkdir(parents=True)
    (stored / "models/micro/int8_lut.tflite").write_bytes(made["model"])  # stands in for micro's compressed file
    monkeypatch.chdir(stored)
    shutil.copytree(ROOT / "firmware", stored / "firmware")
    lut = {"size_bytes": len(made["model"])}
    row = {"model": "deploy", "format": "int8", "threshold": 0.5, "lut": lut}
    row |= {"tflm_arena_bytes": made["arena"], "ram_bytes": made["arena"] + 32 * 32 * 3}
    folder = stored / "board"
    folder.mkdir()
    firmware.write_board(folder, "test board", "deploy_int8", row, CLASSES[2], MARGIN)
    assert "USE_TFLM_COMPRESSION" in (folder / "README.txt").read_text()
    source = (folder / "edge_model_data.cc").read_text()
    assert f"edge_model_data_len = {len(made['model'])};" in source


ARM = shutil.which("arm-none-eabi-g++")
M4_FLAGS = ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-Os", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard"]
M4_FLAGS += ["-mfpu=fpv4-sp-d16", "-fno-exceptions", "-fno-rtti", "-ffunction-sections", "-fdata-sections"]


@pytest.mark.skipif(ARM is None, reason="no arm-none-eabi-g++ (.ci/run installs Debian's gcc-arm-none-eabi)")
def test_runner_cross_compiles_for_a_cortex_m4_at_the_code_size_the_guide_states(tmp_path):
    """The runner builds for a Cortex-M4 with hardware float, no exceptions and no heap, and links into a program
    (newlib, no OS); docs/firmware.md states its code size, which this measures."""
    runner = ROOT / "firmware/edge_model_run.cc"
    objects = tmp_path / "edge_model_run.o"
    subprocess.run([ARM, *M4_FLAGS, "-c", runner, "-o", objects], check=True, capture_output=True, text=True)
    size = subprocess.run(["arm-none-eabi-size", objects], check=True, capture_output=True, text=True).stdout
    text, data, bss = (int(v) for v in size.splitlines()[1].split()[:3])
    assert data == bss == 0  # no static state: the caller owns every buffer
    main = tmp_path / "main.cc"
    main.write_text(
        '#include "edge_model_run.h"\n'
        "static int8_t input[12], output[1];\n"
        "static int8_t* Begin(void*, int, size_t* n) { *n = sizeof input; return input; }\n"
        "static const int8_t* Invoke(void*, int, size_t* n) { *n = 1; return output; }\n"
        'extern "C" int main() {\n'
        "  static const edge::Quant quant[1] = {{1.0f, 0}};\n"
        "  static const edge::Plan plan = {2, 2, 3, 0, nullptr, nullptr, 0, 0, 0, quant, quant, 1, 0};\n"
        "  static const uint8_t image[12] = {0};\n"
        "  float probability = 0;\n"
        "  int class_index = 0;\n"
        "  const edge::PartRunner runner{nullptr, Begin, Invoke};\n"
        "  return edge::Run(plan, image, nullptr, 0, runner, &probability, &class_index);\n"
        "}\n"
    )
    program = tmp_path / "m4.elf"
    link = [ARM, *M4_FLAGS, "-Wl,--gc-sections", "--specs=nosys.specs", "-I", runner.parent, main, runner]
    subprocess.run([*link, "-o", program], check=True, capture_output=True, text=True)
    guide = (ROOT / "docs/firmware.md").read_text()
    assert f"{text:,} bytes of Cortex-M4 code" in guide, f"docs/firmware.md should state {text:,} bytes"


# A valid two-patch plan on a 4 x 4 x 3 image, then one change per case that the runner must refuse before it reads
# or writes a byte. Image and buffer are heap blocks of exactly their size, so AddressSanitizer sees any stray access.
MALFORMED_PLANS = {
    "valid": "",
    "input region past the image": "in[1].row_end = 5;",
    "input region with a negative start": "in[0].col_begin = -1;",
    "output region past the buffer": "out[1].col_end = 3;",
    "negative buffer dimensions": "plan.buffer_rows = -4; plan.buffer_cols = -4;",
    "overflowing image size": "plan.image_rows = 1 << 30; plan.image_cols = 1 << 30;",
    "zero channels": "plan.channels = 0;",
    "patch count -1": "plan.patch_count = -1;",
    "patch count past the maximum": "plan.patch_count = edge::kMaxPatches + 1;",
    "reversed region": "in[0].row_begin = 3; in[0].row_end = 1;",
    "empty region": "out[0].col_end = out[0].col_begin;",
    "zero scale": "iq[2].scale = 0.0f;",
    "negative scale": "oq[0].scale = -1.0f;",
    "infinite scale": "iq[0].scale = std::numeric_limits<float>::infinity();",
    "NaN scale": "oq[2].scale = std::numeric_limits<float>::quiet_NaN();",
    "zero point outside int8": "iq[1].zero_point = 300;",
    "no regions": "plan.input_regions = nullptr;",
    "no outputs": "plan.output_count = 0;",
    "more outputs than classes allowed": "plan.output_count = edge::kMaxClasses + 1;",
    "int8 threshold past 128": "plan.threshold_int8 = 129;",
}
SANITIZED = r"""
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>
#include "edge_model_run.h"

static std::vector<int8_t> part_input, part_output;
static int8_t* Begin(void*, int part, size_t* n) {
  part_input.assign(part < 2 ? 2 * 4 * 3 : 2 * 2 * 2, 0); *n = part_input.size(); return part_input.data();
}
static const int8_t* Invoke(void*, int part, size_t* n) {
  part_output.assign(part < 2 ? 2 * 1 * 2 : 1, 7); *n = part_output.size(); return part_output.data();
}

int main(int, char** argv) {
  edge::Region in[2] = {{0, 2, 0, 4}, {2, 4, 0, 4}};    // rows 0-1 and 2-3 of the image
  edge::Region out[2] = {{0, 1, 0, 2}, {1, 2, 0, 2}};   // rows 0 and 1 of a 2 x 2 x 2 block output
  edge::Quant iq[3] = {{1.0f, -128}, {1.0f, -128}, {0.5f, 0}}, oq[3] = {{0.25f, 1}, {0.25f, 1}, {0.00390625f, -128}};
  edge::Plan plan = {4, 4, 3, 2, in, out, 2, 2, 2, iq, oq, 1, 8};
  switch (std::atoi(argv[1])) {
%CASES%
  }
  std::vector<uint8_t> image(4 * 4 * 3, 200);
  std::vector<int8_t> buffer(8);
  float probability = -1.0f;
  int class_index = -1;
  const edge::PartRunner runner{nullptr, Begin, Invoke};
  const int status = edge::Run(plan, image.data(), buffer.data(), buffer.size(), runner, &probability, &class_index);
  std::printf("%d %d %zu %g %d\n", status, edge::Validate(plan), edge::BufferBytes(plan), probability, class_index);
  return 0;
}
"""


@pytest.fixture(scope="module")
def sanitized_runner(tmp_path_factory) -> Path:
    """The runner and a driver that applies one case of MALFORMED_PLANS (its index in argv[1]), compiled once with
    AddressSanitizer and UndefinedBehaviorSanitizer; image and buffer are heap blocks of exactly their size."""
    folder = tmp_path_factory.mktemp("sanitized")
    cases = "\n".join(f"    case {i}: {{ {change} }} break;" for i, change in enumerate(MALFORMED_PLANS.values()))
    (folder / "plans.cc").write_text(SANITIZED.replace("%CASES%", cases))
    sanitize = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"]
    runner = ROOT / "firmware/edge_model_run.cc"
    flags = [flag for flag in FLAGS if flag != "-fPIC"]
    program = folder / "plans"
    subprocess.run(
        [CXX, *flags, *sanitize, "-I", runner.parent, folder / "plans.cc", runner, "-o", program], check=True
    )
    return program


@pytest.mark.parametrize("case", list(MALFORMED_PLANS))
def test_runner_refuses_every_malformed_plan_under_address_and_undefined_behaviour_sanitizers(case, sanitized_runner):
    index = str(list(MALFORMED_PLANS).index(case))
    result = subprocess.run([sanitized_runner, index], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr  # a sanitizer report exits non-zero
    status, validated, buffer_bytes, probability, class_index = result.stdout.split()
    if case == "valid":
        assert (int(status), int(validated), int(buffer_bytes)) == (0, 0, 8)
        assert float(probability) == pytest.approx((7 + 128) * 0.00390625)  # the tail's output, dequantized
        assert int(class_index) == 0  # 7 < threshold_int8 8
    else:
        assert int(status) == int(validated) == -4  # kInvalidPlan
        assert (int(buffer_bytes), float(probability), int(class_index)) == (0, -1.0, -1)  # nothing was written
