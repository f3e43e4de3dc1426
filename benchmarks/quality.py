"""Fine-tuning quality: our trainer vs Hugging Face transformers, same data, same scorer.

    uv run python benchmarks/quality.py                 # the issue's protocol (about 1.5 h on 2 cores)
    uv run python benchmarks/quality.py --seq-len 256   # shorter windows, about 40 min
    uv run python benchmarks/quality.py --seeds 1,2,3,4,5 --rows ours_huggingface,huggingface \
        --protocol in_domain --workdir runs/seeds_in_domain     # the seed study (hours: resumable)

Protocol (defaults): the packaged all-MiniLM-L6-v2 fine-tuned on the first 4,000 questions of
SQuAD-Shifts ``new_wiki_v1.0.json`` (first answer of each), seq_len 384, doc_stride 128,
query_len 64, batch 16, learning rate 8e-5, AdamW (weight decay 0.01), 10% warmup then
linear decay, 1 epoch, features reshuffled; scored with the official SQuAD v1.1 scorer on the
first 2,000 questions of ``amazon_reviews_v1.0.json`` (another domain, never trained on).

Both trainers read the same squad_lib features (written by ``bert_qa``'s windowing), and
both sides' raw logits go through the same ``squad_lib.postprocess_output`` and the same
official scorer, so the table compares the trainers and nothing else. The Hugging Face side
(``hf_qa_trainer.py``: ``BertForQuestionAnswering``, ``torch.optim.AdamW``,
``get_linear_schedule_with_warmup``, clipping at 1.0, from the same safetensors checkpoint)
runs in its own environment (``hf_env.py``), never in the project's lock.

``--parity-steps N`` instead checks the trainers' arithmetic at full size: both sides with dropout
off, the same features in the same order, the same initial span head, N steps; it prints both
losses per step (the suite's ``tests/test_training_parity.py`` does the same on a tiny BERT).
``--parity-steps all`` does so for the whole run, on the features in one fixed random order,
and scores both trained models: every source of randomness shared, so the F1s compare the
trainers' arithmetic over a full fine-tuning run.

Two protocols (``--protocol``): ``public`` is the one above (train on New Wikipedia, score on
Amazon reviews); ``in_domain`` trains on whole New Wikipedia articles from the start of the file
and scores on whole articles from its end, never trained on (``--train-questions`` and
``--eval-questions`` are rounded up to whole articles; overlapping ones are refused).

The seed study (``--seeds``): every row runs once per seed; each (row, seed) result is kept in
``results.json`` as soon as it finishes, so an interrupted study resumes where it stopped. The
report gives each seed's EM / F1 / mean training loss, each row's mean +- sample sd, and Welch's
t-test (unequal variances; ``scipy.stats.ttest_ind(equal_var=False)``) of each of our rows
against Hugging Face's F1; ``quality.png`` plots the F1 of every seed per row and the mean
training-loss curve across seeds (shaded: +- one sd).

``--compare DIR [DIR ...]`` puts several studies' kept results in one table and one plot
(``--workdir``/compare.png), each labelled by the settings in which it differs from the others
(``--learning-rate``, ``--mixed-precision``, ...), with Welch's t-test of each against the first
and the gap that test would find 80% of the time with these seeds (``detectable_gap``):
how recipes are compared across seeds. A ``results.json`` may also carry a ``"_label"`` for what
distinguishes it that no flag records (a code version, say), put first in its label; the
studies kept in ``benchmarks/results/`` use it.

Rows: ours with Model Maker's recipe (``optimizer_recipe="model_maker"``), ours with Hugging
Face's (``"huggingface"``), and Hugging Face itself. Per-run results are kept in
``--workdir`` (``results.json``) so a table can be reprinted with ``--only-report``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import textwrap
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from bert_qa import _env  # noqa: F401,E402
from benchmarks import hf_env, shared_data  # noqa: E402

ROWS = ("ours_model_maker", "ours_huggingface", "huggingface")


def _shared(name: str) -> str:
    """A file given by its path (e.g. the default run's ``data/new_wiki_train.json``), else a full
    data file from outside the repository; exits with a message naming it if missing."""
    if os.sep in name and os.path.isfile(name):
        return os.path.abspath(name)
    return shared_data.path(name)


def first_questions(src: str, n: int, dst: str) -> str:
    """The first ``n`` questions of a SQuAD file, articles and paragraphs kept in order."""
    with open(src, encoding="utf-8") as f:
        data = json.load(f)["data"]
    out, kept = [], 0
    for article in data:
        paragraphs = []
        for p in article["paragraphs"]:
            qas = p["qas"][:max(0, n - kept)]
            kept += len(qas)
            if qas:
                paragraphs.append({"context": p["context"], "qas": qas})
        if paragraphs:
            out.append({"title": article.get("title", ""), "paragraphs": paragraphs})
        if kept >= n:
            break
    with open(dst, "w", encoding="utf-8") as f:
        json.dump({"version": "1.1", "data": out}, f)
    return dst


def held_out_articles(src: str, n_train: int, n_eval: int, train_dst: str, eval_dst: str):
    """In-domain split of one SQuAD file by whole articles: training from the start until it has
    ``n_train`` questions, evaluation from the end until ``n_eval``; refused if they would share an
    article (a question of a trained-on article is not held out)."""
    with open(src, encoding="utf-8") as f:
        data = json.load(f)["data"]
    counts = [sum(len(p["qas"]) for p in article["paragraphs"]) for article in data]
    train_end, kept = 0, 0
    while train_end < len(data) and kept < n_train:
        kept, train_end = kept + counts[train_end], train_end + 1
    eval_start, held = len(data), 0
    while eval_start > 0 and held < n_eval:
        eval_start, held = eval_start - 1, held + counts[eval_start - 1]
    if eval_start < train_end:
        raise SystemExit(f"{src}: {n_train} training and {n_eval} held-out questions need more than its "
                         f"{len(data)} articles ({sum(counts)} questions) without sharing one")
    for articles, dst in ((data[:train_end], train_dst), (data[eval_start:], eval_dst)):
        with open(dst, "w", encoding="utf-8") as f:
            json.dump({"version": "1.1", "data": articles}, f)
    return train_dst, eval_dst


def _epochs_arg(text: str):
    """An int where the number is whole, so studies kept with ``--epochs 2`` keep their key."""
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"--epochs must be positive, not {text}")
    return int(value) if value.is_integer() else value


def _parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-file", default="new_wiki_v1.0.json")
    p.add_argument("--train-questions", type=int, default=4000)
    p.add_argument("--eval-file", default="amazon_reviews_v1.0.json")
    p.add_argument("--eval-questions", type=int, default=2000)
    p.add_argument("--seq-len", type=int, default=384)
    p.add_argument("--query-len", type=int, default=64)
    p.add_argument("--doc-stride", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--learning-rate", type=float, default=8e-5)
    p.add_argument("--epochs", type=_epochs_arg, default=1,
                   help="passes over the training features; a fraction (1.5) trains int(1.5 x features // "
                        "batch) steps on both sides (bert_qa.settings.training_schedule)")
    p.add_argument("--mixed-precision", default="float32", choices=("float32", "mixed_bfloat16", "auto"),
                   help="our rows' BertQaSpec(mixed_precision=...); Hugging Face's side is float32")
    p.add_argument("--seed", type=int, default=42, help="one seed (the parity runs' seed)")
    p.add_argument("--seeds", type=_seeds_arg, default=None,
                   help="comma-separated seeds: every row once per seed (the seed study); default: --seed")
    p.add_argument("--protocol", choices=PROTOCOLS, default="public",
                   help="public: train New Wikipedia, score Amazon reviews; in_domain: score held-out "
                        "New Wikipedia articles")
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated subset of {ROWS}")
    p.add_argument("--workdir", default="runs/quality")
    p.add_argument("--only-report", action="store_true", help="reprint the table from --workdir")
    p.add_argument("--tflite", action="store_true",
                   help="also export each of our trained models as a dynamic-range .tflite and score it")
    p.add_argument("--compare", nargs="+", metavar="WORKDIR",
                   help="instead: one table and plot (--workdir/compare.png) over these studies' kept "
                        "results, labelled by the settings that differ, Welch's t-test against the first")
    p.add_argument("--parity-steps", type=_steps_arg, default=0,
                   help="instead: N steps (or 'all': the whole run, then both models scored) with "
                        "dropout off on both sides, the same batches and the same initial head")
    return p.parse_args(argv)


PROTOCOLS = ("public", "in_domain")


def _seeds_arg(value: str):
    seeds = [int(v) for v in value.split(",") if v.strip()]
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"--seeds {value!r}: give distinct integers, e.g. 1,2,3,4,5")
    return seeds


def _steps_arg(value: str):
    return "all" if value == "all" else int(value)


class Protocol:
    """The shared data: SQuAD subsets, windowed features, and scoring of raw logits."""

    def __init__(self, args):
        from bert_qa import BertQaSpec, DataLoader
        from bert_qa.pretrained import default_encoder_dir

        self.args = args
        os.makedirs(args.workdir, exist_ok=True)
        train_json, eval_json = os.path.join(args.workdir, "train.json"), os.path.join(args.workdir, "eval.json")
        if args.protocol == "in_domain":
            self.train_json, self.eval_json = held_out_articles(
                _shared(args.train_file), args.train_questions, args.eval_questions, train_json, eval_json)
        else:
            self.train_json = first_questions(_shared(args.train_file), args.train_questions, train_json)
            self.eval_json = first_questions(_shared(args.eval_file), args.eval_questions, eval_json)
        self.encoder = default_encoder_dir()
        self.spec = BertQaSpec(uri=self.encoder, seq_len=args.seq_len, query_len=args.query_len,
                               doc_stride=args.doc_stride, distribution_strategy="off")
        cache = os.path.join(args.workdir, "features")
        self.train = DataLoader.from_squad(self.train_json, self.spec, is_training=True,
                                           multi_answer="first", cache_dir=cache)
        self.dev = DataLoader.from_squad(self.eval_json, self.spec, is_training=False, cache_dir=cache)
        print(f"[quality] train: {self.train.num_questions} questions -> {len(self.train)} features "
              f"({len(self.train.skipped)} skipped); eval: {self.dev.num_questions} questions -> "
              f"{len(self.dev)} features", file=sys.stderr, flush=True)

    def score_logits(self, unique_ids, start_logits, end_logits) -> dict:
        from official.legacy.bert import run_squad_helper
        from official.nlp.data import squad_lib
        from bert_qa import scoring

        results = [run_squad_helper.RawResult(unique_id=int(u), start_logits=s.tolist(), end_logits=e.tolist())
                   for u, s, e in zip(unique_ids, start_logits, end_logits)]
        predictions, _, _ = squad_lib.postprocess_output(
            self.dev.examples, self.dev.features, results, n_best_size=20, max_answer_length=30,
            do_lower_case=True, version_2_with_negative=False, null_score_diff_threshold=0.0, verbose=False)
        with open(self.eval_json, encoding="utf-8") as f:
            return scoring.score(json.load(f)["data"], predictions, None, False)

    def npz(self, is_training: bool) -> str:
        """The features as arrays for the Hugging Face side (same records, same order)."""
        path = os.path.join(self.args.workdir, "train.npz" if is_training else "eval.npz")
        if os.path.exists(path):
            return path
        if is_training:
            arrays = hf_env.feature_arrays(self.train.tfrecord_file, self.spec, True)
        else:
            feats = self.dev.features
            arrays = {"input_ids": np.array([f.input_ids for f in feats]),
                      "input_mask": np.array([f.input_mask for f in feats]),
                      "segment_ids": np.array([f.segment_ids for f in feats]),
                      "unique_ids": np.array([f.unique_id for f in feats])}
        np.savez(path, **arrays)
        return path


def _progress_logger(total_steps: int):
    """StepLogger that also prints a line every 10 steps, as the Hugging Face side does."""
    from bert_qa.callbacks import StepLogger

    class _Progress(StepLogger):
        def on_train_begin(self, logs=None):
            self._start = time.time()

        def on_train_batch_end(self, batch, logs=None):
            super().on_train_batch_end(batch, logs)
            step = len(self.losses)
            if step % 10 == 0 or step == total_steps:
                print(f"[ours] step {step}/{total_steps} loss {self.losses[-1]:.4f} (mean of last 10: "
                      f"{np.mean(self.losses[-10:]):.4f}) lr {self.learning_rates[-1]:.3g} "
                      f"{time.time() - self._start:.0f}s", file=sys.stderr, flush=True)

    return _Progress()


def run_ours(protocol: Protocol, recipe: str, seed: int) -> dict:
    import tf_keras
    from bert_qa import BertQaSpec, question_answer
    from bert_qa.settings import training_schedule

    args = protocol.args
    tf_keras.utils.set_random_seed(seed)
    spec = BertQaSpec(uri=protocol.encoder, seq_len=args.seq_len, query_len=args.query_len,
                      doc_stride=args.doc_stride, learning_rate=args.learning_rate,
                      distribution_strategy="off", optimizer_recipe=recipe,
                      mixed_precision=args.mixed_precision,
                      model_dir=os.path.join(args.workdir, f"seed-{seed}", f"ours_{recipe}"))
    epochs, steps_per_epoch = training_schedule(args.epochs, len(protocol.train) // args.batch_size)
    steps = _progress_logger(epochs * steps_per_epoch)
    start = time.time()
    model = question_answer.create(protocol.train, spec, batch_size=args.batch_size, epochs=args.epochs,
                                   shuffle=True, verbose=0, callbacks=[steps])
    train_seconds = time.time() - start
    start = time.time()
    metrics = model.evaluate(protocol.dev)
    result = {"exact_match": 100 * metrics["exact_match"], "f1": 100 * metrics["final_f1"],
              "train_seconds": train_seconds, "predict_seconds": time.time() - start,
              "steps": len(steps.losses), "mean_epoch_loss": float(np.mean(steps.losses)),
              "loss": steps.losses, "lr": steps.learning_rates}
    if args.tflite:
        result.update(score_dynamic_tflite(model, protocol, spec.model_dir))
    return result


def score_dynamic_tflite(model, protocol: Protocol, model_dir: str) -> dict:
    """``--tflite``: the trained model exported as Model Maker's default .tflite (dynamic-range
    quantization) and scored on the same questions: how much F1 quantization costs each seed's
    weights (the pipeline's evaluator refuses to push a .tflite more than 3 F1 below its model)."""
    path = os.path.join(model_dir, "export", "model.tflite")
    # The float SavedModel beside it: what a study of where the drop comes from starts from.
    model.export(os.path.dirname(path), export_format=("TFLITE", "SAVED_MODEL"))
    metrics = model.evaluate_tflite(path, protocol.dev)
    return {"tflite_exact_match": 100 * metrics["exact_match"], "tflite_f1": 100 * metrics["final_f1"],
            "tflite_quantization": "dynamic", "tflite_bytes": os.path.getsize(path)}


def run_huggingface(protocol: Protocol, seed: int) -> dict:
    from bert_qa.pretrained import minilm_checkpoint_dir

    args = protocol.args
    out = os.path.join(args.workdir, f"seed-{seed}", "huggingface")
    command = hf_env.hf_python() + [
        hf_env.HF_TRAINER, "--checkpoint", minilm_checkpoint_dir(), "--train", protocol.npz(True),
        "--eval", protocol.npz(False), "--out", out, "--epochs", str(args.epochs),
        "--batch-size", str(args.batch_size), "--learning-rate", str(args.learning_rate),
        "--seed", str(seed)]
    start = time.time()
    subprocess.run(command, check=True, env=hf_env.isolated_env())
    wall = time.time() - start
    with open(os.path.join(out, "log.json")) as f:
        log = json.load(f)
    logits = np.load(os.path.join(out, "eval_logits.npz"))
    metrics = protocol.score_logits(logits["unique_ids"], logits["start_logits"], logits["end_logits"])
    return {"exact_match": 100 * metrics["exact_match"], "f1": 100 * metrics["final_f1"],
            "train_seconds": log["train_seconds"], "predict_seconds": log.get("predict_seconds"),
            "steps": log["steps"], "mean_epoch_loss": float(np.mean(log["loss"])), "wall_seconds": wall,
            "loss": log["loss"], "lr": log["lr"]}


NAMES = {"ours_model_maker": "bert_qa, optimizer_recipe='model_maker' (Model Maker's)",
         "ours_huggingface": "bert_qa, optimizer_recipe='huggingface'",
         "huggingface": "Hugging Face transformers (PyTorch)"}


def smoothed(losses, window: int = 20) -> np.ndarray:
    """Mean of each ``window`` consecutive steps (the curves' noise is mostly batch to batch)."""
    losses = np.asarray(losses, dtype=float)
    window = max(1, min(window, len(losses)))
    return np.convolve(losses, np.ones(window) / window, mode="valid")


def plot(runs: dict, path: str) -> None:
    """Left: F1 of every seed per row (dots) with its mean +- sd. Right: the training loss (mean of
    20 steps), averaged over seeds, shaded +- one sd across seeds. One PNG."""
    rows = [row for row in ROWS if runs.get(row)]
    plot_series({NAMES[row]: runs[row] for row in rows}, [row.replace("_", "\n") for row in rows], path)


def plot_series(series: dict, ticks: list, path: str) -> None:
    """``plot`` for any {label: {seed: result}} (the legend's labels), ``ticks`` naming each
    under its F1 dots: the rows of one study, or (``--compare``) one row under several settings."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # One colour per series in both panels; one legend under both names every series (its loss
    # curve, where kept, has the same colour).
    fig, (ax_f1, ax_loss) = plt.subplots(1, 2, figsize=(12, 5 + 0.25 * len(series)),
                                         gridspec_kw={"width_ratios": [1, 2]})
    handles = []
    for i, (label, runs) in enumerate(series.items()):
        f1 = np.array([r["f1"] for r in runs.values()])
        handles.append(ax_f1.scatter(np.full(len(f1), i) + np.linspace(-0.08, 0.08, len(f1)), f1,
                                     alpha=0.7, color=f"C{i}"))
        if len(f1) > 1:
            ax_f1.errorbar(i + 0.25, f1.mean(), yerr=f1.std(ddof=1), fmt="o", color="black", capsize=4)
        curves = [smoothed(r["loss"]) for r in runs.values() if r.get("loss")]
        if curves:
            n = min(len(c) for c in curves)
            stack = np.stack([c[:n] for c in curves])
            window = min(20, min(len(r["loss"]) for r in runs.values() if r.get("loss")))
            steps = np.arange(n) + window  # each point: the mean of the `window` steps up to it
            mean = stack.mean(axis=0)
            ax_loss.plot(steps, mean, color=f"C{i}")
            if len(curves) > 1:
                sd = stack.std(axis=0, ddof=1)
                ax_loss.fill_between(steps, mean - sd, mean + sd, alpha=0.2, color=f"C{i}")
        kept = f"loss kept for {len(curves)} of {len(f1)} seeds" if curves else "no loss curve kept"
        handles[-1].set_label(f"{label} ({kept})")
    ax_f1.set_xticks(range(len(series)))
    ax_f1.set_xticklabels(ticks, fontsize=8)
    ax_f1.set_ylabel("F1 (official SQuAD v1.1)")
    ax_f1.set_title("F1 per seed (black: mean +- sd)")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("training loss (mean of 20 steps)")
    ax_loss.set_title("Mean training loss across seeds (+- sd)")
    if not ax_loss.get_lines():
        ax_loss.text(0.5, 0.5, "no loss curves kept", ha="center", transform=ax_loss.transAxes)
    fig.legend(handles=handles, loc="lower center", fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05 * len(series), 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _no_dropout_checkpoint(workdir: str) -> str:
    """The packaged MiniLM checkpoint with dropout 0 in its config (same weights)."""
    import shutil
    from bert_qa.pretrained import minilm_checkpoint_dir

    src, dst = minilm_checkpoint_dir(), os.path.join(workdir, "minilm_no_dropout")
    if not os.path.isdir(dst):
        os.makedirs(dst)
        for name in ("model.safetensors", "vocab.txt"):
            shutil.copy(os.path.join(src, name), dst)
        with open(os.path.join(src, "config.json")) as f:
            config = json.load(f)
        config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        with open(os.path.join(dst, "config.json"), "w") as f:
            json.dump(config, f)
    return dst


def _permuted_records(tfrecord_file: str, seed: int, dst: str) -> str:
    """The feature records in one fixed random order, as a shuffled epoch would see them."""
    import tensorflow as tf

    if not os.path.exists(dst):
        records = list(tf.data.TFRecordDataset(tfrecord_file).as_numpy_iterator())
        order = np.random.default_rng(seed).permutation(len(records))
        with tf.io.TFRecordWriter(dst + ".partial") as writer:
            for i in order:
                writer.write(records[i])
        os.replace(dst + ".partial", dst)
    return dst


def run_parity(protocol: Protocol, steps) -> str:
    """Both trainers, dropout off, the same batches and initial head: losses (and scores) side by side.

    With ``steps == "all"`` the features are put in one fixed random order first (so the run is
    not article by article) and both trained models are scored: with every source of randomness
    shared, the two F1s may differ only by what float32 rounding accumulates over the run.
    """
    import tf_keras
    from bert_qa import BertQaSpec, input_pipeline, question_answer
    from bert_qa.callbacks import StepLogger
    from bert_qa.checkpoint_import import import_hf_checkpoint

    args = protocol.args
    full = steps == "all"
    checkpoint = _no_dropout_checkpoint(args.workdir)
    train_records = protocol.train.tfrecord_file
    train_npz = protocol.npz(True)
    if full:
        train_records = _permuted_records(train_records, args.seed,
                                          os.path.join(args.workdir, f"train_permuted_{args.seed}.tfrecord"))
        train_npz = os.path.join(args.workdir, f"train_permuted_{args.seed}.npz")
        if not os.path.exists(train_npz):
            np.savez(train_npz, **hf_env.feature_arrays(train_records, protocol.spec, True))
    total_steps = args.epochs * (len(protocol.train) // args.batch_size)
    steps = total_steps if full else steps
    hf_out = os.path.join(args.workdir, "parity_huggingface" + ("_full" if full else ""))
    command = hf_env.hf_python() + [
        hf_env.HF_TRAINER, "--checkpoint", checkpoint, "--train", train_npz, "--out", hf_out,
        "--epochs", str(args.epochs), "--max-steps", str(steps), "--no-shuffle", "--dropout", "0",
        "--batch-size", str(args.batch_size), "--learning-rate", str(args.learning_rate),
        "--seed", str(args.seed)]
    if full:
        command += ["--eval", protocol.npz(False)]
    subprocess.run(command, check=True, env=hf_env.isolated_env())
    with open(os.path.join(hf_out, "log.json")) as f:
        hf_log = json.load(f)
    head = np.load(os.path.join(hf_out, "head_init.npz"))

    encoder = os.path.join(args.workdir, "minilm_no_dropout_tf")
    if not os.path.isdir(encoder):
        import_hf_checkpoint(checkpoint, encoder, do_lower_case=True)
    spec = BertQaSpec(uri=encoder, seq_len=args.seq_len, query_len=args.query_len,
                      doc_stride=args.doc_stride, learning_rate=args.learning_rate,
                      distribution_strategy="off", optimizer_recipe="huggingface",
                      model_dir=os.path.join(args.workdir, "parity_ours" + ("_full" if full else "")))

    class _SameStartStopEarly(tf_keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            hf_env.copy_span_head(self.model, head)

        def on_train_batch_end(self, batch, logs=None):
            if batch + 1 >= steps:
                self.model.stop_training = True

    logger = _progress_logger(steps)
    input_fn = input_pipeline.make_input_fn(spec, [train_records], True, args.batch_size)
    model = spec.train(input_fn, args.epochs, len(protocol.train) // args.batch_size,
                       callbacks=[_SameStartStopEarly(), logger], verbose=0)
    differences = np.abs(np.array(hf_log["loss"]) - np.array(logger.losses[:len(hf_log["loss"])]))
    lines = [f"Same arithmetic at full size: all-MiniLM-L6-v2, seq_len {args.seq_len}, batch "
             f"{args.batch_size}, dropout off, same features in the same order, same initial head, "
             f"{steps} steps", ""]
    if full:
        qa = question_answer.QuestionAnswer(spec)
        qa.model = model
        ours = qa.evaluate(protocol.dev)
        logits = np.load(os.path.join(hf_out, "eval_logits.npz"))
        theirs = protocol.score_logits(logits["unique_ids"], logits["start_logits"], logits["end_logits"])
        scores = {"ours": {"exact_match": 100 * ours["exact_match"], "f1": 100 * ours["final_f1"]},
                  "huggingface": {"exact_match": 100 * theirs["exact_match"], "f1": 100 * theirs["final_f1"]},
                  "max_abs_loss_difference": float(differences.max()),
                  "mean_abs_loss_difference": float(differences.mean()), "steps": steps,
                  "loss_ours": logger.losses, "loss_huggingface": hf_log["loss"]}
        with open(os.path.join(args.workdir, f"parity_full_{args.seed}.json"), "w") as f:
            json.dump(scores, f, indent=2)
        lines += ["| trainer | EM | F1 | mean training loss |", "|---|---:|---:|---:|",
                  f"| {NAMES['huggingface']} | {scores['huggingface']['exact_match']:.2f} | "
                  f"{scores['huggingface']['f1']:.2f} | {np.mean(hf_log['loss']):.4f} |",
                  f"| {NAMES['ours_huggingface']} | {scores['ours']['exact_match']:.2f} | "
                  f"{scores['ours']['f1']:.2f} | {np.mean(logger.losses):.4f} |", "",
                  f"F1 difference {scores['ours']['f1'] - scores['huggingface']['f1']:+.2f}; per-step "
                  f"loss difference: max {differences.max():.1e}, mean {differences.mean():.1e}; "
                  f"every 25th step:", ""]
    lines += ["| step | learning rate | Hugging Face loss | bert_qa loss | abs. difference |",
              "|---:|---:|---:|---:|---:|"]
    for i, (hf_loss, ours_loss) in enumerate(zip(hf_log["loss"], logger.losses)):
        if not full or i % 25 == 0 or i == steps - 1:
            lines.append(f"| {i} | {logger.learning_rates[i]:.3g} | {hf_loss:.5f} | {ours_loss:.5f} | "
                         f"{abs(hf_loss - ours_loss):.1e} |")
    return "\n".join(lines)


def welch(a, b) -> dict:
    """Welch's t-test (unequal variances) of two samples: t, its degrees of freedom, two-sided p."""
    from scipy import stats

    test = stats.ttest_ind(np.asarray(a, float), np.asarray(b, float), equal_var=False)
    return {"t": float(test.statistic), "df": float(test.df), "p": float(test.pvalue)}


def detectable_gap(a, b, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest difference of means that Welch's test at ``alpha`` finds with probability
    ``power``, for samples of these sizes and (sample) spreads: what a "not distinguishable"
    result rules out. Under a true gap delta, Welch's t is about noncentral t with the
    Welch-Satterthwaite df and noncentrality delta / se (scipy; statsmodels, which has
    TTestIndPower, is not in the lock, and its version assumes equal variances)."""
    from scipy import optimize, stats

    a, b = np.asarray(a, float), np.asarray(b, float)
    if min(len(a), len(b)) < 2 or not 0 < alpha < power < 1:
        raise ValueError(f"detectable_gap needs two seeds a side and alpha < power ({len(a)}, {len(b)}, "
                         f"{alpha}, {power})")
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = np.sqrt(va + vb)
    if se == 0:  # no spread on either side: any gap is seen
        return 0.0
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    critical = stats.t.ppf(1 - alpha / 2, df)

    def shortfall(delta):
        nc = delta / se
        # The wrong-sign tail is below alpha / 2 and shrinks as the gap grows; scipy's nct
        # returns NaN for it far out (1.17: df 2, nc 8.6), where it is negligible.
        wrong_sign = np.nan_to_num(stats.nct.cdf(-critical, df, nc), nan=0.0)
        right_sign = stats.nct.sf(critical, df, nc)
        if not np.isfinite(right_sign):
            raise ArithmeticError(f"scipy's noncentral t gave {right_sign} (df {df}, nc {nc})")
        return right_sign + wrong_sign - power

    high = critical * se  # power about 0.5 here; doubled until past ``power``
    while shortfall(high) < 0:
        high *= 2
    return float(optimize.brentq(shortfall, 0.0, high))


def _kept_losses(results) -> list:
    """The mean training losses of the seeds that kept one (a seed copied from recorded figures,
    benchmarks/results/, may not have)."""
    return [r["mean_epoch_loss"] for r in results if r.get("mean_epoch_loss") is not None]


def _mean_sd(values) -> str:
    values = np.asarray(values, dtype=float)
    if not len(values):
        return "-"
    return f"{values.mean():.2f} +- {values.std(ddof=1):.2f}" if len(values) > 1 else f"{values[0]:.2f}"


def report(runs: dict, args) -> str:
    """Per seed, then mean +- sample sd per row, then Welch's t-test of each of our rows vs HF."""
    where = ("score held-out New Wikipedia articles" if args.protocol == "in_domain"
             else f"score {args.eval_questions} {args.eval_file} questions")
    lines = [f"Fine-tuning quality ({args.protocol} protocol), {platform.node()} ({os.cpu_count()} cores): "
             f"all-MiniLM-L6-v2, {args.train_questions} {args.train_file} questions, seq_len {args.seq_len}, "
             f"batch {args.batch_size}, lr {args.learning_rate}, {args.epochs} epoch(s), ours in "
             f"{args.mixed_precision}; official v1.1 scorer; "
             f"{where}", "",
             "| trainer | seed | EM | F1 | steps | mean training loss | training s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    rows = [row for row in ROWS if runs.get(row)]
    for row in rows:
        for seed, r in sorted(runs[row].items(), key=lambda item: int(item[0])):
            # A kept seed copied from recorded figures (benchmarks/results/) has no steps,
            # loss or timing: "-".
            loss = f"{r['mean_epoch_loss']:.3f}" if r.get("mean_epoch_loss") is not None else "-"
            seconds = f"{r['train_seconds']:.0f}" if r.get("train_seconds") is not None else "-"
            lines.append(f"| {NAMES[row]} | {seed} | {r['exact_match']:.2f} | {r['f1']:.2f} | {r.get('steps', '-')} | "
                         f"{loss} | {seconds} |")
    lines += ["", "| trainer | seeds | EM (mean +- sd) | F1 (mean +- sd) | mean training loss |",
              "|---|---:|---:|---:|---:|"]
    for row in rows:
        r = list(runs[row].values())
        lines.append(f"| {NAMES[row]} | {len(r)} | {_mean_sd([x['exact_match'] for x in r])} | "
                     f"{_mean_sd([x['f1'] for x in r])} | "
                     f"{_mean_sd(_kept_losses(r))} |")
    quantized = [(row, seed, r) for row in rows for seed, r in sorted(runs[row].items(), key=lambda i: int(i[0]))
                 if r.get("tflite_f1") is not None]
    if quantized:
        lines += ["", "| trainer | seed | F1 | dynamic-range .tflite F1 | drop | .tflite MB |",
                  "|---|---:|---:|---:|---:|---:|"]
        for row, seed, r in quantized:
            lines.append(f"| {NAMES[row]} | {seed} | {r['f1']:.2f} | {r['tflite_f1']:.2f} | "
                         f"{r['f1'] - r['tflite_f1']:.2f} | {r['tflite_bytes'] / 1e6:.1f} |")
    if runs.get("huggingface"):
        theirs = [x["f1"] for x in runs["huggingface"].values()]
        for row in ("ours_model_maker", "ours_huggingface"):
            ours = [x["f1"] for x in runs.get(row, {}).values()]
            if not ours:
                continue
            gap = np.mean(ours) - np.mean(theirs)
            line = f"\n{row} vs Hugging Face: F1 {gap:+.2f} (means of {len(ours)} and {len(theirs)} seeds)"
            if len(ours) > 1 and len(theirs) > 1:
                w = welch(ours, theirs)
                line += (f"; Welch's t = {w['t']:.2f}, df = {w['df']:.1f}, p = {w['p']:.3f} "
                         f"({'a real difference at p < 0.05' if w['p'] < 0.05 else 'not distinguishable from seed noise at p < 0.05'}; "
                         f"with these seeds a gap of {detectable_gap(ours, theirs):.1f} F1 is found 80% of the time)")
            lines.append(line)
    return "\n".join(lines)


# Options added after studies were kept: left out of the key at these defaults, so those
# studies still resume; put back (``_with_defaults``) wherever a kept key is read as settings.
_KEY_DEFAULTS = {"mixed_precision": "float32"}


def _protocol_of(args) -> dict:
    return {k: v for k, v in vars(args).items()
            if k not in ("rows", "only_report", "parity_steps", "seed", "seeds", "workdir", "compare", "tflite")
            and not (k in _KEY_DEFAULTS and v == _KEY_DEFAULTS[k])}


def _with_defaults(protocol: dict) -> dict:
    return {**_KEY_DEFAULTS, **protocol}


def _read_kept(results_file: str) -> dict:
    """A study's ``results.json`` as written ({"_protocol": ..., "runs": ...}), or {} if none."""
    if not os.path.exists(results_file):
        return {}
    with open(results_file) as f:
        return json.load(f)


def load_runs(results_file: str, protocol: dict) -> tuple:
    """The kept (row, seed) results of this protocol, {row: {seed: result}}, and what the study
    says of itself (benchmarks/results/: "_label", "_source"), which a resumed run keeps. A file
    written for another protocol is set aside (renamed), never mixed in."""
    kept = _read_kept(results_file)
    if not kept:
        return {}, {}
    if kept.get("_protocol") != protocol or "runs" not in kept:
        aside = results_file + f".other-protocol-{int(time.time())}"
        os.replace(results_file, aside)
        print(f"[quality] {results_file} was written for another protocol: moved to {aside}",
              file=sys.stderr, flush=True)
        return {}, {}
    return kept["runs"], {k: v for k, v in kept.items() if k not in ("_protocol", "runs")}


def compare(workdirs: list, out_png: str) -> str:
    """``--compare``: one table and one plot over several studies' kept results (the same row
    under different settings, e.g. learning rates or precisions), each labelled by the settings
    in which it differs from the others; Welch's t-test of each against the first."""
    studies = []
    for workdir in workdirs:
        results_file = os.path.join(workdir, "results.json")
        kept = _read_kept(results_file)
        if not kept:
            raise SystemExit(f"--compare: {results_file} not found")
        protocol = _with_defaults(kept.get("_protocol", {}))
        for row, runs in kept.get("runs", {}).items():
            studies.append((row, protocol, runs, kept.get("_label", "")))
    differs = [k for k in sorted({k for _, p, _, _ in studies for k in p})
               if len({json.dumps(p.get(k)) for _, p, _, _ in studies}) > 1]
    series, lines = {}, ["| # | trainer | settings | seeds | F1 per seed | EM (mean +- sd) | F1 (mean +- sd) | "
                         "mean training loss | Welch vs #1 |", "|---|---|---|---:|---|---:|---:|---:|---|"]
    first, ticks = None, []
    for i, (row, protocol, runs, label) in enumerate(studies, 1):
        settings = ", ".join([label] * bool(label) + [f"{k} {protocol.get(k)}" for k in differs]) or "-"
        ordered = [runs[s] for s in sorted(runs, key=int)]
        f1 = [r["f1"] for r in ordered]
        first = f1 if first is None else first
        test = "-"
        if i > 1 and len(f1) > 1 and len(first) > 1:
            w = welch(f1, first)
            test = (f"t = {w['t']:.2f}, p = {w['p']:.3f}; a gap of {detectable_gap(f1, first):.1f} "
                    "is found 80% of the time")
        lines.append(f"| {i} | {NAMES.get(row, row)} | {settings} | {len(f1)} | "
                     f"{' '.join(f'{x:.2f}' for x in f1)} (seeds {','.join(sorted(runs, key=int))}) | "
                     f"{_mean_sd([r['exact_match'] for r in ordered])} | {_mean_sd(f1)} | "
                     f"{_mean_sd(_kept_losses(ordered))} | "
                     f"{test} |")
        series[f"#{i}: {settings}"] = runs
        # Under the dots only the table's row number and the trainer (the settings are long and
        # would overlap); the loss legend gives each number's settings.
        ticks.append(f"#{i}\n" + textwrap.fill(NAMES.get(row, row).split(',')[0].split(' (')[0], 14))
    plot_series(series, ticks, out_png)
    return "\n".join(lines)


def _kept_for_report(results_file: str, args, protocol_key: dict):
    """``--only-report``: the kept results as they are, under the protocol they were run with
    (never set aside: reprinting a table must not need the study's flags repeated)."""
    kept = _read_kept(results_file)
    if kept and kept.get("_protocol") != protocol_key:
        print(f"[quality] {results_file}: reporting the protocol it was run with", file=sys.stderr, flush=True)
        args = argparse.Namespace(**{**vars(args), **_with_defaults(kept.get("_protocol", {}))})
    return args, kept.get("runs", {})


def main(argv=None):
    args = _parse_args(argv)
    if args.parity_steps:
        if not isinstance(args.epochs, int):
            raise SystemExit("--parity-steps runs whole epochs; --epochs must be a whole number")
        print(run_parity(Protocol(args), args.parity_steps))
        return 0
    if args.compare:
        os.makedirs(args.workdir, exist_ok=True)
        out_png = os.path.join(args.workdir, "compare.png")
        print(compare(args.compare, out_png))
        print(f"\nF1 per seed and mean training-loss curves: {out_png}")
        return 0
    seeds = args.seeds or [args.seed]
    rows = args.rows.split(",")
    unknown = [row for row in rows if row not in ROWS]
    if unknown:
        raise SystemExit(f"unknown rows {unknown}; choose from {ROWS}")
    os.makedirs(args.workdir, exist_ok=True)
    results_file = os.path.join(args.workdir, "results.json")
    protocol_key = _protocol_of(args)
    if args.only_report:
        args, runs = _kept_for_report(results_file, args, protocol_key)
    else:
        runs, notes = load_runs(results_file, protocol_key)
        todo = [(seed, row) for seed in seeds for row in rows if str(seed) not in runs.get(row, {})]
        protocol = Protocol(args) if todo else None
        for i, (seed, row) in enumerate(todo, 1):
            print(f"[quality] run {i}/{len(todo)}: {row}, seed {seed}", file=sys.stderr, flush=True)
            result = (run_huggingface(protocol, seed) if row == "huggingface"
                      else run_ours(protocol, row[len("ours_"):], seed))
            runs.setdefault(row, {})[str(seed)] = result
            with open(results_file + ".partial", "w") as f:  # kept after every run: resumable
                json.dump({**notes, "_protocol": protocol_key, "runs": runs}, f, indent=2)
            os.replace(results_file + ".partial", results_file)
            print(f"[quality] {row}, seed {seed}: EM {result['exact_match']:.2f} F1 {result['f1']:.2f}",
                  file=sys.stderr, flush=True)
    shown = {row: {s: r for s, r in runs.get(row, {}).items() if int(s) in seeds or args.only_report}
             for row in ROWS}
    plot(shown, os.path.join(args.workdir, "quality.png"))
    print(report(shown, args))
    print(f"\nF1 per seed and mean training-loss curves: {os.path.join(args.workdir, 'quality.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
