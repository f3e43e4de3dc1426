"""Refuse, before starting, an input the DirectRunner cannot hold in this machine's memory.

Beam's DirectRunner keeps every grouped PCollection in this process (or its workers), so its
memory grows with the input; past the machine's memory the job swaps or is killed after
minutes or hours of work. The factor below is measured (benchmarks/memory.py, issue 22): peak
RSS above the imports, per byte of the examples FeatureWindowing reads. An input whose estimate
exceeds the available memory is refused with a pointer to Dataflow, which spills to disk and
scales out. Other runners are not checked.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

from bert_qa.errors import InputError

# Measured by benchmarks/memory.py (benchmarks/README.md, "Memory against input size"):
# FeatureWindowing's peak RSS rose 799 MiB from 27 MB to 162 MB of examples (21,900 to 131,400
# questions, seq_len 192): 6.2 bytes per input byte, rounded up; the line through those points
# starts at about 1.3 GiB (TensorFlow + TFX + Beam imported, and Beam's own buffers).
WINDOWING_BYTES_PER_INPUT_BYTE = 6.5
IMPORTS_BYTES = 1.3 * 2**30
SKIP_ENV = "BERTQA_SKIP_MEMORY_CHECK"


class InputTooLargeError(InputError):
    """The input needs more memory on the DirectRunner than this machine has available."""


def runner_of(beam_args: Sequence[str]) -> str:
    args = [str(a) for a in beam_args or ()]
    for i, arg in enumerate(args):
        if arg.startswith("--runner="):
            return arg.split("=", 1)[1]
        if arg == "--runner" and i + 1 < len(args):
            return args[i + 1]
    return "DirectRunner"


def available_bytes() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # Linux without psutil
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    raise RuntimeError("cannot tell the available memory")


def input_bytes(patterns: Sequence[str]) -> int:
    import tensorflow as tf

    return sum(tf.io.gfile.stat(path).length for pattern in patterns for path in tf.io.gfile.glob(pattern))


def check_direct_runner_memory(patterns: Sequence[str], beam_args: Sequence[str], what: str,
                               factor: float = WINDOWING_BYTES_PER_INPUT_BYTE,
                               available: Optional[int] = None) -> Optional[int]:
    """Raises ``InputTooLargeError`` when the DirectRunner would need more than the available
    memory for ``patterns``; returns the estimate in bytes (None when not checked)."""
    runner = runner_of(beam_args)
    if runner.lower().replace("runner", "") not in ("direct", "") or os.environ.get(SKIP_ENV):
        return None
    size = input_bytes(patterns)
    need = int(IMPORTS_BYTES + factor * size)
    free = available_bytes() if available is None else available
    if need > free:
        raise InputTooLargeError(
            f"{what}: {size / 1e6:,.0f} MB of input needs about {need / 2**30:.1f} GiB on Beam's DirectRunner "
            f"({factor:g} x the input + {IMPORTS_BYTES / 2**30:.1f} GiB, measured by benchmarks/memory.py), "
            f"but {free / 2**30:.1f} GiB is available: it would swap or be killed. Run it on Dataflow "
            f"(--beam-arg=--runner=DataflowRunner --beam-arg=--project=... --beam-arg=--region=... "
            f"--beam-arg=--temp_location=gs://...; see docs), or on a machine with more memory, or split the "
            f"input (set {SKIP_ENV}=1 to try anyway)")
    return need
