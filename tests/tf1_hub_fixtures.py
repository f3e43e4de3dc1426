"""TF1 Hub-format modules built locally, shaped like MobileBERT's hub.dev modules.

tensorflow_hub 0.16 can load TF1 Hub-format modules but can no longer create them, so
these are written directly: a TF1 SavedModel saved with the EMPTY tag set (what
``hub.load`` asks for when it sees ``tfhub_module.pb``), the vocabulary registered as an
asset (``assets/vocab.txt``), and a ``tfhub_module.pb`` marker holding a serialized
``ModuleDef`` with ``format: FORMAT_V3``, the header hub.Module used to write.

The body is a tiny transformer-ish encoder (embeddings, one dense layer, tanh pooler) with
ordinary TF1 (reference) variables, as in the old modules; it is not meant to be good at
anything, only to have the real interface: signature 'tokens' with int32 inputs
input_ids / input_mask / segment_ids ``[None, seq_len]`` and outputs sequence_output /
pooled_output, and for a SQuAD-fine-tuned module also 'squad' with start_logits /
end_logits ``[None, seq_len]``.
"""
from __future__ import annotations

import os

from bert_qa import _env  # noqa: F401
import tensorflow as tf

from tests import fixtures

# ModuleDef{format: FORMAT_V3}: field 1 (varint) = 3. tensorflow_hub 0.16 no longer ships
# module_def_pb2, and hub.load only checks that the file exists; the bytes are hub.Module's.
MODULE_DEF_V3 = b"\x08\x03"
TOKEN_INPUTS = ("input_ids", "input_mask", "segment_ids")


def make_tf1_hub_module(export_dir: str, seq_len: int = 64, hidden_size: int = 16,
                        vocab_size: int = 30522, with_squad: bool = False, seed: int = 0,
                        vocab_file: str | None = None) -> str:
    """Writes a TF1 Hub-format module to ``export_dir`` (which must not exist yet)."""
    vocab_file = vocab_file or fixtures.minilm_vocab()
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(seed)
        init = tf.compat.v1.truncated_normal_initializer(stddev=0.5)
        inputs = {name: tf.compat.v1.placeholder(tf.int32, [None, seq_len], name=name)
                  for name in TOKEN_INPUTS}
        with tf.compat.v1.variable_scope("bert"):
            word_embeddings = tf.compat.v1.get_variable(
                "embeddings/word_embeddings", [vocab_size, hidden_size], initializer=init)
            type_embeddings = tf.compat.v1.get_variable(
                "embeddings/token_type_embeddings", [2, hidden_size], initializer=init)
            dense_w = tf.compat.v1.get_variable("encoder/dense/kernel", [hidden_size, hidden_size],
                                                initializer=init)
            dense_b = tf.compat.v1.get_variable("encoder/dense/bias", [hidden_size],
                                                initializer=tf.compat.v1.zeros_initializer())
            pool_w = tf.compat.v1.get_variable("pooler/dense/kernel", [hidden_size, hidden_size],
                                               initializer=init)
        embedded = (tf.gather(word_embeddings, inputs["input_ids"])
                    + tf.gather(type_embeddings, inputs["segment_ids"]))
        embedded *= tf.cast(inputs["input_mask"], tf.float32)[:, :, None]
        sequence_output = tf.tanh(tf.einsum("bsh,hk->bsk", embedded, dense_w) + dense_b)
        pooled_output = tf.tanh(tf.matmul(sequence_output[:, 0], pool_w))
        signatures = {"tokens": _signature(inputs, {"sequence_output": sequence_output,
                                                    "pooled_output": pooled_output})}
        if with_squad:
            with tf.compat.v1.variable_scope("cls/squad"):
                out_w = tf.compat.v1.get_variable("output_weights", [hidden_size, 2],
                                                  initializer=init)
                out_b = tf.compat.v1.get_variable("output_bias", [2],
                                                  initializer=tf.compat.v1.zeros_initializer())
            logits = tf.einsum("bsh,hk->bsk", sequence_output, out_w) + out_b
            start_logits, end_logits = tf.unstack(logits, axis=-1)
            signatures["squad"] = _signature(inputs, {"start_logits": start_logits,
                                                      "end_logits": end_logits})
        # Registering the vocab as an asset makes the Builder copy it to assets/vocab.txt.
        vocab_tensor = tf.constant(vocab_file, name="vocab_file")
        tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS, vocab_tensor)
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            builder = tf.compat.v1.saved_model.Builder(export_dir)
            builder.add_meta_graph_and_variables(
                sess, tags=[], signature_def_map=signatures,
                assets_collection=tf.compat.v1.get_collection(
                    tf.compat.v1.GraphKeys.ASSET_FILEPATHS))
            builder.save()
    with open(os.path.join(export_dir, "tfhub_module.pb"), "wb") as f:
        f.write(MODULE_DEF_V3)
    return export_dir


def _signature(inputs: dict, outputs: dict):
    build = tf.compat.v1.saved_model.utils.build_tensor_info
    return tf.compat.v1.saved_model.signature_def_utils.build_signature_def(
        inputs={name: build(t) for name, t in inputs.items()},
        outputs={name: build(t) for name, t in outputs.items()})
