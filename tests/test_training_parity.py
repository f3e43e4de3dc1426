"""Fine-tuning parity with Hugging Face, step by step.

A tiny BERT checkpoint (2 layers, hidden 32, the real uncased vocab) is written in Hugging
Face's format, converted by ``import_hf_checkpoint`` and fine-tuned by ``BertQaSpec.train``
with ``optimizer_recipe="huggingface"``; the same checkpoint is fine-tuned by
``transformers.BertForQuestionAnswering`` in PyTorch (``benchmarks/hf_qa_trainer.py``, in its
own environment). Dropout is off on both sides, both start from the same span-head weights
(PyTorch's initial ``qa_outputs``, copied into our head before the first step), and both see
the same 20 batches of real SQuAD-Shifts features in the same order.

What must agree (``_gaps`` measures each; ``TOLERANCES`` are about 10x the largest gap
measured between the two trainers, which is float32 rounding: PyTorch in float32 and in
float64, ``--float64``, differ by as much):

- ``loss``: the training loss of every step (Keras's own float32 value for that step);
- ``logits``: start/end logits of the trained models on held-out features;
- ``weights``: every trained parameter, element by element (an Adam step moves each by about
  the learning rate, 3e-4; the gap is 3e-7). Epsilon shows here: on elements whose gradients
  are small, AdamW's ``eps`` is a visible part of ``sqrt(v_hat) + eps``;
- ``decay``: the shrink factor of the parameters that only weight decay moves (the vocabulary
  rows no batch contains and the position rows beyond the sequence length, 95% of the
  model: their gradient is exactly zero, so Adam's step is zero and what is left is
  ``p *= 1 - lr * wd`` at every step). That isolates the weight-decay rate.

``test_optimizer_mutation_fails_parity`` holds the comparison to its purpose: our optimizer
with epsilon 1e-7 or 1e-6 instead of 1e-8, weight decay 0 or 0.1 instead of 0.01, no
gradient clipping, or Model Maker's recipe must each fail it by at least ``MUTATION_MARGIN``
times the tolerance. (Training the [PAD] embedding row, which PyTorch's ``padding_idx=0``
freezes and which this test found, moved the losses by 7e-4 within 20 steps.)
"""
from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest

from bert_qa import _env  # noqa: F401
from benchmarks import hf_env
from tests import dropout_masks, fixtures
from tests.fixtures import TINY_HF_CONFIG as TINY_CONFIG, tiny_hf_weights

SEQ_LEN, QUERY_LEN, DOC_STRIDE = 128, 32, 64
BATCH, STEPS, LEARNING_RATE = 8, 20, 3e-4
WEIGHT_DECAY, ADAM_EPSILON, MAX_GRAD_NORM = 0.01, 1e-8, 1.0  # run_qa.py / Trainer's defaults
# About 10x the largest gap measured between our "huggingface" recipe and PyTorch float32 here
# (the same on every run: both sides are deterministic); PyTorch float32 vs float64 alongside.
TOLERANCES = {
    "loss": 1e-5,     # measured 9.5e-7 (2 float32 ulps at 4.9); torch f32 vs f64 7.0e-7
    "logits": 2e-6,   # measured 1.6e-7 (centred per feature); torch f32 vs f64 1.5e-7
    "weights": 3e-6,  # measured 2.9e-7 (word embeddings); torch f32 vs f64 3.6e-7
    # Relative gap of the decay-only shrink (3.0e-5 over 20 steps); measured 1.8e-3: torch
    # multiplies by 1 - lr * wd rounded to float32 (ours is within 5e-5 of exact arithmetic).
    "decay": 2e-2,
}
MUTATION_MARGIN = 10  # a mutated optimizer must exceed some tolerance at least 10x
# Parameters whose gradient is zero in exact arithmetic (softmax ignores a uniform shift):
# attention key biases shift every score of a query alike, the last layer norm's offset and
# the span head's bias every logit of a feature alike. Adam turns each side's float noise
# there into steps of up to +-lr (8e-4 apart here), which change no loss and no prediction;
# the logits are compared up to that shift, and these parameters are left out of ``weights``.
SHIFT_ONLY = ("self_attention/key/bias",
              f"layer_{TINY_CONFIG['num_hidden_layers'] - 1}/output_layer_norm/beta",
              "predictions/transform/logits/bias")
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


