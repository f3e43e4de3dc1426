"""Dense kernels whose few outlier weights would ruin a per-tensor int8 scale, split before conversion.

Why: the Task Library 0.4.4 runtime (the one apps ship) runs only dynamic-range models whose
dense weights have one int8 scale per tensor (``QuantizationConfig.for_dynamic``). MiniLM's
feed-forward output kernels each hold a few weights far larger than the rest (layer 0: 7.91, where
the median of the output channels' largest weights is 0.19): one int8 step is then larger than
most weights, and per-tensor quantization rounds 29-55% of them to zero. That is the whole
dynamic-range F1 drop measured on two trained models (docs/quality.md).

What: each such kernel ``W`` (``y = x W + b``) becomes ``W_rest`` (the outliers zeroed) plus a
correction that adds the outliers back from the few input channels that hold them::

    y = x W_rest + b + gather(x, rows) C        # C: [rows, units], only the outliers non-zero

which is the same function in float (only the order of one sum changes). The converter then
quantizes ``W_rest`` with a step several times finer. ``C`` holds only the outliers: with fewer
than 1,024 elements the converter leaves it float, else it gets its own per-tensor scale, set by
the outliers themselves. The extra ops are GATHER, a small FULLY_CONNECTED and ADD, all builtins
the Task Library 0.4.4 runtime runs.

No quantization library offers this for per-tensor TFLite weights: the converter's own remedy
is per-channel scales (FULLY_CONNECTED version 12), which that runtime refuses.

``split_weight_outliers(model)`` does it on a Keras model in place for the duration of a
``with`` block (to save the SavedModel the converter reads) and restores the model after. It
reaches layers that their parent calls through an attribute (Model Garden's
``TransformerEncoderBlock._output_dense`` and the like); a probe checks that the model computes
the same function after the split, so a layer wired some other way is an error, never a
silently different model.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import Iterator, List, Optional

import numpy as np

from bert_qa import _env  # noqa: F401

log = logging.getLogger(__name__)

# An entry is an outlier when it is this many times larger than the median, over the kernel's
# output channels, of each channel's largest weight; a kernel with more than MAX_OUTLIERS is left
# as it is (the split is for a few weights). On a trained MiniLM model (the seed study's seed 2,
# 2026-12-07) these values split 3, 1, 2, 8, 13 and 22 weights of the feed-forward output kernels
# of layers 0-5 and 4 of layer 0's intermediate kernel. On it and on seed 1's model the
# dynamic-range .tflite then scored as the float one on 400 questions; 8 and 16 (about one weight
# per kernel) recovered 1.8 of seed 1's 2.2 F1 lost and 2.8 of seed 2's 3.9 (docs/quality.md).
OUTLIER_RATIO = 4.0
MAX_OUTLIERS = 32
# The TFLite converter quantizes only weights with at least this many elements
# (``QuantizationSpecs::minimum_elements_for_weights`` of TensorFlow's MLIR dynamic-range quantizer).
MIN_QUANTIZED_ELEMENTS = 1024
# Float tolerance of the probe that checks the split model computes the same function, relative
# to the largest logit. The split only re-associates one sum per output (measured: 8.9e-8 on the
# tests' tiny model); a correction that is not applied moves the logits by the outliers' whole
# contribution, far more (the tests plant that bug and see it refused).
PROBE_TOLERANCE = 1e-4


@dataclasses.dataclass
class Split:
    """One kernel split: which layer, how many outliers, and its largest weight before and after."""

    layer: str
    outliers: int
    largest_before: float
    largest_after: float


def outliers_of(kernel: np.ndarray, ratio: Optional[float] = None) -> np.ndarray:
    """Boolean mask of ``kernel``'s ([inputs, units]) outlier entries (all False: nothing to split)."""
    ratio = OUTLIER_RATIO if ratio is None else ratio
    magnitude = np.abs(kernel)
    typical = float(np.median(magnitude.max(axis=0)))
    mask = magnitude > ratio * typical
    if kernel.size < MIN_QUANTIZED_ELEMENTS or mask.sum() > MAX_OUTLIERS or mask.all():
        return np.zeros_like(mask)
    return mask


def _layer_classes():
    import tf_keras

    return tf_keras.layers.Dense, tf_keras.layers.EinsumDense


def _is_plain_matmul(layer) -> bool:
    """A Dense, or an EinsumDense of the form ``...c,cd->...d``, with no activation: ``y = x W + b``."""
    import tf_keras

    dense, einsum_dense = _layer_classes()
    if not isinstance(layer, (dense, einsum_dense)) or not layer.built:
        return False
    if getattr(layer, "activation", None) not in (None, tf_keras.activations.linear):
        return False
    if layer.compute_dtype != "float32":  # mixed precision: the float32 correction would not fit
        return False
    if len(layer.kernel.shape) != 2:
        return False
    if isinstance(layer, einsum_dense):
        operands, output = layer.equation.split("->")
        inputs, kernel = operands.split(",")
        return len(kernel) == 2 and inputs[-1] == kernel[0] and output == inputs[:-1] + kernel[1]
    return True


