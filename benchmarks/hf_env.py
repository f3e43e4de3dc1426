"""The Hugging Face side's plumbing: its isolated environment, and what we hand across to it.

torch and transformers are not project dependencies: the quality benchmark and the training
parity test run ``hf_qa_trainer.py`` through ``uv run --no-project``. Where this machine
keeps a CPU build of torch on disk (``/opt/wheels``, or ``$BERT_QA_TORCH_WHEELS``), uv takes it
from there instead of downloading PyPI's CUDA build (several GB).
"""
from __future__ import annotations

import glob
import os
import sys
from typing import List

TORCH_VERSION = "2.13.0"
HF_TRAINER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hf_qa_trainer.py")


def _local_torch_wheels() -> str:
    directory = os.environ.get("BERT_QA_TORCH_WHEELS", "/opt/wheels")
    if glob.glob(os.path.join(directory, f"torch-{TORCH_VERSION}+cpu-*.whl")):
        return directory
    return ""


def hf_python() -> List[str]:
    """The command prefix for ``python`` in the isolated environment."""
    wheels = _local_torch_wheels()
    torch_req = f"torch=={TORCH_VERSION}+cpu" if wheels else f"torch=={TORCH_VERSION}"
    command = ["uv", "run", "--no-project", "--python", "3.11"]
    if wheels:
        command += ["--find-links", wheels]
    return command + ["--with", torch_req, "--with", "transformers<6", "--with", "safetensors",
                      "--with", "numpy", "python"]


def isolated_env() -> dict:
    """This process's environment minus the project venv (uv would layer it under the new one)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and not p.startswith(sys.prefix))
    return env


def feature_arrays(tfrecord_file: str, spec, is_training: bool) -> dict:
    """A feature TFRecord as numpy arrays, records in file order (what the HF side reads)."""
    import numpy as np
    import tensorflow as tf

    names = spec.get_name_to_features(is_training)
    arrays = {name: [] for name in names}
    for record in tf.data.TFRecordDataset(tfrecord_file):
        example = tf.io.parse_single_example(record, names)
        for name in names:
            arrays[name].append(example[name].numpy())
    return {name: np.stack(values) for name, values in arrays.items()}


def copy_span_head(model, head) -> None:
    """Puts PyTorch's ``qa_outputs`` (weight [2, H], bias [2]) into our span head."""
    # Model Garden's SpanLabeling layer: a direct layer of the TF Hub model, nested one level
    # deeper in the natively rebuilt one.
    heads = [layer for layer in model.submodules if type(layer).__name__ == "SpanLabeling"]
    assert len(heads) == 1, [layer.name for layer in model.submodules][:20]
    kernel, bias = heads[0].weights
    kernel.assign(head["weight"].T)
    bias.assign(head["bias"])
