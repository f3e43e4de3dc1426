"""The full real data files the benchmarks read; they are not in the repository.

The tests use trimmed copies (tests/data/real/README.md); the benchmarks need the full files,
looked up in $BERT_QA_SHARED_DATA, ../shared/data (next to the repository) and /work/shared/data.
A missing file ends the benchmark with a message naming it and where it comes from.
"""
from __future__ import annotations

import os
import sys

_SQUAD_SHIFTS = "SQuAD-Shifts (github.com/modestyachts/squadshifts-website: datasets/{}, CC BY 4.0)"
_TYDIQA = "the English part of TyDiQA-GoldP v1.1 {} (github.com/google-research-datasets/tydiqa, Apache-2.0)"
_QED = "QED (github.com/google-research-datasets/QED: {} converted to SQuAD v1.1 format, CC BY-SA 3.0)"
SOURCES = {
    "new_wiki_v1.0.json": _SQUAD_SHIFTS.format("new_wiki_v1.0.json"),
    "amazon_reviews_v1.0.json": _SQUAD_SHIFTS.format("amazon_reviews_v1.0.json"),
    "reddit_v1.0.json": _SQUAD_SHIFTS.format("reddit_v1.0.json"),
    "english_tydiqa_train.json": _TYDIQA.format("train"),
    "english_tydiqa_dev.json": _TYDIQA.format("dev"),
    "qed-nq-train-prerelease.squad.json": _QED.format("nq-train-0[0-5]-qed.jsonlines"),
    "qed-nq-dev.squad.json": _QED.format("qed-dev.jsonlines"),
    "covid-qa-200423-prerelease.fixed.json": "COVID-QA (github.com/deepset-ai/COVID-QA: data/question-answering/"
                                             "200423_covidQA.json with answer offsets fixed, Apache-2.0)",
}


def candidates() -> list:
    here = os.path.dirname(os.path.abspath(__file__))
    return [d for d in (os.environ.get("BERT_QA_SHARED_DATA", ""),
                        os.path.join(here, "..", "..", "shared", "data"), "/work/shared/data") if d]


def path(name: str) -> str:
    """The full file's absolute path; exits (status 2) with a message when it is nowhere."""
    for directory in candidates():
        if os.path.isfile(os.path.join(directory, name)):
            return os.path.abspath(os.path.join(directory, name))
    source = SOURCES.get(name, "a SQuAD-format JSON file of your own")
    sys.stderr.write(f"error: {name} not found in {', '.join(os.path.abspath(d) for d in candidates())}.\n"
                     f"It is {source} (see PROVENANCE.md next to the full files); put it in one of those "
                     f"directories or set BERT_QA_SHARED_DATA to its directory. The tests do not need it "
                     f"(tests/data/real/ holds their trimmed copies).\n")
    raise SystemExit(2)
