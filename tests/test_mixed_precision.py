"""Mixed-precision training: the encoder rebuilt natively follows the policy, its weights are
the SavedModel's, and what comes out (logits, SavedModel, TFLite) is float32 and scores."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from bert_qa import BertQaSpec, DataLoader, hub_format, modeling, question_answer
from tests import fixtures

SEQ = 96


def _spec(encoder, tmp_path, policy, **kwargs):
    return BertQaSpec(uri=encoder, model_dir=str(tmp_path / f"model_{policy}"), seq_len=SEQ, query_len=24,
                      doc_stride=48, learning_rate=1e-3, distribution_strategy="off", default_batch_size=8,
                      optimizer_recipe="huggingface", mixed_precision=policy, **kwargs)


def test_native_encoder_is_the_savedmodel(tiny_encoder):
    """Same weights, same outputs as the hub.KerasLayer model (float32, inference)."""
    config = hub_format.encoder_config_of(tiny_encoder)
    assert config == fixtures.tiny_encoder_config()
    tf_keras.utils.set_random_seed(3)
    hub_model, _ = modeling.create_qa_model(tiny_encoder, SEQ)
    native = modeling.create_native_qa_model(tiny_encoder, SEQ, config)
    # The span head is initialised separately in each; give both the same head.
    head = [w for w in hub_model.weights if "span_labeling" in w.name or "logits" in w.name]
    assert head, [w.name for w in hub_model.weights][-4:]
    by_name = {w.name: w for w in native.weights}
    for w in head:
        by_name[w.name].assign(w)
    ids = np.random.default_rng(0).integers(1000, 20000, size=(3, SEQ)).astype(np.int32)
    x = [ids, np.ones_like(ids), np.zeros_like(ids)]
    for a, b in zip(hub_model(x, training=False), native(x, training=False)):
        assert float(tf.reduce_max(tf.abs(a - b))) < 1e-5


@pytest.mark.parametrize("policy", ["mixed_bfloat16"])
def test_mixed_precision_trains_exports_and_scores(tiny_encoder, tmp_path, policy):
    train_file = fixtures.write_squad(str(tmp_path / "train.json"),
                                      fixtures.squad_subset("english_tydiqa_train.json", 48, True))
    spec = _spec(tiny_encoder, tmp_path, policy)
    train = DataLoader.from_squad(train_file, spec, is_training=True, cache_dir=str(tmp_path / "cache"))
    evaluation = DataLoader.from_squad(train_file, spec, is_training=False, cache_dir=str(tmp_path / "cache"))
    # Under the policy the encoder really computes in bfloat16 (a loaded SavedModel would not).
    training_model = spec._training_model()
    dtypes = {l.compute_dtype for l in training_model.submodules if hasattr(l, "compute_dtype")}
    assert "bfloat16" in dtypes, dtypes
    assert all(o.dtype == tf.float32 for o in training_model.outputs)
    assert tf_keras.mixed_precision.global_policy().name == "float32"  # left as it was
    model = question_answer.create(train, spec, epochs=2, batch_size=8, shuffle=True)
    assert spec.training_precision == policy
    assert all(w.dtype == tf.float32 for w in model.model.weights)
    computed = {l.compute_dtype for l in model.model.submodules if hasattr(l, "compute_dtype")}
    assert "float32" in computed and not computed & {"bfloat16", "float16"}, computed
    metrics = model.evaluate(evaluation)
    assert 0.0 <= metrics["final_f1"] <= 1.0
    from bert_qa.export import QuantizationConfig

    from bert_qa.question_answer import ExportFormat

    written = model.export(str(tmp_path / "export"), quantization_config=QuantizationConfig.for_float32(),
                           export_format=(ExportFormat.TFLITE, ExportFormat.SAVED_MODEL))
    lite = model.evaluate_tflite(written["tflite"], evaluation)
    assert abs(lite["f1"] - metrics["f1"]) < 0.01  # the float32 .tflite answers as the model does
    assert json.load(open(os.path.join(written["saved_model"], "assets.extra", "bert_qa_export.json")))[
        "args"]["mixed_precision"] == policy


def test_mixed_float16_is_loss_scaled_and_trains(tiny_encoder, tmp_path):
    train_file = fixtures.write_squad(str(tmp_path / "train.json"),
                                      fixtures.squad_subset("english_tydiqa_train.json", 24, True))
    spec = _spec(tiny_encoder, tmp_path, "mixed_float16")
    train = DataLoader.from_squad(train_file, spec, is_training=True, cache_dir=str(tmp_path / "cache"))
    model = question_answer.create(train, spec, epochs=1, batch_size=8)
    assert all(np.isfinite(w).all() for w in model.model.get_weights())


def test_mixed_precision_needs_a_recorded_encoder_shape(tiny_encoder, tmp_path):
    bare = tmp_path / "bare"
    import shutil

    shutil.copytree(tiny_encoder, bare)
    os.remove(bare / hub_format.ENCODER_CONFIG_FILE)
    spec = _spec(str(bare), tmp_path, "mixed_bfloat16")
    with pytest.raises(ValueError, match="does not record"):
        spec._training_model()
    with pytest.raises(ValueError, match="mixed_precision must be one of"):
        _spec(tiny_encoder, tmp_path, "bfloat16")


def test_auto_picks_bf16_only_where_the_cpu_has_it(monkeypatch, tiny_encoder, tmp_path):
    from bert_qa import spec as spec_module

    monkeypatch.setattr(spec_module, "native_bf16_cpu", lambda: True)
    assert spec_module.resolve_mixed_precision("auto") == "mixed_bfloat16"
    assert spec_module.resolve_mixed_precision("float32") == "float32"
    monkeypatch.setattr(spec_module, "native_bf16_cpu", lambda: False)
    assert spec_module.resolve_mixed_precision("auto") == "float32"
    # An encoder that cannot be rebuilt natively trains in float32 under "auto" (an error if asked).
    monkeypatch.setattr(spec_module, "native_bf16_cpu", lambda: True)
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(tiny_encoder, bare)
    os.remove(bare / hub_format.ENCODER_CONFIG_FILE)
    spec = _spec(str(bare), tmp_path, "auto")
    model = spec._training_model()
    assert spec.training_precision == "float32" and all(o.dtype == tf.float32 for o in model.outputs)
