// How a TensorFlow Lite Micro application runs the generated plan: an edge::PartRunner over MicroInterpreter.
// This file is the one piece of the firmware contract the tests cannot compile (TFLite Micro's C++ sources come with
// your board's SDK, not from a package registry); everything it calls is TFLM's public API.
//
// Build: add edge_model.h, edge_model_data.cc, edge_model_run.{h,cc} and this file to a TFLM application. A model
// stored under look-up-table compression (README.txt in the board's folder says so) needs TFLM compiled with
// USE_TFLM_COMPRESSION.
#include <new>

#include "edge_model.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace {

alignas(16) uint8_t tensor_arena[edge_model_arena_bytes];
// The block-output buffer of a patch deployment (outside the arena: the parts reuse the arena one after another).
int8_t block_output[edge_model_buffer_bytes > 0 ? edge_model_buffer_bytes : 1];

tflite::MicroMutableOpResolver<edge_model_operator_count> resolver;
// One interpreter at a time, rebuilt in place for each part: no heap.
alignas(tflite::MicroInterpreter) uint8_t interpreter_storage[sizeof(tflite::MicroInterpreter)];
tflite::MicroInterpreter* interpreter = nullptr;

int8_t* Begin(void*, int part, size_t* input_bytes) {
  if (part < 0 || part >= edge_model_part_count) return nullptr;  // the runner reports kPartFailed
  if (interpreter != nullptr) interpreter->~MicroInterpreter();
  const tflite::Model* model = tflite::GetModel(edge_model_data + edge_model_part_offsets[part]);
  interpreter = new (interpreter_storage) tflite::MicroInterpreter(model, resolver, tensor_arena, sizeof(tensor_arena));
  if (interpreter->AllocateTensors() != kTfLiteOk) return nullptr;
  TfLiteTensor* input = interpreter->input(0);
  *input_bytes = input->bytes;
  return input->data.int8;
}

const int8_t* Invoke(void*, int part, size_t* output_bytes) {
  if (part < 0 || part >= edge_model_part_count || interpreter == nullptr) return nullptr;
  if (interpreter->Invoke() != kTfLiteOk) return nullptr;
  const TfLiteTensor* output = interpreter->output(0);
  *output_bytes = output->bytes;
  return output->data.int8;
}

}  // namespace

// Call once at start-up.
bool EdgeModelSetup() { return edge_model_register_operators(resolver); }

// One classification of a preprocessed image (edge_model_image_size^2 x 3 uint8, see edge_model.h): the class
// (an index into edge_model_class_names) and the model's output dequantized (edge_model_output_count values: P(class
// 1) for two classes, every class's probability for more).
bool EdgeModelClassify(const uint8_t* image, int* class_index, float (&probabilities)[edge_model_output_count]) {
  const edge::PartRunner runner{nullptr, Begin, Invoke};
  return edge::Run(edge_model_plan, image, block_output, edge_model_buffer_bytes, runner, probabilities,
                   class_index) == edge::kOk;
}
