"""Dropout with given masks instead of random ones, on our side and on Hugging Face's (issue 23).

Not a test module. ``tests/test_checkpoint_import.py`` compares a converted encoder run in train
mode with a numpy BERT under the same masks; ``tests/test_training_parity.py`` fine-tunes with
the same masks on both trainers. Our side: the masks are traced in (``masks_injected``), into a
converted encoder while it is exported, or into our training step while Keras traces it (the
encoder rebuilt natively), so its dropout ops use them at every call; the rest of the dropout
(comparison, 1/(1-p) scale, placement) stays TF's and Model Garden's own.
Hugging Face's side: ``benchmarks/hf_qa_trainer.py --dropout-masks`` puts the same arrays at the
same sites of ``BertForQuestionAnswering``.
"""
from __future__ import annotations

import contextlib
import re
from typing import Dict, Iterator, Set

import numpy as np

LAYER_SCOPE = re.compile(r"layer_(\d+)/(self_attention/)?(dropout(?:_\d+)?)/dropout$")
TOP_LEVEL_DROPOUT_SCOPE = re.compile(r"^(?:.*bert_encoder[^/]*/)?dropout(?:_\d+)?/dropout$")


class DropoutSites:
    """Maps the name scope of each dropout op traced in a converted encoder to BERT's site.

    Keras numbers layer names per process (``dropout``, ``dropout_7``, ...), so the scopes are
    matched by role and call order, not by number: inside ``layer_i``, the Dropout under
    ``self_attention`` is the attention probabilities' and the two others are called in the
    order attention output, then feed-forward output (Model Garden's TransformerEncoderBlock).
    A top-level Dropout is the embeddings'. The traces Keras saving makes of one sublayer
    alone have no layer index: a layer's own Dropout traced alone looks top-level and gets the
    embeddings' mask (same shape, never called by the encoder); the attention's alone gets
    the real sampler.
    """

    def __init__(self):
        self._layer_order = {}  # (layer index, Dropout name) -> site, in order of first call

    def site_of(self, scope: str):
        match = LAYER_SCOPE.search(scope)
        if match:
            layer, in_attention, name = match.groups()
            if in_attention:
                return f"layer_{layer}.attention_probs"
            seen = [key for key in self._layer_order if key[0] == layer]
            if (layer, name) not in self._layer_order:
                if len(seen) == 2:
                    raise AssertionError(f"a third Dropout in layer {layer} ({scope}): BERT has two there")
                self._layer_order[(layer, name)] = ("attention_output", "output")[len(seen)]
            return f"layer_{layer}.{self._layer_order[(layer, name)]}"
        return "embeddings" if TOP_LEVEL_DROPOUT_SCOPE.search(scope) else None


def keep_masks(config: dict, batch: int, length: int, seed: int = 1) -> Dict[str, np.ndarray]:
    """A keep mask (1 keep, 0 drop) per BERT dropout site, drawn at the config's rates, for
    batches of ``batch`` sequences of ``length`` tokens. Site names as ``DropoutSites``'."""
    rng = np.random.default_rng(seed)
    h, heads = config["hidden_size"], config["num_attention_heads"]
    rate, attention_rate = config["hidden_dropout_prob"], config["attention_probs_dropout_prob"]
    keep = {"embeddings": rng.random((batch, length, h)) >= rate}
    for i in range(config["num_hidden_layers"]):
        keep[f"layer_{i}.attention_probs"] = rng.random((batch, heads, length, length)) >= attention_rate
        keep[f"layer_{i}.attention_output"] = rng.random((batch, length, h)) >= rate
        keep[f"layer_{i}.output"] = rng.random((batch, length, h)) >= rate
    return {site: mask.astype(np.float64) for site, mask in keep.items()}


@contextlib.contextmanager
def masks_injected(keep: Dict[str, np.ndarray]) -> Iterator[Set[str]]:
    """While open, dropout traced in a converted encoder (exported, or rebuilt natively and
    trained) draws ``keep`` instead of random masks.

    ``tf.nn.dropout`` keeps x where its uniform sample is >= rate and scales it by 1/(1-rate);
    the sampler (``random_ops.random_uniform``, looked up at every call) is replaced, with 0
    where a mask drops and 0.999 where it keeps, chosen by the op's name scope. Yields the set
    of sites that got a mask (filled as tracing goes)."""
    import tensorflow as tf
    from tensorflow.python.ops import random_ops

    real_sampler, sites, names = random_ops.random_uniform, set(), DropoutSites()

    def injected(shape, *args, **kwargs):
        site = names.site_of(tf.get_current_name_scope())
        if site is None:
            return real_sampler(shape, *args, **kwargs)
        sites.add(site)
        return tf.constant(np.where(keep[site] > 0, 0.999, 0.0), tf.float32)

    random_ops.random_uniform = injected
    try:
        yield sites
    finally:
        random_ops.random_uniform = real_sampler
