"""bert_qa: extractive question answering with BERT-family encoders.

A drop-in for TFLite Model Maker's question-answer specs (``BertQaSpec``,
``MobileBertQaSpec``) built on tf-models-official. Knows nothing of TFX, Beam or
Kubeflow. Heavy modules load lazily so that light commands (scoring, validation) do not
pay for importing TensorFlow.
"""
from bert_qa import _env  # noqa: F401  (must run before TensorFlow is imported)

import importlib

_LAZY = {
    "BertQaSpec": "bert_qa.spec",
    "MobileBertQaSpec": "bert_qa.spec",
    "DataLoader": "bert_qa.dataloader",
    "question_answer": "bert_qa.question_answer",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        return module if module.__name__.endswith(name) else getattr(module, name)
    raise AttributeError(f"module 'bert_qa' has no attribute {name!r}")
