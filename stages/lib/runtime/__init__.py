"""Running `.tflite` files without TensorFlow: LiteRT (`litert`), TFLite Micro (`tflm`), patch deployments
(`patching`), look-up-table compression (`lut`) and the multi-model blob (`tflite_bundle`). Editing them reruns the
evaluations, `micro`, the students and the report."""
