"""The four windowing parameters, named once: how questions and contexts are cut into
fixed-length features. Features and the model trained on them must agree on all four.

TensorFlow-free, so that the pipeline's configuration and its artifacts use the same names
without loading a model. The defaults live in the spec classes (``bert_qa.spec.windowing_defaults``).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Mapping, Tuple


@dataclasses.dataclass(frozen=True)
class Windowing:
    seq_len: int        # tokens per feature (question, context and the three special tokens)
    query_len: int      # question tokens kept
    doc_stride: int     # tokens between the starts of consecutive windows of one context
    do_lower_case: bool

    @classmethod
    def names(cls) -> Tuple[str, ...]:
        """The parameters' names, in declaration order."""
        return tuple(field.name for field in dataclasses.fields(cls))

    @classmethod
    def of(cls, values: Any) -> "Windowing":
        """The windowing of a mapping or of an object with these attributes (e.g. a spec)."""
        if isinstance(values, Mapping):
            return cls(**{name: values[name] for name in cls.names()})
        return cls(**{name: getattr(values, name) for name in cls.names()})

    def as_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)
