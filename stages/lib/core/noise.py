"""Keep TensorFlow's known start-up noise off a stage's stderr: on a CPU box it logs `failed call to cuInit ...
UNKNOWN ERROR (303)` and a NodeDef warning that a user reads as errors. The native library writes them to file
descriptor 2 before Python's logging exists, so the stage process's descriptor 2 goes through a pipe whose reader
drops exactly those lines and passes everything else on at once (progress bars included)."""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

# Set in the stage process once the filter runs: its children (TFLM workers, arena probes) write through it.
ENV = "EDGE_OPT_STDERR_FILTERED"
NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|[IWE]\d{4} [\d:. ]+\d+ (cuda_platform|cudart_stub|cuda_executor|cuda_diagnostics|port|cpu_feature_guard)\.cc"
    rb"|[IWE]\d{4} [\d:. ]+\d+ node_def_util\.cc:\d+\] NodeDef mentions attribute use_unbounded_threadpool)"
)


def _pump(source: int, target: int) -> None:
    pending = b""
    while chunk := os.read(source, 65536):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        kept = b"".join(line + b"\n" for line in lines if not NOISE.match(line))
        if b"\r" in pending:  # a progress bar redrawing its line: pass it on now
            kept, pending = kept + pending, b""
        if kept:
            os.write(target, kept)
    if pending and not NOISE.match(pending):
        os.write(target, pending)


def filter_stderr() -> None:
    """Route this process's file descriptor 2 through the filter (once per process tree)."""
    if os.environ.get(ENV):
        return
    os.environ[ENV] = "1"
    read_end, write_end = os.pipe()
    original = os.dup(2)
    sys.stderr.flush()
    os.dup2(write_end, 2)
    os.close(write_end)
    thread = threading.Thread(target=_pump, args=(read_end, original), daemon=True)
    thread.start()

    def restore() -> None:
        sys.stderr.flush()
        os.dup2(original, 2)  # the pipe's last writer in this process closes: the pump reads to its end
        thread.join(timeout=5)

    atexit.register(restore)
