"""`bertqa validate DATA.json [...]`: counts and every problem, exit 1 on any error."""
from __future__ import annotations

import json


def register(subparsers):
    p = subparsers.add_parser(
        "validate", help="check SQuAD v1.1/v2.0 files and report counts and every problem",
        description="Reports articles, paragraphs, questions, answerable and unanswerable counts and "
                    "every problem (malformed JSON, missing or mistyped fields, answer text not at "
                    "answer_start, empty context or question, duplicate ids), naming file and question "
                    "id. Exit status 1 if any file has an error.")
    p.add_argument("files", nargs="+", metavar="DATA.json")
    p.add_argument("--json", action="store_true", help="print one JSON report per file")
    p.set_defaults(func=run)


def run(args) -> int:
    from bert_qa.validation import validate_file

    status = 0
    for path in args.files:
        report = validate_file(path)
        if args.json:
            print(json.dumps(report.to_dict(), indent=2))
        else:
            print(f"{path}: {report.articles} articles, {report.paragraphs} paragraphs, "
                  f"{report.questions} questions ({report.answerable} answerable, "
                  f"{report.unanswerable} unanswerable); {len(report.errors)} errors, "
                  f"{len(report.problems) - len(report.errors)} warnings")
            for problem in report.problems:
                print(f"  {problem}")
        if report.errors:
            status = 1
    return status
