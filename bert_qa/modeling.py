"""Span-labeling QA models over TF Hub encoders (Model Maker's ``create_qa_model``)."""
from __future__ import annotations

from bert_qa import _env  # noqa: F401
import tensorflow as tf
import tf_keras
import tensorflow_hub as hub
from official.nlp.modeling import models

from bert_qa import hub_format

INPUT_NAMES = hub_format.ENCODER_INPUTS  # input_word_ids, input_mask, input_type_ids


def _inputs(seq_len: int):
    return [tf_keras.layers.Input(shape=(seq_len,), dtype=tf.int32, name=name) for name in INPUT_NAMES]


def _call_tf2_encoder(layer, word_ids, mask, type_ids):
    """(pooled_output, sequence_output) from a TF2 encoder, dict (current) or list (v1) API."""
    try:
        outputs = layer(dict(zip(INPUT_NAMES, (word_ids, mask, type_ids))))
    except (ValueError, TypeError):
        outputs = layer([word_ids, mask, type_ids])  # bert_en_uncased_L-12_H-768_A-12/1 style
    if isinstance(outputs, dict):
        return outputs["pooled_output"], outputs["sequence_output"]
    pooled, sequence = outputs
    return pooled, sequence


def create_qa_model(module_path: str, seq_len: int, initializer_range: float = 0.02,
                    trainable: bool = True, is_tf2: bool = True):
    """(span labeler, core encoder model): start/end logits over the encoder's sequence output."""
    word_ids, mask, type_ids = _inputs(seq_len)
    if is_tf2:
        if hub_format.is_tf1_hub_module(module_path):
            raise ValueError(f"{module_path!r} is a TF1 Hub-format module: pass is_tf2=False")
        core = hub.KerasLayer(module_path, trainable=trainable)
        pooled_output, sequence_output = _call_tf2_encoder(core, word_ids, mask, type_ids)
    else:
        core = hub_format.TF1SignatureLayer(module_path, signature="tokens", trainable=trainable)
        outputs = core({"input_ids": word_ids, "input_mask": mask, "segment_ids": type_ids})
        pooled_output, sequence_output = outputs["pooled_output"], outputs["sequence_output"]
    encoder = tf_keras.Model(inputs=[word_ids, mask, type_ids],
                             outputs=[sequence_output, pooled_output], name="core_model")
    initializer = tf_keras.initializers.TruncatedNormal(stddev=initializer_range)
    return models.BertSpanLabeler(network=encoder, initializer=initializer), encoder


def create_native_qa_model(module_path: str, seq_len: int, config: "hub_format.EncoderConfig",
                           initializer_range: float = 0.02, trainable: bool = True):
    """``create_qa_model``'s model with the encoder built as Keras layers, not loaded as a graph.

    A SavedModel (what ``hub.KerasLayer`` wraps) computes in the dtypes it was traced with, so a
    Keras mixed-precision policy never reaches it. Rebuilt from its ``EncoderConfig`` under the
    current policy, with the SavedModel's weights copied in by name, the encoder follows the
    policy. The logits are cast to float32 (the loss, and what export expects).
    """
    by_name = hub_format.saved_variables(module_path)  # the SavedModel's weights, without loading it
    encoder = hub_format.build_bert_encoder(config)
    missing = [w.name for w in encoder.weights if w.name not in by_name]
    if missing:
        raise ValueError(f"{module_path}: the SavedModel has no weights named {missing[:3]}... for the "
                         f"BertEncoder its config describes; it cannot be rebuilt natively")
    for weight in encoder.weights:
        if tuple(weight.shape) != tuple(by_name[weight.name].shape):
            raise ValueError(f"{module_path}: weight {weight.name} has shape {by_name[weight.name].shape}, "
                             f"its config says {weight.shape}")
        weight.assign(by_name[weight.name])
    encoder.trainable = trainable
    # The span head reads the sequence output only: the pooler gets no gradient (Keras would
    # warn at every trace); frozen, it is left exactly as loaded, as it is on the hub path.
    encoder.pooler_layer.trainable = False
    word_ids, mask, type_ids = _inputs(seq_len)
    outputs = encoder(dict(zip(INPUT_NAMES, (word_ids, mask, type_ids))))
    network = tf_keras.Model(inputs=[word_ids, mask, type_ids],
                             outputs=[outputs["sequence_output"], outputs["pooled_output"]], name="core_model")
    initializer = tf_keras.initializers.TruncatedNormal(stddev=initializer_range)
    labeler = models.BertSpanLabeler(network=network, initializer=initializer)
    start, end = labeler([word_ids, mask, type_ids])
    # Named as BertSpanLabeler names its outputs: the training labels are keyed by these names.
    start = tf_keras.layers.Activation("linear", dtype="float32", name="start_positions")(start)
    end = tf_keras.layers.Activation("linear", dtype="float32", name="end_positions")(end)
    return tf_keras.Model(inputs=[word_ids, mask, type_ids], outputs=[start, end], name="bert_span_labeler")


def create_qa_model_from_squad(module_path: str, seq_len: int, trainable: bool = True,
                               is_tf2: bool = False):
    """A QA model whose span head comes from a module already fine-tuned on SQuAD."""
    if is_tf2:
        raise ValueError("init_from_squad_model supports TF1 Hub-format modules only (is_tf2=False), "
                         "as in Model Maker")
    word_ids, mask, type_ids = _inputs(seq_len)
    squad = hub_format.TF1SignatureLayer(module_path, signature="squad", trainable=trainable)
    outputs = squad({"input_ids": word_ids, "input_mask": mask, "segment_ids": type_ids})
    start = tf_keras.layers.Lambda(tf.identity, name="start_positions")(outputs["start_logits"])
    end = tf_keras.layers.Lambda(tf.identity, name="end_positions")(outputs["end_logits"])
    return tf_keras.Model(inputs=[word_ids, mask, type_ids], outputs=[start, end])


def reinitialize(model, initializer_range: float = 0.02, seed: int = 0) -> None:
    """Re-draws every weight of ``model`` as BERT initialises it from scratch.

    Gives the "untrained" reference a trained model is compared with: same architecture,
    same inputs, no pretraining and no fine-tuning. Layer-norm scales become 1, offsets and
    biases 0, everything else truncated-normal with ``initializer_range``.
    """
    generator = tf.random.Generator.from_seed(seed)
    for variable in model.weights:
        name = variable.name.lower()
        if "gamma" in name:
            value = tf.ones(variable.shape, variable.dtype)
        elif "beta" in name or "bias" in name:
            value = tf.zeros(variable.shape, variable.dtype)
        elif variable.dtype.is_floating:
            value = tf.cast(generator.truncated_normal(variable.shape, stddev=initializer_range),
                            variable.dtype)
        else:
            continue
        variable.assign(value)
