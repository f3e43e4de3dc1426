"""A quiet console for `bertqa`: our progress lines and real warnings, not the libraries' chatter.

What a run printed before this, tried as a new user: TensorFlow's C++ start-up lines (oneDNN,
"Could not find cuda drivers", and on a CPU-only machine the error "failed call to cuInit"),
``pkg_resources`` deprecation warnings from tensorflow_hub, TF deprecation notices from inside
TFMA and tf.data, TFMA's "support for TF 2.0 is currently in beta", TFX's "ArtifactQuery.
property_predicate is not supported" once per resolver query, TFLite's "Created TensorFlow Lite
XNNPACK delegate". None of it is actionable by the user.

Some of these come from C++ (absl logging, printf) before TensorFlow reads any setting, so they
are filtered where they are written: file descriptor 2 goes through a pipe whose reader drops the
known lines and forwards everything else, for this process and the processes it starts (Beam
workers). Python-side warnings are filtered at their source. ``bertqa --verbose`` keeps it all.
Only the CLI does this; the library leaves the process as it found it.
"""
from __future__ import annotations

import atexit
import logging
import os
import re
import sys
import threading
import warnings

# Whole lines written to stderr (C++ logging, printf) that say nothing to act on.
NOISE_LINES = [
    re.compile(r"^I\d{4} [\d:. ]+\d+ \S+:\d+\] "),  # C++ INFO (oneDNN, cudart stub, ...)
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"),
    re.compile(r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$"),
]
# cuInit failing is the expected outcome where there is no NVIDIA driver; with one it is news.
NO_GPU_NOISE = re.compile(r"^E\d{4} [\d:. ]+\d+ cuda_platform\.cc:\d+\] failed call to cuInit")

# Python logging records (logger name, message start) and warnings (message regex).
NOISE_RECORDS = [
    ("absl", "ArtifactQuery.property_predicate is not supported"),
    ("absl", "Tensorflow version ("),                       # TFMA: "... support for TF 2.0 is currently in beta"
    ("tensorflow", "From "),                                 # deprecation notices from library code
    # Loading our own SavedModel for prediction: no metrics are needed, so none are built.
    ("tensorflow", "Compiled the loaded model, but the compiled metrics have yet to be built"),
    # LocalDagRunner's "Execution N failed." before the failure itself, which bertqa reports
    # (the component's error, with exit 1 or 3): the line adds only an MLMD id.
    ("absl", "Execution "),
]
NOISE_WARNINGS = [r"pkg_resources is deprecated as an API", r".*is deprecated and will be removed",
                  # TensorFlow's own converter and the metadata writers read files with it; we run
                  # models with ai_edge_litert.
                  r"\s*Warning: tf.lite.Interpreter is deprecated"]


def _has_nvidia_driver() -> bool:
    return os.path.exists("/proc/driver/nvidia/version")


def is_noise(line: str, nvidia_driver: bool) -> bool:
    text = line.rstrip("\n")
    if any(p.match(text) for p in NOISE_LINES):
        return True
    return not nvidia_driver and bool(NO_GPU_NOISE.match(text))


class _DropKnownRecords(logging.Filter):
    def __init__(self, prefixes):
        super().__init__()
        self._prefixes = tuple(prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 (a malformed record is not ours to judge)
            return True
        return not message.startswith(self._prefixes)


def _filter_python_side() -> None:
    for pattern in NOISE_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    by_logger = {}
    for name, prefix in NOISE_RECORDS:
        by_logger.setdefault(name, []).append(prefix)
    for name, prefixes in by_logger.items():
        logging.getLogger(name).addFilter(_DropKnownRecords(prefixes))


def _filter_fd2() -> None:
    """Routes fd 2 through a filtering reader thread; restored (and drained) at exit."""
    nvidia = _has_nvidia_driver()
    real = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump():
        with os.fdopen(read_end, "r", encoding="utf-8", errors="replace", newline="") as lines, \
                os.fdopen(os.dup(real), "w", encoding="utf-8", errors="replace") as out:
            for line in lines:
                if not is_noise(line, nvidia):
                    out.write(line)
                    out.flush()

    thread = threading.Thread(target=pump, name="bertqa-console", daemon=True)
    thread.start()

    def restore():
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(real, 2)  # the pipe's last writer in this process closes: the reader drains, ends
        thread.join(timeout=5)

    atexit.register(restore)


def quiet(verbose: bool) -> None:
    """Called once by ``bertqa`` before any command imports TensorFlow."""
    if verbose:
        return
    _filter_python_side()
    if os.name == "posix":
        _filter_fd2()
