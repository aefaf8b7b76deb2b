// edge-opt's reference runner: executes any plan the pipeline emits (one whole-image model, or patch models then a
// tail) on one uint8 image and returns the class and the probabilities, exactly as the report measured them. Plain C++17, no dynamic
// allocation, no TFLite Micro dependency: the caller supplies a PartRunner that runs part i on its interpreter
// (see tflm_adapter.cc for the TFLite Micro calls).
#pragma once

#include <cstddef>
#include <cstdint>

namespace edge {

// An int8 tensor's affine quantization: real = (q - zero_point) * scale.
struct Quant {
  float scale;
  int32_t zero_point;
};

// A rectangle of rows [row_begin, row_end) and columns [col_begin, col_end).
struct Region {
  int row_begin, row_end, col_begin, col_end;
};

// What the generated edge_model.h describes. Parts are numbered patches first (in run order), then the tail; a
// whole-image model is one part and no patches.
struct Plan {
  int image_rows, image_cols, channels;  // the uint8 input image, HWC
  int patch_count;                       // 0: part 0 is the whole model
  const Region* input_regions;           // per patch: the image region it reads (halo included)
  const Region* output_regions;          // per patch: the block-output region it writes
  int buffer_rows, buffer_cols, buffer_channels;  // the assembled block output (int8, in the tail's quantization)
  const Quant* input_quant;              // per part: its input tensor's quantization
  const Quant* output_quant;             // per part: its output tensor's quantization
  int output_count;    // the final output's values: 1 (P(class 1) of a two-class model) or one per class (softmax)
  int threshold_int8;  // output_count 1: class 1 when the int8 output >= this (128: never); unused otherwise
};

// Runs the parts on whatever interpreter the application has. `begin` prepares part i (e.g. builds its
// interpreter in the shared arena) and returns its int8 input tensor, or nullptr on failure; `invoke` runs part i
// on what was written there and returns its int8 output tensor, or nullptr on failure. Sizes are in bytes.
struct PartRunner {
  void* context;
  int8_t* (*begin)(void* context, int part, size_t* input_bytes);
  const int8_t* (*invoke)(void* context, int part, size_t* output_bytes);
};

enum Status : int {
  kOk = 0,
  kBufferTooSmall = -1,  // `buffer_bytes` < BufferBytes(plan)
  kPartFailed = -2,      // begin or invoke returned nullptr
  kShapeMismatch = -3,   // a part's tensor does not have the plan's size
  kInvalidPlan = -4,     // Validate(plan) refused it: nothing was read or written
};

// The most patches a plan may have (the pipeline's plans have at most 9).
constexpr int kMaxPatches = 64;
// The largest image or block-output buffer a plan may describe, in bytes.
constexpr long long kMaxPlanBytes = 1LL << 30;
// The most classes a plan may have.
constexpr int kMaxClasses = 1024;

// float -> int8 in `q`: round half to even, saturate (what the pipeline's quantize_input does).
int8_t Quantize(float value, Quant q);
// int8 -> float in `q`.
float Dequantize(int8_t value, Quant q);

// kOk when every number of the plan is usable: positive image and buffer sizes within kMaxPlanBytes, 0 <= patch_count
// <= kMaxPatches, every region non-empty and inside the image (input) or the buffer (output), every scale positive and
// finite, every zero point an int8, 1 <= output_count <= kMaxClasses, -128 <= threshold_int8 <= 128. Otherwise
// kInvalidPlan. Run calls it before it reads or writes a byte.
Status Validate(const Plan& plan);

// RAM the runner itself needs beside the arena and the image: the assembled block output (0 for a whole model, and
// for a plan that Validate refuses).
size_t BufferBytes(const Plan& plan);

// One image (HWC uint8, plan.image_rows x image_cols x channels): its class in `class_index` and the final output
// dequantized in `probabilities` (plan.output_count values: P(class 1) for a two-class model, whose class is
// output >= threshold_int8; else each class's probability, and the class is the first largest int8 output).
// `buffer` holds BufferBytes(plan). Nothing is written to `probabilities` or `class_index` unless it returns kOk.
Status Run(const Plan& plan, const uint8_t* image, int8_t* buffer, size_t buffer_bytes, const PartRunner& runner,
           float* probabilities, int* class_index);

}  // namespace edge
