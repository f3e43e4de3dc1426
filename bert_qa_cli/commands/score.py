"""`bertqa score`: the official SQuAD metrics of a predictions file, as JSON."""
from __future__ import annotations

import json


def register(subparsers):
    p = subparsers.add_parser(
        "score", help="official SQuAD v1.1 / v2.0 EM and F1 of a predictions file",
        description="Scores predictions with tf-models-official's official SQuAD scorers. Without "
                    "--na-prob (and with no is_impossible question in the data) it is SQuAD v1.1: "
                    "exact_match and f1 as fractions. With --na-prob or unanswerable questions it is "
                    "SQuAD v2.0: exact, f1, HasAns_*, NoAns_*, best_exact, best_f1 and thresholds, "
                    "in percent.")
    p.add_argument("--data", required=True, metavar="DATA.json", help="SQuAD-format ground truth")
    p.add_argument("--predictions", required=True, metavar="PRED.json",
                   help="{question id: answer text}")
    p.add_argument("--na-prob", metavar="NA.json", help="{question id: null score} (v2.0 null_odds.json)")
    p.add_argument("--allow-missing", action="store_true",
                   help="score questions without a prediction as unanswered (default: refuse them)")
    p.set_defaults(func=run)


def run(args) -> int:
    import sys

    from bert_qa.scoring import score_files

    def extra(ids):
        print(f"bertqa score: warning: {len(ids)} prediction(s) in {args.predictions} name no question of "
              f"{args.data} (first: {ids[:3]}): ignored, as the official SQuAD scripts do", file=sys.stderr)

    # A bad data, predictions or na-prob file is a ScoringInputError (an InputError): exit 1
    # through bert_qa_cli.exit_codes, as for every command.
    metrics = score_files(args.data, args.predictions, args.na_prob, args.allow_missing, on_extra_ids=extra)
    print(json.dumps(metrics, indent=2, sort_keys=True, allow_nan=False))
    return 0
