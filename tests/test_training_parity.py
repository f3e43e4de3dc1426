"""Fine-tuning parity with Hugging Face, step by step.

A tiny BERT checkpoint (2 layers, hidden 32, the real uncased vocab) is written in Hugging
Face's format, converted by ``import_hf_checkpoint`` and fine-tuned by ``BertQaSpec.train``
with ``optimizer_recipe="huggingface"``; the same checkpoint is fine-tuned by
``transformers.BertForQuestionAnswering`` in PyTorch (``benchmarks/hf_qa_trainer.py``, in its
own environment). Dropout is off on both sides, both start from the same span-head weights
(PyTorch's initial ``qa_outputs``, copied into our head before the first step), and both see
the same 20 batches of real SQuAD-Shifts features in the same order.

What must agree, at every step: the learning rate applied (to float32 rounding of the same
formula), and the training loss. The loss tolerance, 5e-5 (1e-5 relative to losses near 4.9),
comes from float32: PyTorch in float32 and in float64 (``--float64``) agree to 7e-7 over these
20 steps; our per-step loss is recovered from Keras's running float32 mean (error ~1e-5 by
step 20); measured here, ours vs PyTorch stays below 7e-6. The test sees differences far
smaller than the ones that cost quality: training the [PAD] embedding row (which PyTorch's
``padding_idx=0`` freezes, and which this test found) moved the losses by 7e-4 within 20
steps; Model Maker's recipe on the same batches (below) moves them by more; a wrong
output/label order, swapped mask and type-ids inputs, a loss scale of 2 or dropout left on
would move them by far more. After training, both models' start/end logits on held-out
features agree too.
"""
from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest

from bert_qa import _env  # noqa: F401
from benchmarks import hf_env
from tests import fixtures
from tests.test_checkpoint_import import TINY_CONFIG, tiny_hf_weights