def _step_recorder():
    """Each step's training loss, exactly as Keras computed it, and the rate the step applies.

    Keras logs the epoch's running float32 mean (``StepLogger`` recovers a step's loss from it
    to about 1e-5); resetting the metrics before every step makes the logged mean that one
    step's loss. Training is unaffected."""
    import tf_keras
    from bert_qa import optimization

    class _Recorder(tf_keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.losses, self.learning_rates = [], []

        def on_train_batch_begin(self, batch, logs=None):
            self.model.reset_metrics()
            optimizer = self.model.optimizer
            self.learning_rates.append(optimization.learning_rate_at(optimizer, optimizer.iterations))

        def on_train_batch_end(self, batch, logs=None):
            self.losses.append(float(logs["loss"]))

    return _Recorder()


def _train_ours(encoder_dir, train_file, eval_arrays, recipe, head_init, model_dir, strategy="off"):
    """Our training run: per-step losses and rates, held-out logits, trained variables."""
    from bert_qa import BertQaSpec, input_pipeline

    spec = BertQaSpec(uri=encoder_dir, seq_len=SEQ_LEN, query_len=QUERY_LEN, doc_stride=DOC_STRIDE,
                      learning_rate=LEARNING_RATE, distribution_strategy=strategy,
                      optimizer_recipe=recipe, model_dir=model_dir)
    recorder = _step_recorder()
    input_fn = input_pipeline.make_input_fn(spec, [train_file], is_training=True, batch_size=BATCH)
    model = spec.train(input_fn, epochs=1, steps_per_epoch=STEPS,
                       callbacks=[_head_initializer(head_init), recorder], verbose=0)
    inputs = {"input_word_ids": eval_arrays["input_ids"], "input_mask": eval_arrays["input_mask"],
              "input_type_ids": eval_arrays["segment_ids"]}
    start, end = model(inputs, training=False)
    return {"loss": np.array(recorder.losses), "lr": np.array(recorder.learning_rates),
            "start": np.asarray(start), "end": np.asarray(end),
            "weights": {v.name.split(":")[0]: v.numpy() for v in model.trainable_variables}}


def _in_our_layout(hf_tensors: dict) -> dict:
    """Hugging Face BertForQuestionAnswering parameters under our variable names and shapes."""
    from bert_qa import checkpoint_import

    tensors = {k[len("bert."):] if k.startswith("bert.") else k: v for k, v in hf_tensors.items()}
    mapping = checkpoint_import._weight_map(checkpoint_import.encoder_config_from_hf(CONFIG))
    ours = {name: transform(tensors[hf_name]) for name, (hf_name, transform) in mapping.items()
            if hf_name in tensors}  # the QA model has no pooler
    ours["predictions/transform/logits/kernel"] = tensors["qa_outputs.weight"].T
    ours["predictions/transform/logits/bias"] = tensors["qa_outputs.bias"]
    return ours


def _decay_shrink(weights, initial, decay_only) -> float:
    """1 - (the factor weight decay scaled the decay-only entries by), fitted in float64."""
    trained = np.concatenate([weights[k][m].ravel() for k, m in decay_only.items()]).astype(np.float64)
    start = np.concatenate([initial[k][m].ravel() for k, m in decay_only.items()]).astype(np.float64)
    return 1.0 - float(trained @ start / (start @ start))


def _gaps(run, reference):
    """How far a run of ours is from PyTorch's, per check in ``TOLERANCES`` (and where)."""
    def centred(x):
        return x - x.mean(axis=1, keepdims=True)

    loss = np.abs(run["loss"] - reference["loss"])
    logits = max(np.abs(centred(run[k]) - centred(reference[k])).max() for k in ("start", "end"))
    weights = {name: float(np.abs(run["weights"][name] - theirs).max())
               for name, theirs in reference["weights"].items() if not any(s in name for s in SHIFT_ONLY)}
    worst = max(weights, key=weights.get)
    ours_shrink = _decay_shrink(run["weights"], reference["initial"], reference["decay_only"])
    gaps = {"loss": float(loss.max()), "logits": float(logits), "weights": weights[worst],
            "decay": abs(ours_shrink - reference["shrink"]) / reference["shrink"]}
    where = {"loss": f"step {loss.argmax()}", "weights": worst,
             "decay": f"shrink {ours_shrink:.4e} vs torch {reference['shrink']:.4e}"}
    return gaps, where


def _report(label, gaps, where):
    print(f"{label}: " + "; ".join(f"{k} {v:.2e} = {v / TOLERANCES[k]:.3g}x tol"
                                   + (f" ({where[k]})" if k in where else "") for k, v in gaps.items()))


def _run_huggingface(checkpoint: str, data_dir, hf_out, decay_only: dict, extra_args: list,
                     head_init_file=None) -> dict:
    """PyTorch's run on ``data_dir``'s train.npz / eval.npz (the parity fixture's), in our layout.
    Its span head starts from ``head_init_file``; without one, PyTorch's own draw, which it writes."""
    command = hf_env.hf_python() + [
        hf_env.HF_TRAINER, "--checkpoint", checkpoint, "--train", str(data_dir / "train.npz"),
        "--eval", str(data_dir / "eval.npz"), "--out", str(hf_out), "--epochs", "1",
        "--batch-size", str(BATCH), "--learning-rate", str(LEARNING_RATE), "--no-shuffle",
        "--seed", "0", "--threads", "1", "--save-weights",
        "--weight-decay", str(WEIGHT_DECAY), "--adam-epsilon", str(ADAM_EPSILON),
        "--max-grad-norm", str(MAX_GRAD_NORM)] + extra_args
    if head_init_file:
        command += ["--head-init", str(head_init_file)]
    result = subprocess.run(command, env=hf_env.isolated_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(hf_out / "log.json") as f:
        hf_log = json.load(f)
    head_init = dict(np.load(head_init_file or hf_out / "head_init.npz"))
    hf_logits = np.load(hf_out / "eval_logits.npz")
    from safetensors.numpy import load_file

    initial = _in_our_layout({**load_file(os.path.join(checkpoint, "model.safetensors")),
                              "qa_outputs.weight": head_init["weight"], "qa_outputs.bias": head_init["bias"]})
    hf_weights = _in_our_layout(dict(np.load(hf_out / "weights.npz")))
    return {"loss": np.array(hf_log["loss"]), "lr": np.array(hf_log["lr"]),
            "start": hf_logits["start_logits"], "end": hf_logits["end_logits"],
            "weights": hf_weights, "initial": initial, "decay_only": decay_only,
            "shrink": _decay_shrink(hf_weights, initial, decay_only), "head_init": head_init}


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

    seen = np.zeros(CONFIG["vocab_size"], bool)
    seen[np.unique(arrays["input_ids"])] = True
    decay_only = {"word_embeddings/embeddings": ~seen,  # rows no batch contains
                  "position_embedding/embeddings": np.arange(CONFIG["max_position_embeddings"]) >= SEQ_LEN}
    reference = _run_huggingface(checkpoint, root, root / "hf_out", decay_only, ["--dropout", "0"])
    head_init = reference["head_init"]

    ours = _train_ours(encoder_dir, train_file, eval_arrays, "huggingface", head_init, str(root / "ours"))
    model_maker = _train_ours(encoder_dir, train_file, eval_arrays, "model_maker", head_init,
                              str(root / "model_maker"))
    with open(root / "ours_log.json", "w") as f:  # beside hf_out/log.json, for reading a failure
        json.dump({"loss": ours["loss"].tolist(), "lr": ours["lr"].tolist()}, f)
    return {"hf": reference, "ours": ours, "model_maker": model_maker, "root": root, "checkpoint": checkpoint,
            "encoder": encoder_dir, "train_file": train_file, "eval": eval_arrays, "head_init": head_init,
            "decay_only": decay_only}


def test_learning_rate_equals_huggingface_at_every_step(parity_run):
    hf_lrs = parity_run["hf"]["lr"]
    ours = parity_run["ours"]["lr"]
    assert len(hf_lrs) == len(ours) == STEPS
    assert hf_lrs[0] == 0.0 and hf_lrs.max() == pytest.approx(LEARNING_RATE)  # warmup 2 steps
    np.testing.assert_allclose(ours, hf_lrs, rtol=1e-6, atol=1e-12)
    # Model Maker's schedule decays from step 0: at the end of warmup it is 0.9x, not 1x.
    assert parity_run["model_maker"]["lr"][2] == pytest.approx(0.9 * LEARNING_RATE, rel=1e-6)


def test_losses_equal_huggingface_step_by_step(parity_run):
    hf_losses = parity_run["hf"]["loss"]
    ours = parity_run["ours"]["loss"]
    assert len(hf_losses) == len(ours) == STEPS
    print("step losses (hf, ours, |diff|):",
          list(zip(hf_losses.round(5), ours.round(5), np.abs(ours - hf_losses))))
    assert hf_losses[-5:].mean() < hf_losses[:5].mean() - 0.03, "the run must actually learn"
    gaps, where = _gaps(parity_run["ours"], parity_run["hf"])
    _report("ours vs PyTorch", gaps, where)
    assert gaps["loss"] < TOLERANCES["loss"], f"max |loss diff| {gaps['loss']:.2e} at {where['loss']}"


def test_trained_logits_equal_huggingface(parity_run):
    """Logits are compared up to a shift per feature (``SHIFT_ONLY`` says why)."""
    ours, hf = parity_run["ours"], parity_run["hf"]
    gaps, _ = _gaps(ours, hf)
    assert gaps["logits"] < TOLERANCES["logits"], f"max |centred logit diff| {gaps['logits']:.2e}"
    for k in ("start", "end"):
        assert (np.argmax(ours[k], axis=1) == np.argmax(hf[k], axis=1)).all()


def test_trained_weights_equal_huggingface(parity_run):
    """Every trained parameter (but the ``SHIFT_ONLY`` ones), and the decay-only shrink."""
    hf = parity_run["hf"]
    gaps, where = _gaps(parity_run["ours"], hf)
    _report("ours vs PyTorch", gaps, where)
    assert gaps["weights"] < TOLERANCES["weights"], \
        f"max |weight diff| {gaps['weights']:.2e} in {where['weights']}"
    assert gaps["decay"] < TOLERANCES["decay"], where["decay"]
    # The decay-only entries are what they are said to be: PyTorch moved them by weight decay
    # alone (an Adam step of ~lr on any of them would dwarf the 3e-5 shrink).
    exact = 1.0 - np.prod(1.0 - hf["lr"].astype(np.float64) * WEIGHT_DECAY)
    assert hf["shrink"] == pytest.approx(exact, rel=TOLERANCES["decay"])
    decay_only = hf["decay_only"]["word_embeddings/embeddings"]
    assert decay_only.mean() > 0.9 and not decay_only[0], "[PAD] is in every batch"


def test_huggingface_recipe_under_mirrored_strategy_matches(parity_run, tmp_path):
    """The PyTorch-style optimizer also runs under a distribution strategy (one replica here)."""
    mirrored = _train_ours(parity_run["encoder"], parity_run["train_file"], parity_run["eval"],
                           "huggingface", parity_run["head_init"], str(tmp_path / "m"), strategy="mirrored")
    gaps, where = _gaps(mirrored, parity_run["hf"])
    _report("mirrored vs PyTorch", gaps, where)
    assert all(gaps[k] < TOLERANCES[k] for k in TOLERANCES), (gaps, where)


# Each a change of our optimizer that the comparison must see: torch.optim.AdamW's epsilon is
# 1e-8 (Keras's default 1e-7, Model Garden's 1e-6), Trainer's weight decay 0.01, its clipping 1.0.
MUTATIONS = {
    "epsilon=1e-7": {"epsilon": 1e-7},
    "epsilon=1e-6": {"epsilon": 1e-6},
    "weight_decay=0": {"weight_decay_rate": 0.0},
    "weight_decay=0.1": {"weight_decay_rate": 0.1},
    "no_clipping": {"gradient_clip_norm": 0.0},
    "model_maker_recipe": None,
}


def test_huggingface_recipe_is_what_the_mutations_change():
    from bert_qa import optimization

    optimizer = optimization.create_optimizer("huggingface", LEARNING_RATE, STEPS, 2)
    assert isinstance(optimizer, optimization.TorchAdamW)
    assert (optimizer.epsilon, optimizer.weight_decay_rate, optimizer.gradient_clip_norm) == (
        ADAM_EPSILON, WEIGHT_DECAY, MAX_GRAD_NORM)


def test_model_maker_recipe_is_model_gardens_optimizer_with_dense_gradients():
    """``optimizer_recipe="model_maker"`` is Model Garden's ``create_optimizer``, hyperparameters,
    schedule, weight-decay exclusions and clipping norm included, given dense gradients: what
    Model Maker's TF Hub layer hands it, where the natively rebuilt encoder's embedding lookups
    give ``tf.IndexedSlices`` (``bert_qa.optimization.DenseGradientsAdamW``)."""
    import tensorflow as tf
    from official.nlp import optimization as model_garden_optimization

    from bert_qa import optimization

    ours = optimization.create_optimizer("model_maker", 1e-3, 100, 10)
    theirs = model_garden_optimization.create_optimizer(1e-3, 100, 10)
    assert isinstance(ours, type(theirs)) and isinstance(ours, optimization.DenseGradientsAdamW)
    assert ours.get_config() == theirs.get_config()
    assert [float(ours.learning_rate(s)) for s in (0, 5, 10, 50, 99)] == [
        float(theirs.learning_rate(s)) for s in (0, 5, 10, 50, 99)]
    assert ours.gradient_clip_norm == theirs.gradient_clip_norm == 1.0
    names = ["bert_encoder/word_embeddings/embeddings:0", "transformer/layer_0/output_layer_norm/gamma:0",
             "embeddings/layer_norm/beta:0", "transformer/layer_0/self_attention/query/bias:0",
             "transformer/layer_0/self_attention/query/kernel:0"]
    assert [ours._do_use_weight_decay(n) for n in names] == [theirs._do_use_weight_decay(n) for n in names] == [
        True, False, False, False, True]
    sparse = tf.IndexedSlices(tf.ones([2, 3]), tf.constant([1, 1]), tf.constant([4, 3]))
    dense = ours._dense(sparse, None)
    assert not isinstance(dense, tf.IndexedSlices)
    np.testing.assert_array_equal(dense.numpy(), [[0, 0, 0], [2, 2, 2], [0, 0, 0], [0, 0, 0]])


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_optimizer_mutation_fails_parity(parity_run, mutation, monkeypatch, tmp_path):
    """Our side only, against the fixture's PyTorch run: the gap exceeds a tolerance clearly."""
    from bert_qa import optimization

    overrides = MUTATIONS[mutation]
    if overrides is None:
        run = parity_run["model_maker"]
    else:
        built, real = [], optimization.TorchAdamW

        def mutated(**kwargs):
            built.append(real(**{**kwargs, **overrides}))
            return built[-1]

        monkeypatch.setattr(optimization, "TorchAdamW", mutated)
        run = _train_ours(parity_run["encoder"], parity_run["train_file"], parity_run["eval"],
                          "huggingface", parity_run["head_init"], str(tmp_path / "ours"))
        assert len(built) == 1 and all(getattr(built[0], k) == v for k, v in overrides.items())
    gaps, where = _gaps(run, parity_run["hf"])
    _report(mutation, gaps, where)
    ratios = {k: gaps[k] / TOLERANCES[k] for k in gaps}
    worst = max(ratios, key=ratios.get)
    assert ratios[worst] >= MUTATION_MARGIN, f"{mutation} passes parity: gap/tolerance {ratios}"


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


# -- dropout on, the same masks on both sides (issue 23) -----------------------------------------

# Two different rates, so that a site dropped at the other one's rate shows.
DROPOUT_RATES = {"hidden_dropout_prob": 0.25, "attention_probs_dropout_prob": 0.1}


@pytest.fixture(scope="module")
def masked_parity_run(parity_run, tmp_path_factory):
    """The parity run again with dropout on: the same checkpoint at ``DROPOUT_RATES``, and one
    set of keep masks (``tests/dropout_masks.py``) used at every step by both trainers, ours
    traced into our training step (the float32 path: the encoder rebuilt natively, as since
    issue 23 every encoder that records its shape is), PyTorch's put at the same sites of
    ``BertForQuestionAnswering``. Same batches, same head."""
    import shutil

    from bert_qa.checkpoint_import import import_hf_checkpoint

    root = tmp_path_factory.mktemp("masked_parity")
    checkpoint = str(root / "hf")
    shutil.copytree(parity_run["checkpoint"], checkpoint)
    with open(os.path.join(checkpoint, "config.json")) as f:
        config = {**json.load(f), **DROPOUT_RATES}
    with open(os.path.join(checkpoint, "config.json"), "w") as f:
        json.dump(config, f)
    keep = dropout_masks.keep_masks(config, BATCH, SEQ_LEN, seed=5)
    np.savez(root / "masks.npz", **keep)
    encoder = import_hf_checkpoint(checkpoint, str(root / "encoder"), do_lower_case=True)
    reference = _run_huggingface(checkpoint, parity_run["root"], root / "hf_out", parity_run["decay_only"],
                                 ["--dropout-masks", str(root / "masks.npz")],
                                 head_init_file=parity_run["root"] / "hf_out" / "head_init.npz")
    with dropout_masks.masks_injected(keep) as sites:  # traced into our training step
        ours = _train_ours(encoder, parity_run["train_file"], parity_run["eval"], "huggingface",
                           parity_run["head_init"], str(root / "ours"))
    assert sites == set(keep), sites
    return {"hf": reference, "ours": ours, "encoder": encoder, "root": root, "keep": keep}


def test_with_dropout_on_and_the_same_masks_training_equals_huggingface(masked_parity_run, parity_run):
    """Dropout on, the same masks: the same losses at every step, the same trained weights and
    held-out logits, within the dropout-off test's tolerances. Gradients through every dropout
    site, the span head's gradient and the global-norm clipping they feed (issue 23's sixth
    candidate) meet here, over 20 steps whose gradients the clipping scales."""
    ours, hf = masked_parity_run["ours"], masked_parity_run["hf"]
    # The masks act: each side's losses move far from its dropout-off run.
    assert float(np.abs(hf["loss"] - parity_run["hf"]["loss"]).max()) > 100 * TOLERANCES["loss"]
    assert float(np.abs(ours["loss"] - parity_run["ours"]["loss"]).max()) > 100 * TOLERANCES["loss"]
    gaps, where = _gaps(ours, hf)
    _report("dropout on, same masks", gaps, where)
    for check, gap in gaps.items():
        assert gap < TOLERANCES[check], (check, gap, where.get(check))


def test_with_dropout_on_no_clipping_fails_parity(masked_parity_run, parity_run, monkeypatch, tmp_path):
    """The same-masks comparison has teeth where the sixth candidate lives: without gradient
    clipping, our run with dropout on leaves PyTorch's by more than ``MUTATION_MARGIN`` times a
    tolerance."""
    from bert_qa import optimization

    real = optimization.TorchAdamW
    monkeypatch.setattr(optimization, "TorchAdamW", lambda **kwargs: real(**{**kwargs, **MUTATIONS["no_clipping"]}))
    with dropout_masks.masks_injected(masked_parity_run["keep"]):
        run = _train_ours(masked_parity_run["encoder"], parity_run["train_file"], parity_run["eval"],
                          "huggingface", parity_run["head_init"], str(tmp_path / "ours"))
    gaps, where = _gaps(run, masked_parity_run["hf"])
    _report("dropout on, same masks, no clipping", gaps, where)
    ratios = {k: gaps[k] / TOLERANCES[k] for k in gaps}
    assert max(ratios.values()) >= MUTATION_MARGIN, f"no clipping passes parity with dropout on: {ratios}"
