"""Why full-integer int8 of a BERT span model collapses, and what keeps it (issue 22).

Converts one serving SavedModel to float32 / dynamic / int8 (as exported) / int8 variants,
scores each on a sample of eval questions (bert_qa.export.variant_check: the .tflite file alone,
official EM/F1 rules), and prints QuantizationDebugger's per-layer error of the int8 model.

    nice -n 10 uv run --frozen python -m benchmarks.int8 --saved-model DIR \
        --eval data/new_wiki_eval.json --train data/new_wiki_train.json --sample 40
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

from bert_qa import _env  # noqa: F401


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--saved-model", required=True)
    p.add_argument("--eval", default="data/new_wiki_eval.json")
    p.add_argument("--train", default="data/new_wiki_train.json")
    p.add_argument("--sample", type=int, default=40)
    p.add_argument("--num-calibration", type=int, default=100)
    p.add_argument("--variants", default="float32,dynamic,int8,int8_16x8,debug,selective")
    p.add_argument("--denylists", default="SOFTMAX;SOFTMAX,ADD;MEAN,SQUARED_DIFFERENCE,RSQRT;GELU",
                   help="';'-separated lists of TFLite op names kept in float (one selective model each)")
    p.add_argument("--denylist-nodes", default="",
                   help="';'-separated regular expressions: tensors (QuantizationDebugger names) whose "
                        "ops are kept in float, one selective model each (needs the debug run's stats)")
    p.add_argument("--debug-samples", type=int, default=8)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    import numpy as np
    import tensorflow as tf

    from bert_qa.export import metadata as qa_metadata
    from bert_qa.export import tflite
    from bert_qa.export.calibration import features_from_squad
    from bert_qa.export.quantization import QuantizationConfig, representative_samples
    from bert_qa.export.variant_check import sample_questions, score_tflite

    info = tflite.saved_model_info(args.saved_model)
    vocab, lower = info["vocab_file"], bool(info.get("do_lower_case", True))
    seq_len, query_len, stride = int(info["seq_len"]), int(info["query_len"]), int(info["doc_stride"])
    questions = sample_questions(args.eval, args.sample)
    calib = features_from_squad(args.train, vocab, lower, seq_len, query_len, stride, args.num_calibration)
    n_calib = len(calib["input_word_ids"])
    out = args.out or tempfile.mkdtemp(prefix="int8_debug_")
    print(f"SavedModel {args.saved_model} (seq_len {seq_len}); {len(questions)} eval questions from "
          f"{args.eval}; {n_calib} calibration windows from {args.train}; files in {out}", flush=True)

    def rep():
        return representative_samples(calib, n_calib)

    def converter():
        return tf.lite.TFLiteConverter.from_saved_model(args.saved_model)

    def finish(name, buffer):
        buffer = qa_metadata.add_metadata(buffer, vocab, lower, qa_metadata.ModelInfo(name=name),
                                          options={"quantization": name, "query_len": query_len,
                                                   "doc_stride": stride})
        path = os.path.join(out, f"model_{name}.tflite")
        with open(path, "wb") as f:
            f.write(buffer)
        return path

    def int8_converter(ops):
        c = converter()
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.representative_dataset = rep
        c.target_spec.supported_ops = ops
        c.inference_output_type = tf.float32
        return c

    builders = {
        "float32": lambda: QuantizationConfig.for_float32().get_converter_with_quantization(converter()).convert(),
        "dynamic": lambda: QuantizationConfig.for_dynamic().get_converter_with_quantization(converter()).convert(),
        # As bertqa export builds it: every op int8, no float fallback.
        "int8": lambda: QuantizationConfig.for_int8(calib, n_calib).get_converter_with_quantization(
            converter()).convert(),
        # int8 weights, int16 activations (the converter's 16x8 mode).
        "int8_16x8": lambda: int8_converter(
            [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
             tf.lite.OpsSet.TFLITE_BUILTINS]).convert(),
    }
    rows = []

    def report(name, path, seconds):
        s = score_tflite(path, questions)
        size = os.path.getsize(path) / 1e6
        rows.append((name, s["exact_match"], s["f1"], size, seconds))
        print(f"| {name} | {s['exact_match']:.1f} | {s['f1']:.1f} | {size:.1f} | {seconds:.0f} |", flush=True)

    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    for name in names:
        if name in builders:
            start = time.time()
            path = finish(name, builders[name]())
            report(name, path, time.time() - start)

    if "debug" in names or "selective" in names or args.denylist_nodes:
        # The debugger feeds samples positionally, in the interpreter's input order.
        from ai_edge_litert.interpreter import Interpreter

        float_buffer = converter().convert()
        order = [next(n for n in calib if n in d["name"])
                 for d in Interpreter(model_content=float_buffer).get_input_details()]

        def debug_data():
            for sample in representative_samples(calib, args.debug_samples):
                yield [sample[n] for n in order]
        fallback = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    if "debug" in names:
        start = time.time()
        debugger = tf.lite.experimental.QuantizationDebugger(converter=int8_converter(fallback),
                                                             debug_dataset=debug_data)
        debugger.run()
        csv = os.path.join(out, "layer_stats.csv")
        with open(csv, "w") as f:
            debugger.layer_statistics_dump(f)
        import pandas as pd

        pd.set_option("display.width", 250)
        pd.set_option("display.max_colwidth", 90)
        stats = pd.read_csv(csv)
        stats["range"] = 255.0 * stats["scale"]
        stats["rmse/scale"] = np.sqrt(stats["mean_squared_error"]) / stats["scale"]
        cols = ["op_name", "tensor_name", "range", "rmse/scale", "mean_squared_error"]
        print(f"QuantizationDebugger ({args.debug_samples} windows, {time.time() - start:.0f} s): "
              f"widest int8 ranges (255 x scale)", flush=True)
        print(stats.sort_values("range", ascending=False)[cols].head(15).to_string(), flush=True)
        print("largest error relative to the step", flush=True)
        print(stats.sort_values("rmse/scale", ascending=False)[cols].head(15).to_string(), flush=True)
        print("widest range per op type", flush=True)
        print(stats.groupby("op_name")["range"].agg(["max", "median", "count"]).sort_values(
            "max", ascending=False).to_string(), flush=True)
    if "selective" in names:
        for ops in [d.split(",") for d in args.denylists.split(";") if d]:
            label = "int8_float_" + "+".join(o.lower() for o in ops)
            start = time.time()
            options = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=ops)
            selective = tf.lite.experimental.QuantizationDebugger(
                converter=int8_converter(fallback), debug_dataset=debug_data, debug_options=options)
            path = finish(label, selective.get_nondebug_quantized_model())
            report(label, path, time.time() - start)
    if args.denylist_nodes:
        import re

        import pandas as pd

        all_names = list(pd.read_csv(os.path.join(out, "layer_stats.csv"))["tensor_name"])
        for k, pattern in enumerate(p for p in args.denylist_nodes.split(";") if p):
            nodes = [n for n in all_names if re.search(pattern, n)]
            label = f"int8_float_nodes{k}"
            print(f"{label}: {len(nodes)} tensors match {pattern!r} and stay float", flush=True)
            start = time.time()
            options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=nodes)
            selective = tf.lite.experimental.QuantizationDebugger(
                converter=int8_converter(fallback), debug_dataset=debug_data, debug_options=options)
            path = finish(label, selective.get_nondebug_quantized_model())
            report(label, path, time.time() - start)
    print("| variant | EM | F1 | MB | convert s |")
    for r in rows:
        print(f"| {r[0]} | {r[1]:.1f} | {r[2]:.1f} | {r[3]:.1f} | {r[4]:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