def _correction_layer_class():
    import tensorflow as tf
    import tf_keras

    class OutlierCorrected(tf_keras.layers.Layer):
        """``inner(x) + gather(x, rows) C``: the kernel's outliers, added back from ``rows``."""

        def __init__(self, inner, rows, correction):
            super().__init__(name=f"{inner.name}_outliers_split", dtype="float32")
            self.inner = inner
            self.rows = tf.constant(rows, tf.int32)
            self.correction = tf.constant(correction, tf.float32)

        # Not converted by AutoGraph (plain tensor code needs none): AutoGraph re-reads a
        # function's source from disk, which for a class built in a factory can be the wrong
        # function once the file has changed under a running process.
        # ``training`` is accepted (Keras passes it to a wrapped call) and not passed on: the
        # inner Dense / EinsumDense takes none.
        @tf.autograph.experimental.do_not_convert
        def call(self, inputs, training=None):
            del training
            outputs = self.inner(inputs)
            picked = tf.gather(inputs, self.rows, axis=-1)
            flat = tf.reshape(picked, [-1, self.correction.shape[0]])
            extra = tf.matmul(flat, self.correction)
            return outputs + tf.reshape(extra, tf.shape(outputs))

    return OutlierCorrected


def probe_features(seq_len: int) -> dict:
    """One fixed input window (small word ids, so any vocabulary holds them)."""
    ids = np.random.RandomState(0).randint(1, 100, size=(1, seq_len)).astype(np.int32)
    return {"input_word_ids": ids, "input_mask": np.ones_like(ids),
            "input_type_ids": (np.arange(seq_len) >= seq_len // 2).astype(np.int32)[None]}


def model_logits(model, features: dict) -> np.ndarray:
    """``[start, end]`` logits of a Keras span model on ``features``."""
    from bert_qa.export.quantization import FEATURE_NAMES

    names = list(getattr(model, "input_names", None) or FEATURE_NAMES)
    return np.stack([np.asarray(t) for t in model([features[n] for n in names], training=False)])


def same_logits(got: np.ndarray, want: np.ndarray) -> bool:
    """Equal within PROBE_TOLERANCE of the larger of 1 and the largest of ``want``."""
    return float(np.abs(got - want).max()) <= PROBE_TOLERANCE * max(1.0, float(np.abs(want).max()))


def _probe_logits(model) -> np.ndarray:
    return model_logits(model, probe_features(int(model.inputs[0].shape[1])))


@contextlib.contextmanager
def split_weight_outliers(model, ratio: Optional[float] = None) -> Iterator[List[Split]]:
    """Within the block, ``model``'s outlier-holding kernels are split (see the module doc);
    yields what was split (empty: nothing to do, the model untouched). Restored on exit."""
    plain = [(parent, name, layer) for parent in [model, *model.submodules]
             for name, layer in list(vars(parent).items())
             if not name.startswith("__") and _is_plain_matmul(layer)]
    todo = []
    seen = set()
    for parent, name, layer in plain:
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        kernel = layer.kernel.numpy()
        mask = outliers_of(kernel, ratio)
        if mask.any():
            todo.append((parent, name, layer, kernel, mask))
    if not todo:
        yield []
        return
    before = _probe_logits(model)
    corrected = _correction_layer_class()
    splits, undo = [], []
    try:
        for parent, name, layer, kernel, mask in todo:
            rows = np.flatnonzero(mask.any(axis=1))
            layer.kernel.assign(np.where(mask, 0.0, kernel).astype(kernel.dtype))
            undo.append((parent, name, layer, kernel))
            # Past Keras' attribute tracking: a tracked reassignment would move the layer to the
            # end of its parent's list, and so reorder ``model.weights`` (what get_weights and
            # set_weights pair by) for good. The parent's call finds the wrapper all the same.
            object.__setattr__(parent, name, corrected(layer, rows, np.where(mask, kernel, 0.0)[rows]))
            splits.append(Split(layer.name, int(mask.sum()), float(np.abs(kernel).max()),
                                float(np.abs(np.where(mask, 0.0, kernel)).max())))
        after = _probe_logits(model)
        if not same_logits(after, before):
            raise RuntimeError(f"splitting the weight outliers of {[s.layer for s in splits]} changed "
                               f"what the model computes (max logit difference "
                               f"{np.abs(after - before).max():.3g}): a split layer is not called "
                               f"through the attribute that holds it")
        log.info("Split %d outlier weights out of %d dense kernels before conversion (largest "
                 "weights %s -> %s)", sum(s.outliers for s in splits), len(splits),
                 [round(s.largest_before, 2) for s in splits], [round(s.largest_after, 2) for s in splits])
        yield splits
    finally:
        for parent, name, layer, kernel in reversed(undo):
            object.__setattr__(parent, name, layer)
            layer.kernel.assign(kernel)
