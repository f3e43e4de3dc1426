"""Post-training quantization settings for the TFLite converter (Model Maker's ``QuantizationConfig``).

Model Maker users write ``QuantizationConfig.for_dynamic()`` / ``for_float16()`` /
``for_int8(data)``; the same constructors exist here, plus ``for_float32()`` (no
quantization) and ``from_name`` for command lines. ``representative_data`` is what BERT
span models eat: a dict of int arrays ``input_word_ids`` / ``input_mask`` /
``input_type_ids`` of shape [N, seq_len] (training features), or any callable that yields
converter samples.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Union

from bert_qa import _env  # noqa: F401

# The names a pipeline, the CLI and ``from_name`` take. ``dynamic`` splits outlier weights before
# per-tensor quantization (``weight_outliers``); ``dynamic_unsplit`` is the same file without the
# split (what ``dynamic`` was before 2026-12-07), for an encoder whose outliers it should keep.
QUANTIZATIONS = ("float32", "dynamic", "dynamic_unsplit", "float16", "int8")
DEFAULT_QUANTIZATION_STEPS = 500  # Model Maker's calibration default
FEATURE_NAMES = ("input_word_ids", "input_mask", "input_type_ids")

RepresentativeData = Union[Mapping[str, "object"], Callable[[], Iterable]]


@dataclasses.dataclass
class QuantizationConfig:
    """How to quantize: the converter attributes Model Maker's config sets, by name."""

    name: str = "custom"
    optimizations: Optional[List] = None
    representative_data: Optional[RepresentativeData] = None
    quantization_steps: Optional[int] = None
    inference_input_type: Optional[object] = None
    inference_output_type: Optional[object] = None
    supported_ops: Optional[List] = None
    supported_types: Optional[List] = None
    experimental_new_quantizer: Optional[bool] = None
    per_tensor_dense_weights: bool = False
    split_weight_outliers: bool = False

    @classmethod
    def for_float32(cls) -> "QuantizationConfig":
        """No quantization: float32 weights and activations."""
        return cls(name="float32")

    @classmethod
    def for_dynamic(cls, task_library_compatible: bool = True,
                    split_weight_outliers: Optional[bool] = None) -> "QuantizationConfig":
        """Dynamic-range: int8 weights, float activations (Model Maker's QA default).

        Since TF 2.12 the converter quantizes dense-layer weights per channel, which makes
        hybrid FULLY_CONNECTED version 12; the Task Library 0.4.4 runtime (the one apps
        ship) only knows up to version 11 and refuses the file ("Didn't find op for
        builtin opcode 'FULLY_CONNECTED' version '12'"). ``task_library_compatible``
        quantizes dense weights per tensor, as the converters of Model Maker's time did
        (FULLY_CONNECTED version 5); pass False for per-channel scales.

        One scale per tensor suits kernels without outliers; a kernel holding a few weights far
        larger than the rest (MiniLM's feed-forward outputs) loses most of its small weights to
        it. ``split_weight_outliers`` (default: with per-tensor scales) moves those few weights
        into a small float side branch before conversion (``bert_qa.export.weight_outliers``).
        """
        import tensorflow as tf

        if split_weight_outliers is None:
            split_weight_outliers = task_library_compatible
        # The name travels into the file's metadata: an unsplit per-tensor file says so.
        name = "dynamic_unsplit" if task_library_compatible and not split_weight_outliers else "dynamic"
        return cls(name=name, optimizations=[tf.lite.Optimize.DEFAULT],
                   per_tensor_dense_weights=task_library_compatible,
                   split_weight_outliers=split_weight_outliers)

    @classmethod
    def for_float16(cls) -> "QuantizationConfig":
        """float16 weights, dequantized to float32 at load time on CPU."""
        import tensorflow as tf

        return cls(name="float16", optimizations=[tf.lite.Optimize.DEFAULT],
                   supported_types=[tf.float16])

    @classmethod
    def for_int8(cls, representative_data: RepresentativeData,
                 quantization_steps: int = DEFAULT_QUANTIZATION_STEPS,
                 inference_input_type=None, inference_output_type=None,
                 supported_ops=None) -> "QuantizationConfig":
        """Full-integer: int8 weights and activations calibrated on ``representative_data``.

        Unlike Model Maker's image defaults (uint8 in/out), the defaults keep the model's
        int32 token inputs and float32 logits outputs: the Task Library's
        BertQuestionAnswerer writes int32 ids and reads float logits.
        """
        import tensorflow as tf

        if representative_data is None:
            raise ValueError("int8 quantization needs representative_data (training features)")
        return cls(name="int8", optimizations=[tf.lite.Optimize.DEFAULT],
                   representative_data=representative_data,
                   quantization_steps=quantization_steps,
                   inference_input_type=inference_input_type,
                   inference_output_type=inference_output_type or tf.float32,
                   supported_ops=supported_ops or [tf.lite.OpsSet.TFLITE_BUILTINS_INT8])

    @classmethod
    def from_name(cls, name: str, representative_data: Optional[RepresentativeData] = None,
                  quantization_steps: int = DEFAULT_QUANTIZATION_STEPS) -> "QuantizationConfig":
        if name == "float32":
            return cls.for_float32()
        if name == "dynamic":
            return cls.for_dynamic()
        if name == "dynamic_per_channel":
            config = cls.for_dynamic(task_library_compatible=False)
            config.name = name
            return config
        if name == "dynamic_unsplit":  # per tensor, outlier weights left in their kernels
            return cls.for_dynamic(split_weight_outliers=False)
        if name == "float16":
            return cls.for_float16()
        if name == "int8":
            return cls.for_int8(representative_data, quantization_steps)
        raise ValueError(f"Unknown quantization {name!r}; expected one of {QUANTIZATIONS} "
                         f"(or, for the library only, dynamic_per_channel: not Task Library compatible)")

    def get_converter_with_quantization(self, converter, **kwargs):
        """Sets this config's attributes on a ``tf.lite.TFLiteConverter`` and returns it."""
        del kwargs  # Model Maker passes ``preprocess``; our samples are already features
        if self.optimizations is not None:
            converter.optimizations = list(self.optimizations)
        if self.representative_data is not None:
            converter.representative_dataset = self._representative_dataset()
        if self.inference_input_type is not None:
            converter.inference_input_type = self.inference_input_type
        if self.inference_output_type is not None:
            converter.inference_output_type = self.inference_output_type
        if self.supported_ops is not None:
            converter.target_spec.supported_ops = list(self.supported_ops)
        if self.supported_types is not None:
            converter.target_spec.supported_types = list(self.supported_types)
        if self.experimental_new_quantizer is not None:
            converter.experimental_new_quantizer = self.experimental_new_quantizer
        if self.per_tensor_dense_weights:
            # No public switch exists; this converter attribute is what the MLIR
            # quantizer reads (tensorflow/lite/python/lite.py, TF 2.12 and later).
            converter._experimental_disable_per_channel_quantization_for_dense_layers = True
        return converter

    def _representative_dataset(self) -> Callable[[], Iterator]:
        data = self.representative_data
        if callable(data):
            return data
        return lambda: representative_samples(data, self.quantization_steps)


def representative_samples(features: Mapping[str, "object"], max_samples: Optional[int] = None
                           ) -> Iterator[Dict[str, "object"]]:
    """One [1, seq_len] int32 sample per feature row, keyed by the serving input names."""
    import numpy as np

    missing = [n for n in FEATURE_NAMES if n not in features]
    if missing:
        raise ValueError(f"representative features lack {missing}; they need {FEATURE_NAMES}")
    arrays = {n: np.asarray(features[n], dtype=np.int32) for n in FEATURE_NAMES}
    rows = len(arrays["input_word_ids"])
    if max_samples is not None:
        rows = min(rows, max_samples)
    for i in range(rows):
        yield {n: a[i:i + 1] for n, a in arrays.items()}
