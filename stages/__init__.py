"""edge-opt pipeline stages: one command-line module per DVC stage (`python -m stages.<name>`)."""

import os

# tfmot only understands Keras 2 models; this must be set before TensorFlow is first imported.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from stages.lib.core import noise, trace  # noqa: E402

noise.filter_stderr()
trace.start()
