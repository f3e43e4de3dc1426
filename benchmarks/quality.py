"""Fine-tuning quality: our trainer vs Hugging Face transformers, same data, same scorer.

    uv run python benchmarks/quality.py                 # the issue's protocol (about 1.5 h on 2 cores)
    uv run python benchmarks/quality.py --seq-len 256   # shorter windows, about 40 min

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
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from bert_qa import _env  # noqa: F401,E402
from benchmarks import hf_env, shared_data  # noqa: E402

ROWS = ("ours_model_maker", "ours_huggingface", "huggingface")


def _shared(name: str) -> str:
    """A full data file from outside the repository; exits with a message naming it if missing."""
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
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated subset of {ROWS}")
    p.add_argument("--workdir", default="runs/quality")
    p.add_argument("--only-report", action="store_true", help="reprint the table from --workdir")
    p.add_argument("--parity-steps", type=_steps_arg, default=0,
                   help="instead: N steps (or 'all': the whole run, then both models scored) with "
                        "dropout off on both sides, the same batches and the same initial head")
    return p.parse_args(argv)


def _steps_arg(value: str):
    return "all" if value == "all" else int(value)


class Protocol:
    """The shared data: SQuAD subsets, windowed features, and scoring of raw logits."""

    def __init__(self, args):
        from bert_qa import BertQaSpec, DataLoader
        from bert_qa.pretrained import default_encoder_dir

        self.args = args
        os.makedirs(args.workdir, exist_ok=True)
        self.train_json = first_questions(_shared(args.train_file), args.train_questions,
                                          os.path.join(args.workdir, "train.json"))
        self.eval_json = first_questions(_shared(args.eval_file), args.eval_questions,
                                         os.path.join(args.workdir, "eval.json"))
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


def run_ours(protocol: Protocol, recipe: str) -> dict:
    import tf_keras
    from bert_qa import BertQaSpec, question_answer

    args = protocol.args
    tf_keras.utils.set_random_seed(args.seed)
    spec = BertQaSpec(uri=protocol.encoder, seq_len=args.seq_len, query_len=args.query_len,
                      doc_stride=args.doc_stride, learning_rate=args.learning_rate,
                      distribution_strategy="off", optimizer_recipe=recipe,
                      model_dir=os.path.join(args.workdir, f"ours_{recipe}"))
    steps = _progress_logger(args.epochs * (len(protocol.train) // args.batch_size))
    start = time.time()
    model = question_answer.create(protocol.train, spec, batch_size=args.batch_size, epochs=args.epochs,
                                   shuffle=True, verbose=0, callbacks=[steps])
    train_seconds = time.time() - start
    start = time.time()
    metrics = model.evaluate(protocol.dev)
    return {"exact_match": 100 * metrics["exact_match"], "f1": 100 * metrics["final_f1"],
            "train_seconds": train_seconds, "predict_seconds": time.time() - start,
            "steps": len(steps.losses), "mean_epoch_loss": float(np.mean(steps.losses)),
            "loss": steps.losses, "lr": steps.learning_rates}


def run_huggingface(protocol: Protocol) -> dict:
    from bert_qa.pretrained import minilm_checkpoint_dir

    args = protocol.args
    out = os.path.join(args.workdir, "huggingface")
    command = hf_env.hf_python() + [
        hf_env.HF_TRAINER, "--checkpoint", minilm_checkpoint_dir(), "--train", protocol.npz(True),
        "--eval", protocol.npz(False), "--out", out, "--epochs", str(args.epochs),
        "--batch-size", str(args.batch_size), "--learning-rate", str(args.learning_rate),
        "--seed", str(args.seed)]
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


def plot(results: dict, path: str) -> None:
    """Training loss per step (mean of 20) and learning rate of every row, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_lr) = plt.subplots(2, 1, figsize=(8, 7), sharex=True,
                                         gridspec_kw={"height_ratios": [3, 1]})
    for row in ROWS:
        if row in results and results[row].get("loss"):
            losses = np.array(results[row]["loss"])
            window = min(20, len(losses))
            smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
            label = f"{NAMES[row]}: F1 {results[row]['f1']:.1f}"
            ax_loss.plot(np.arange(window, len(losses) + 1), smooth, label=label)
            ax_lr.plot(np.arange(1, len(results[row]["lr"]) + 1), results[row]["lr"], label=row)
    ax_loss.set_ylabel("training loss (mean of 20 steps)")
    ax_loss.legend(fontsize=8)
    ax_loss.set_title("Fine-tuning all-MiniLM-L6-v2 on the same features")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_xlabel("step")
    fig.tight_layout()
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


def report(results: dict, args) -> str:
    lines = [f"Fine-tuning quality, {platform.node()} ({os.cpu_count()} cores): all-MiniLM-L6-v2, "
             f"{args.train_questions} {args.train_file} questions, seq_len {args.seq_len}, batch "
             f"{args.batch_size}, lr {args.learning_rate}, {args.epochs} epoch(s); official v1.1 "
             f"scorer on {args.eval_questions} {args.eval_file} questions", "",
             "| trainer | EM | F1 | steps | mean training loss | training s |",
             "|---|---:|---:|---:|---:|---:|"]
    for row in ROWS:
        if row in results:
            r = results[row]
            loss = f"{r['mean_epoch_loss']:.3f}" if r.get("mean_epoch_loss") is not None else "-"
            lines.append(f"| {NAMES[row]} | {r['exact_match']:.2f} | {r['f1']:.2f} | {r['steps']} | "
                         f"{loss} | {r['train_seconds']:.0f} |")
    if "huggingface" in results:
        for row in ("ours_model_maker", "ours_huggingface"):
            if row in results:
                gap = results[row]["f1"] - results["huggingface"]["f1"]
                lines.append(f"\n{row}: F1 {gap:+.2f} vs Hugging Face (goal: >= -0.5)")
    return "\n".join(lines)


def _protocol_of(args) -> dict:
    return {k: v for k, v in vars(args).items() if k not in ("rows", "only_report", "parity_steps")}


def main(argv=None):
    args = _parse_args(argv)
    results_file = os.path.join(args.workdir, "results.json")
    results = {}
    if os.path.exists(results_file):
        with open(results_file) as f:
            results = json.load(f)
        if results.get("_protocol") != _protocol_of(args):
            results = {} if not args.only_report else results
    if args.parity_steps:
        print(run_parity(Protocol(args), args.parity_steps))
        return 0
    if not args.only_report:
        protocol = Protocol(args)
        results["_protocol"] = _protocol_of(args)
        for row in args.rows.split(","):
            if row not in ROWS:
                raise SystemExit(f"unknown row {row!r}; choose from {ROWS}")
            print(f"[quality] running {row}", file=sys.stderr, flush=True)
            results[row] = (run_huggingface(protocol) if row == "huggingface"
                            else run_ours(protocol, row[len("ours_"):]))
            with open(results_file, "w") as f:
                json.dump(results, f, indent=2)
            print(f"[quality] {row}: {results[row]}", file=sys.stderr, flush=True)
    plot(results, os.path.join(args.workdir, "quality.png"))
    print(report(results, args))
    print(f"\nper-step losses and rates: {os.path.join(args.workdir, 'quality.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
