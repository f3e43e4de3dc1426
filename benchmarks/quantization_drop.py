"""Where a trained model's dynamic-range .tflite loses F1: each quantization variant of one
SavedModel scored on the first N questions of the public protocol's eval set (Amazon reviews).

    uv run python benchmarks/quantization_drop.py SAVED_MODEL_DIR --out runs/quant --questions 400

``SAVED_MODEL_DIR``: a trained serving SavedModel at seq 384, e.g. the one
``benchmarks/quality.py --tflite`` keeps under ``<workdir>/seed-N/ours_huggingface/export``.
Variants (``--variants``, default all): float32, float16, and dynamic range three ways: per-tensor
dense weights with the kernels' outlier weights split off (``dynamic``, the default since
2026-12-07, which the Task Library 0.4.4 runtime runs), per-tensor without the split
(``dynamic_unsplit``, the default before) and per-channel (``dynamic_per_channel``, which that
runtime refuses). Variants give the same figures on every run on one machine, so a subset can
be added to a table made earlier. Prints a markdown table.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("saved_model")
    p.add_argument("--out", default="runs/quantization_drop")
    p.add_argument("--questions", type=int, default=400)
    p.add_argument("--outlier-ratio", type=float, default=None,
                   help="the split's threshold (bert_qa.export.weight_outliers.OUTLIER_RATIO) for this run")
    p.add_argument("--max-outliers", type=int, default=None,
                   help="the split's cap per kernel (weight_outliers.MAX_OUTLIERS) for this run")
    p.add_argument("--variants", default="float32,float16,dynamic_unsplit,dynamic,dynamic_per_channel",
                   help="comma-separated subset of the variants above")
    args = p.parse_args(argv)

    from benchmarks import quality
    from bert_qa import BertQaSpec, DataLoader, question_answer
    from bert_qa.export import tflite as tflite_export
    from bert_qa.export.quantization import QuantizationConfig
    from bert_qa.export import weight_outliers
    from bert_qa.pretrained import default_encoder_dir

    if args.outlier_ratio is not None:
        weight_outliers.OUTLIER_RATIO = args.outlier_ratio
    if args.max_outliers is not None:
        weight_outliers.MAX_OUTLIERS = args.max_outliers

    os.makedirs(args.out, exist_ok=True)
    eval_json = quality.first_questions(quality._shared("amazon_reviews_v1.0.json"), args.questions,
                                        os.path.join(args.out, "eval.json"))
    spec = BertQaSpec(uri=default_encoder_dir(), seq_len=384, query_len=64, doc_stride=128,
                      distribution_strategy="off")
    dev = DataLoader.from_squad(eval_json, spec, is_training=False)
    scorer = question_answer.QuestionAnswer(spec)
    every = {"float32": ("float32", QuantizationConfig.for_float32()),
             "float16": ("float16", QuantizationConfig.for_float16()),
             "dynamic_unsplit": ("dynamic, dense weights per tensor, outliers not split (the default before)",
                                 QuantizationConfig.for_dynamic(split_weight_outliers=False)),
             "dynamic": ("dynamic, dense weights per tensor, outliers split (the default)",
                         QuantizationConfig.for_dynamic()),
             "dynamic_per_channel": ("dynamic, dense weights per channel",
                                     QuantizationConfig.for_dynamic(task_library_compatible=False))}
    unknown = set(args.variants.split(",")) - set(every)
    if unknown:
        p.error(f"unknown variants {sorted(unknown)}; choose from {sorted(every)}")
    chosen = [(key, *every[key]) for key in args.variants.split(",")]
    lines = [f"{args.saved_model}, first {args.questions} questions of amazon_reviews_v1.0.json; outliers "
             f"split above {weight_outliers.OUTLIER_RATIO}x, at most {weight_outliers.MAX_OUTLIERS} per kernel", "",
             "| variant | F1 | EM | MB | scoring s |", "|---|---:|---:|---:|---:|"]
    for key, name, config in chosen:
        path = os.path.join(args.out, f"{key}.tflite")
        tflite_export.export_tflite(args.saved_model, path, quantization=config,
                                    vocab_file=spec.vocab_file, do_lower_case=spec.do_lower_case)
        start = time.time()
        metrics = scorer.evaluate_tflite(path, dev)
        lines.append(f"| {name} | {100 * metrics['final_f1']:.2f} | {100 * metrics['exact_match']:.2f} | "
                     f"{os.path.getsize(path) / 1e6:.1f} | {time.time() - start:.0f} |")
        print(lines[-1], file=sys.stderr, flush=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
