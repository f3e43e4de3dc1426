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


def _dropout_losses(encoder, tmp_path, seed, steps=3):
    """Training losses of ``steps`` steps on one fixed batch at a learning rate too small to move
    the weights: what changes from step to step, and from seed to seed, is the dropout masks."""
    spec = BertQaSpec(uri=encoder, model_dir=str(tmp_path / f"dropout_{seed}"), seq_len=SEQ, query_len=24,
                      doc_stride=48, learning_rate=1e-30, distribution_strategy="off",
                      optimizer_recipe="huggingface", mixed_precision="float32")
    rng = np.random.default_rng(0)
    x = {"input_word_ids": rng.integers(1000, 20000, size=(4, SEQ)).astype(np.int32),
         "input_mask": np.ones((4, SEQ), np.int32), "input_type_ids": np.zeros((4, SEQ), np.int32)}
    labels = {"start_positions": np.array([3, 5, 7, 9], np.int32), "end_positions": np.array([4, 6, 8, 10], np.int32)}
    losses = []

    class Record(tf_keras.callbacks.Callback):
        def on_train_begin(self, logs=None):  # one span head for every seed: only masks differ
            head = [w for w in self.model.trainable_weights if "span_labeling" in w.name or "logits" in w.name]
            assert head, [w.name for w in self.model.trainable_weights][-3:]
            for w in head:
                w.assign(np.random.default_rng(7).normal(0, 0.02, w.shape).astype(np.float32))

        def on_train_batch_end(self, batch, logs=None):
            losses.append(float(logs["loss"]))

    tf_keras.utils.set_random_seed(seed)
    spec.train(lambda: tf.data.Dataset.from_tensors((x, labels)).repeat(), epochs=1, steps_per_epoch=steps,
               callbacks=[Record()], verbose=0)
    return spec, np.array(losses)


def test_float32_dropout_masks_follow_the_seed(tiny_encoder, tmp_path):
    """Issue 23: float32 training rebuilds a recorded encoder natively, so its dropout masks come
    from the global seed: the same seed draws the same masks, another seed other masks (as
    ``torch.manual_seed`` does for Hugging Face's trainer). A loaded TF Hub layer (an encoder
    with no recorded shape, the fallback; before the fix, every encoder) draws the masks its
    export fixed, whatever the seed: the same losses to the bit."""
    spec, first = _dropout_losses(tiny_encoder, tmp_path, seed=1)
    assert spec.training_precision == "float32"
    assert len(set(first.round(7))) == len(first)  # new masks at every step
    _, again = _dropout_losses(tiny_encoder, tmp_path, seed=1)
    np.testing.assert_array_equal(first, again)
    _, other = _dropout_losses(tiny_encoder, tmp_path, seed=2)
    assert float(np.abs(first - other).min()) > 1e-4, (first, other)
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(tiny_encoder, bare)
    os.remove(bare / hub_format.ENCODER_CONFIG_FILE)
    _, hub_1 = _dropout_losses(str(bare), tmp_path, seed=1)
    _, hub_2 = _dropout_losses(str(bare), tmp_path, seed=2)
    assert len(set(hub_1.round(7))) == len(hub_1)
    np.testing.assert_array_equal(hub_1, hub_2)  # the seed reaches no mask


def _dropout_masks(model, inputs, calls=2):
    """Each Dropout layer of ``model`` -> the 0/1 "dropped" masks it drew in ``calls`` training
    calls of one traced function (the layers' ``call`` wrapped before tracing)."""
    masks = {}

    # Walked by hand for each site's path ("/self_attention/" marks the attention-probability
    # sites): Keras has no public listing of a layer's direct sublayers (``submodules`` is flat).
    def walk(layer, prefix):
        for child in getattr(layer, "_self_tracked_trackables", None) or []:
            if isinstance(child, tf_keras.layers.Layer):
                name = f"{prefix}/{child.name}"
                if isinstance(child, tf_keras.layers.Dropout):
                    yield name, child
                yield from walk(child, name)

    sites = dict(walk(model, ""))
    drawn = {}
    for name, layer in sites.items():
        def call(x, training=None, _call=layer.call, _name=name):
            y = _call(x, training=training)
            drawn[_name] = tf.cast(tf.equal(y, 0.0), tf.float32)
            return y
        layer.call = call

    @tf.function
    def draw():
        model(inputs, training=True)
        return dict(drawn)

    for _ in range(calls):
        for name, mask in draw().items():
            masks.setdefault(name, []).append(mask.numpy())
    return sites, masks


def test_native_training_encoder_draws_independent_masks_at_its_rates(tiny_encoder, tmp_path):
    """Issue 23, on the path float32 training now takes: the rebuilt encoder has BERT's dropout
    sites (after the embeddings' LayerNorm; per layer the attention probabilities, the attention
    output and the feed-forward output), each drops its config's rate, no two sites draw the same
    mask, and a site draws a new mask at every call of one traced step (two independent Bernoulli
    masks agree on p^2 + (1-p)^2 of their entries), as ``torch.nn.Dropout`` does in Hugging Face's
    trainer. Planted: giving every Dropout layer one seed makes the same-shaped sites identical."""
    config = hub_format.encoder_config_of(tiny_encoder)
    tf_keras.utils.set_random_seed(5)
    model = _spec(tiny_encoder, tmp_path, "float32")._training_model()
    rng = np.random.default_rng(0)
    batch = 16
    inputs = [rng.integers(1000, 20000, size=(batch, SEQ)).astype(np.int32),
              np.ones((batch, SEQ), np.int32), np.zeros((batch, SEQ), np.int32)]
    sites, masks = _dropout_masks(model, inputs)
    live = {name: layer.rate for name, layer in sites.items() if layer.rate > 0}
    attention = {n for n in live if "/self_attention/" in n}
    assert len(live) == 1 + 3 * config.num_hidden_layers, sorted(live)
    assert len(attention) == config.num_hidden_layers
    for name, rate in live.items():
        want = config.attention_probs_dropout_prob if name in attention else config.hidden_dropout_prob
        assert rate == pytest.approx(want), name
        first, second = masks[name]
        sd = np.sqrt(rate * (1 - rate) / first.size)
        assert abs(first.mean() - rate) < 5 * sd, (name, first.mean())
        agree = rate ** 2 + (1 - rate) ** 2
        assert abs((first == second).mean() - agree) < 5 * np.sqrt(agree * (1 - agree) / first.size), name
    names = sorted(live)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if masks[a][0].shape == masks[b][0].shape:
                assert not np.array_equal(masks[a][0], masks[b][0]), (a, b)
