"""`bertqa validate DATA.json [...]`: counts and every problem, exit 1 on any error."""
from __future__ import annotations

import json


def register(subparsers):
    p = subparsers.add_parser(
        "validate", help="check SQuAD v1.1/v2.0 files and report counts and every problem",
        description="Reports articles, paragraphs, questions, answerable and unanswerable counts and "
                    "every problem (malformed JSON, missing or mistyped fields, answer text not at "
                    "answer_start, empty context or question, duplicate ids, also across the files "
                    "given, strings that are not valid Unicode), naming file and question id. Every "
                    "file is checked whatever the others hold. Exit status 1 if any file has an error.")
    p.add_argument("files", nargs="+", metavar="DATA.json")
    p.add_argument("--json", action="store_true", help="print one JSON report per file")
    p.set_defaults(func=run)


def run(args) -> int:
    import sys

    from bert_qa_cli.exit_codes import BAD_INPUT, FAILED
    from bert_qa.validation import validate_file

    status = 0
    seen_ids = {}  # question id -> where first seen, across all the files
    for path in args.files:
        try:
            report = validate_file(path, seen_ids)
        except Exception as err:  # noqa: BLE001 (a bug of ours: say so, and check the next file)
            if getattr(args, "debug", False):
                raise
            print(f"{path}: validation failed: {type(err).__name__}: {err} (the tool's failure, not "
                  f"necessarily your input's; rerun with `bertqa --debug validate` for the traceback)",
                  file=sys.stderr)
            status = FAILED
            continue
        if args.json:
            print(json.dumps(report.to_dict(), indent=2))
        else:
            print(f"{path}: {report.articles} articles, {report.paragraphs} paragraphs, "
                  f"{report.questions} questions ({report.answerable} answerable, "
                  f"{report.unanswerable} unanswerable); {len(report.errors)} errors, "
                  f"{len(report.problems) - len(report.errors)} warnings")
            for problem in report.problems:
                print(f"  {problem}")
        if report.errors and status == 0:
            status = BAD_INPUT
    return status
