"""Rebuilds the tests' trimmed copies of the real data files (see README.md here).

Usage: python tests/data/real/make_subsets.py /path/to/dir/with/the/full/files
Each subset is the source's first N articles, whole, in source order, plus (for one file) the
article holding a named question; every field of every kept article is as in the source and the
top level keeps the source's keys ("version" where it has one). Written compactly, UTF-8, next to
this script. The New Wikipedia files the tests use are data/new_wiki_{train,eval}.json
(data/make_subset.py), so none is made here.
"""
import json
import os
import sys

# file name (as in the source directory) -> (first N articles, ids of questions whose article is also kept)
SUBSETS = {
    "english_tydiqa_train.json": (300, ["english-4511475170943706614-1"]),  # article 3,489: the one
    # training question squad_lib cannot align ("27\xa0years"), so the training-mode comparison keeps it
    "english_tydiqa_dev.json": (440, []),  # the whole file
    "qed-nq-dev.squad.json": (300, []),
    "qed-nq-train-prerelease.squad.json": (150, []),
    "covid-qa-200423-prerelease.fixed.json": (8, []),
    "amazon_reviews_v1.0.json": (30, []),
}


def subset(source: dict, first: int, question_ids) -> dict:
    wanted = set(question_ids)
    kept = [article for i, article in enumerate(source["data"])
            if i < first or any(qa["id"] in wanted for p in article["paragraphs"] for qa in p["qas"])]
    found = {qa["id"] for article in kept for p in article["paragraphs"] for qa in p["qas"]}
    missing = wanted - found
    if missing:
        raise SystemExit(f"question ids not in the source: {sorted(missing)}")
    return {key: (kept if key == "data" else value) for key, value in source.items()}


def main(source_dir: str) -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    for name, (first, question_ids) in SUBSETS.items():
        with open(os.path.join(source_dir, name), encoding="utf-8") as f:
            source = json.load(f)
        with open(os.path.join(here, name), "w", encoding="utf-8") as f:
            json.dump(subset(source, first, question_ids), f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