SEQ_LEN, QUERY_LEN, DOC_STRIDE = 128, 32, 64
BATCH, STEPS, LEARNING_RATE = 8, 20, 3e-4
LOSS_TOL = 5e-5
LOGIT_TOL = 2e-4
# The import tests' tiny BERT, with the real vocab's size and no dropout.
CONFIG = {**TINY_CONFIG, "vocab_size": 30522, "max_position_embeddings": 512,
          "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


def _write_checkpoint(directory: str) -> str:
    from safetensors.numpy import save_file

    os.makedirs(directory)
    weights = tiny_hf_weights(CONFIG, seed=3)
    # Real-checkpoint-like scales: large random weights would saturate the tiny network.
    for name in weights:
        if name.endswith(".weight") and "LayerNorm" not in name:
            weights[name] = (weights[name] * 0.1).astype(np.float32)
    save_file(weights, os.path.join(directory, "model.safetensors"))
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(CONFIG, f)
    with open(fixtures.minilm_vocab(), "rb") as src, open(os.path.join(directory, "vocab.txt"), "wb") as dst:
        dst.write(src.read())
    return directory


def _articles(n_questions: int, skip: int = 0):
    articles, seen = [], 0
    for article in fixtures.new_wiki_articles():
        paragraphs = []
        for p in article["paragraphs"]:
            qas = []
            for qa in p["qas"]:
                seen += 1
                if skip < seen <= skip + n_questions:
                    qas.append(qa)
            if qas:
                paragraphs.append({"context": p["context"], "qas": qas})
        if paragraphs:
            articles.append({"title": article["title"], "paragraphs": paragraphs})
        if seen >= skip + n_questions:
            return articles
    return articles


def _head_initializer(head_init):
    """A callback that copies PyTorch's initial qa_outputs (weight [2, H], bias [2]) into our head."""
    import tf_keras

    class _CopyHead(tf_keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            hf_env.copy_span_head(self.model, head_init)

    return _CopyHead()


def _train_ours(encoder_dir, train_file, eval_arrays, recipe, head_init, model_dir, strategy="off"):
    from bert_qa import BertQaSpec, input_pipeline
    from bert_qa.callbacks import StepLogger

    spec = BertQaSpec(uri=encoder_dir, seq_len=SEQ_LEN, query_len=QUERY_LEN, doc_stride=DOC_STRIDE,
                      learning_rate=LEARNING_RATE, distribution_strategy=strategy,
                      optimizer_recipe=recipe, model_dir=model_dir)
    recorder = StepLogger()
    input_fn = input_pipeline.make_input_fn(spec, [train_file], is_training=True, batch_size=BATCH)
    model = spec.train(input_fn, epochs=1, steps_per_epoch=STEPS,
                       callbacks=[_head_initializer(head_init), recorder], verbose=0)
    inputs = {"input_word_ids": eval_arrays["input_ids"], "input_mask": eval_arrays["input_mask"],
              "input_type_ids": eval_arrays["segment_ids"]}
    start, end = model(inputs, training=False)
    return recorder, np.asarray(start), np.asarray(end)


@pytest.fixture(scope="module")
def parity_run(tmp_path_factory):
    from bert_qa import BertQaSpec, DataLoader
    from bert_qa.checkpoint_import import import_hf_checkpoint

    root = tmp_path_factory.mktemp("parity")
    checkpoint = _write_checkpoint(str(root / "hf"))
    encoder_dir = import_hf_checkpoint(checkpoint, str(root / "encoder"), do_lower_case=True)
    spec = BertQaSpec(uri=encoder_dir, seq_len=SEQ_LEN, query_len=QUERY_LEN, doc_stride=DOC_STRIDE,
                      distribution_strategy="off")
    train = DataLoader.from_squad(fixtures.write_squad(str(root / "train.json"), _articles(200)), spec,
                                  is_training=True, multi_answer="first", cache_dir=str(root / "cache"))
    dev = DataLoader.from_squad(fixtures.write_squad(str(root / "dev.json"), _articles(8, skip=400)),
                                spec, is_training=False, cache_dir=str(root / "cache"))
    assert len(train) >= BATCH * STEPS
    arrays = hf_env.feature_arrays(train.tfrecord_file, spec, is_training=True)
    arrays = {k: v[:BATCH * STEPS] for k, v in arrays.items()}
    assert (arrays["start_positions"] > 0).sum() > BATCH * STEPS // 2, "most batches must hold answers"
    np.savez(root / "train.npz", **arrays)
    train_file = str(root / "train.tfrecord")  # exactly these features, in this order
    from bert_qa import input_pipeline
    import tensorflow as tf

    with tf.io.TFRecordWriter(train_file) as writer:
        for i, record in enumerate(tf.data.TFRecordDataset(train.tfrecord_file)):
            if i == BATCH * STEPS:
                break
            writer.write(record.numpy())
    eval_arrays = hf_env.feature_arrays(dev.tfrecord_file, spec, is_training=False)
    eval_arrays = {"input_ids": eval_arrays["input_ids"], "input_mask": eval_arrays["input_mask"],
                   "segment_ids": eval_arrays["segment_ids"], "unique_ids": eval_arrays["unique_ids"]}
    np.savez(root / "eval.npz", **eval_arrays)

    hf_out = root / "hf_out"
    command = hf_env.hf_python() + [
        hf_env.HF_TRAINER, "--checkpoint", checkpoint, "--train", str(root / "train.npz"),
        "--eval", str(root / "eval.npz"), "--out", str(hf_out), "--epochs", "1",
        "--batch-size", str(BATCH), "--learning-rate", str(LEARNING_RATE), "--no-shuffle",
        "--dropout", "0", "--seed", "0", "--threads", "1"]
    result = subprocess.run(command, env=hf_env.isolated_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(hf_out / "log.json") as f:
        hf_log = json.load(f)
    head_init = dict(np.load(hf_out / "head_init.npz"))
    hf_logits = np.load(hf_out / "eval_logits.npz")

    ours = _train_ours(encoder_dir, train_file, eval_arrays, "huggingface", head_init, str(root / "ours"))
    model_maker = _train_ours(encoder_dir, train_file, eval_arrays, "model_maker", head_init,
                              str(root / "model_maker"))
    with open(root / "ours_log.json", "w") as f:  # beside hf_out/log.json, for reading a failure
        json.dump({"loss": ours[0].losses, "lr": ours[0].learning_rates}, f)
    return {"hf": hf_log, "hf_logits": hf_logits, "ours": ours, "model_maker": model_maker,
            "root": root, "encoder": encoder_dir}


def test_learning_rate_equals_huggingface_at_every_step(parity_run):
    hf_lrs = np.array(parity_run["hf"]["lr"])
    ours = np.array(parity_run["ours"][0].learning_rates)
    assert len(hf_lrs) == len(ours) == STEPS
    assert hf_lrs[0] == 0.0 and hf_lrs.max() == pytest.approx(LEARNING_RATE)  # warmup 2 steps
    np.testing.assert_allclose(ours, hf_lrs, rtol=1e-6, atol=1e-12)
    # Model Maker's schedule decays from step 0: at the end of warmup it is 0.9x, not 1x.
    mm = np.array(parity_run["model_maker"][0].learning_rates)
    assert mm[2] == pytest.approx(0.9 * LEARNING_RATE, rel=1e-6)


def test_losses_equal_huggingface_step_by_step(parity_run):
    hf_losses = np.array(parity_run["hf"]["loss"])
    ours = np.array(parity_run["ours"][0].losses)
    assert len(hf_losses) == len(ours) == STEPS
    diff = np.abs(ours - hf_losses)
    print("step losses (hf, ours, |diff|):", list(zip(hf_losses.round(5), ours.round(5), diff)))
    assert hf_losses[-5:].mean() < hf_losses[:5].mean() - 0.03, "the run must actually learn"
    assert diff.max() < LOSS_TOL, f"max |loss diff| {diff.max():.2e} at step {diff.argmax()}"
    # The test can see a recipe difference: Model Maker's optimizer on the same batches.
    mm = np.array(parity_run["model_maker"][0].losses)
    assert np.abs(mm - hf_losses).max() > 10 * LOSS_TOL


def test_trained_logits_equal_huggingface(parity_run):
    """Logits are compared up to a shift per feature: the span head's biases (and the last
    layer norm's offset) get a zero gradient in exact arithmetic (softmax ignores a uniform
    shift), so Adam turns each side's float noise there into steps of +-lr that move every
    logit of a feature alike (8e-4 here) and change no prediction and no loss."""
    _, start, end = parity_run["ours"]
    hf = parity_run["hf_logits"]

    def centred(x):
        return x - x.mean(axis=1, keepdims=True)

    for ours, theirs in ((start, hf["start_logits"]), (end, hf["end_logits"])):
        np.testing.assert_allclose(centred(ours), centred(theirs), atol=LOGIT_TOL)
        assert (np.argmax(ours, axis=1) == np.argmax(theirs, axis=1)).all()


def test_huggingface_recipe_under_mirrored_strategy_matches(parity_run, tmp_path):
    """The PyTorch-style optimizer also runs under a distribution strategy (one replica here)."""
    root = parity_run["root"]
    mirrored = _train_ours(parity_run["encoder"], str(root / "train.tfrecord"),
                           dict(np.load(root / "eval.npz")), "huggingface",
                           dict(np.load(root / "hf_out" / "head_init.npz")), str(tmp_path / "m"),
                           strategy="mirrored")
    np.testing.assert_allclose(mirrored[0].losses, parity_run["ours"][0].losses, atol=LOSS_TOL)


def _dropout_rates(saved_model_dir: str):
    """Rates of the dropout ops in the encoder's training and inference traces."""
    import collections

    import tensorflow as tf

    loaded = tf.saved_model.load(saved_model_dir)
    traces = {}
    for function in loaded.__call__.concrete_functions:
        training = function.structured_input_signature[0][1] if len(function.structured_input_signature[0]) > 1 else None
        graph = function.graph.as_graph_def()
        rates = collections.Counter()
        for library_function in graph.library.function:
            consts = {n.name: n for n in library_function.node_def if n.op == "Const"}
            for node in library_function.node_def:
                if node.op == "GreaterEqual" and node.input[1].split(":")[0] in consts:
                    const = consts[node.input[1].split(":")[0]]
                    rates[round(float(tf.make_ndarray(const.attr["value"].tensor)), 6)] += 1
        traces[training] = rates
    return traces


def test_exported_encoder_has_berts_dropout_when_training_only(tmp_path):
    """Dropout as BERT places it (embeddings; per layer: attention probabilities, attention
    output, feed-forward output: 1 + 3 x layers sites, Hugging Face's count too) at the
    checkpoint's rate in the training trace, and none in the inference trace."""
    from bert_qa.checkpoint_import import import_hf_checkpoint

    checkpoint = _write_checkpoint(str(tmp_path / "hf"))
    with open(os.path.join(checkpoint, "config.json")) as f:
        config = json.load(f)
    config.update(hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    with open(os.path.join(checkpoint, "config.json"), "w") as f:
        json.dump(config, f)
    encoder = import_hf_checkpoint(checkpoint, str(tmp_path / "encoder"), do_lower_case=True)
    traces = _dropout_rates(encoder)
    assert traces[True] == {0.1: 1 + 3 * CONFIG["num_hidden_layers"]}, traces
    assert traces[False] == {}, traces
