// edge-opt's reference runner (see edge_model_run.h).
#include "edge_model_run.h"

#include <cmath>

namespace edge {

int8_t Quantize(float value, Quant q) {
  // value / scale + zero_point in float, rounded half to even (the default rounding mode), as numpy's round does.
  const float scaled = std::nearbyint(value / q.scale + static_cast<float>(q.zero_point));
  if (scaled < -128.0f) return -128;
  if (scaled > 127.0f) return 127;
  return static_cast<int8_t>(scaled);
}

float Dequantize(int8_t value, Quant q) {
  return (static_cast<float>(value) - static_cast<float>(q.zero_point)) * q.scale;
}

namespace {

// rows x cols x channels, each positive and the product within kMaxPlanBytes (checked without overflow).
bool SizeOk(int rows, int cols, int channels) {
  if (rows <= 0 || cols <= 0 || channels <= 0) return false;
  return static_cast<long long>(rows) * cols <= kMaxPlanBytes / channels;
}

// A non-empty region inside rows x cols.
bool RegionOk(const Region& region, int rows, int cols) {
  return region.row_begin >= 0 && region.row_begin < region.row_end && region.row_end <= rows &&
         region.col_begin >= 0 && region.col_begin < region.col_end && region.col_end <= cols;
}

bool QuantOk(const Quant& quant) {
  return std::isfinite(quant.scale) && quant.scale > 0.0f && quant.zero_point >= -128 && quant.zero_point <= 127;
}

}  // namespace

Status Validate(const Plan& plan) {
  if (!SizeOk(plan.image_rows, plan.image_cols, plan.channels)) return kInvalidPlan;
  if (plan.patch_count < 0 || plan.patch_count > kMaxPatches) return kInvalidPlan;
  if (plan.output_count < 1 || plan.output_count > kMaxClasses) return kInvalidPlan;
  if (plan.threshold_int8 < -128 || plan.threshold_int8 > 128) return kInvalidPlan;
  if (plan.input_quant == nullptr || plan.output_quant == nullptr) return kInvalidPlan;
  for (int part = 0; part <= plan.patch_count; ++part) {
    if (!QuantOk(plan.input_quant[part]) || !QuantOk(plan.output_quant[part])) return kInvalidPlan;
  }
  if (plan.patch_count == 0) return kOk;
  if (plan.input_regions == nullptr || plan.output_regions == nullptr) return kInvalidPlan;
  if (!SizeOk(plan.buffer_rows, plan.buffer_cols, plan.buffer_channels)) return kInvalidPlan;
  for (int patch = 0; patch < plan.patch_count; ++patch) {
    if (!RegionOk(plan.input_regions[patch], plan.image_rows, plan.image_cols)) return kInvalidPlan;
    if (!RegionOk(plan.output_regions[patch], plan.buffer_rows, plan.buffer_cols)) return kInvalidPlan;
  }
  return kOk;
}

namespace {

// The block-output buffer of a plan Validate accepted (0 for a whole model).
size_t ValidBufferBytes(const Plan& plan) {
  if (plan.patch_count == 0) return 0;
  return static_cast<size_t>(plan.buffer_rows) * plan.buffer_cols * plan.buffer_channels;
}

}  // namespace

size_t BufferBytes(const Plan& plan) { return Validate(plan) == kOk ? ValidBufferBytes(plan) : 0; }

namespace {

size_t RegionBytes(const Region& region, int channels) {
  return static_cast<size_t>(region.row_end - region.row_begin) * (region.col_end - region.col_begin) * channels;
}

// Cut `region` from the image into part `part`'s input tensor, in its quantization.
Status FillInput(const Plan& plan, const uint8_t* image, const Region& region, int part, const PartRunner& runner) {
  size_t input_bytes = 0;
  int8_t* input = runner.begin(runner.context, part, &input_bytes);
  if (input == nullptr) return kPartFailed;
  if (input_bytes != RegionBytes(region, plan.channels)) return kShapeMismatch;
  const Quant quant = plan.input_quant[part];
  for (int row = region.row_begin; row < region.row_end; ++row) {
    const uint8_t* pixel = image + (static_cast<size_t>(row) * plan.image_cols + region.col_begin) * plan.channels;
    const int count = (region.col_end - region.col_begin) * plan.channels;
    for (int i = 0; i < count; ++i) *input++ = Quantize(static_cast<float>(pixel[i]), quant);
  }
  return kOk;
}

}  // namespace

Status Run(const Plan& plan, const uint8_t* image, int8_t* buffer, size_t buffer_bytes, const PartRunner& runner,
           float* probabilities, int* class_index) {
  if (Validate(plan) != kOk) return kInvalidPlan;  // once: everything below may trust the plan
  const int tail = plan.patch_count;
  const size_t needed = ValidBufferBytes(plan);
  if (buffer_bytes < needed) return kBufferTooSmall;
  for (int patch = 0; patch < plan.patch_count; ++patch) {
    const Status filled = FillInput(plan, image, plan.input_regions[patch], patch, runner);
    if (filled != kOk) return filled;
    size_t output_bytes = 0;
    const int8_t* output = runner.invoke(runner.context, patch, &output_bytes);
    if (output == nullptr) return kPartFailed;
    const Region& region = plan.output_regions[patch];
    if (output_bytes != RegionBytes(region, plan.buffer_channels)) return kShapeMismatch;
    // Requantize the patch's output into the tail's input quantization, in place in the block-output buffer.
    const Quant from = plan.output_quant[patch], to = plan.input_quant[tail];
    const int count = (region.col_end - region.col_begin) * plan.buffer_channels;
    for (int row = region.row_begin; row < region.row_end; ++row) {
      int8_t* target = buffer + (static_cast<size_t>(row) * plan.buffer_cols + region.col_begin) * plan.buffer_channels;
      for (int i = 0; i < count; ++i) target[i] = Quantize(Dequantize(*output++, from), to);
    }
  }
  size_t input_bytes = 0;
  int8_t* input = runner.begin(runner.context, tail, &input_bytes);
  if (input == nullptr) return kPartFailed;
  if (plan.patch_count == 0) {
    const Region whole{0, plan.image_rows, 0, plan.image_cols};
    if (input_bytes != RegionBytes(whole, plan.channels)) return kShapeMismatch;
    const Quant quant = plan.input_quant[tail];
    for (size_t i = 0; i < input_bytes; ++i) input[i] = Quantize(static_cast<float>(image[i]), quant);
  } else {
    if (input_bytes != needed) return kShapeMismatch;
    for (size_t i = 0; i < input_bytes; ++i) input[i] = buffer[i];
  }
  size_t output_bytes = 0;
  const int8_t* output = runner.invoke(runner.context, tail, &output_bytes);
  if (output == nullptr) return kPartFailed;
  if (output_bytes != static_cast<size_t>(plan.output_count)) return kShapeMismatch;
  int best = 0;
  for (int i = 0; i < plan.output_count; ++i) {
    probabilities[i] = Dequantize(output[i], plan.output_quant[tail]);
    if (output[i] > output[best]) best = i;
  }
  *class_index = plan.output_count == 1 ? (output[0] >= plan.threshold_int8 ? 1 : 0) : best;
  return kOk;
}

}  // namespace edge
