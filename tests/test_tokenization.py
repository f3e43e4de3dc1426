"""CachedFullTokenizer must equal tf-models-official's FullTokenizer on everything."""
import json

import pytest
from official.nlp.tools import tokenization as official

from bert_qa.squad_data import split_context
from bert_qa.tokenization import CachedFullTokenizer
from tests import fixtures

# Every real file shipped in the repository (tests/data/real/README.md).
FILES = ["new_wiki_train.json", "new_wiki_eval.json", "amazon_reviews_v1.0.json", "english_tydiqa_train.json",
         "english_tydiqa_dev.json", "qed-nq-dev.squad.json", "qed-nq-train-prerelease.squad.json",
         "covid-qa-200423-prerelease.fixed.json"]

EDGE_CASES = [
    "", "   ", "Hello, World!", "don't", "U.S.A.", "naïve café Ångström", "北京大学 is in 北京",
    "tab\tnew\nline\rcr", "ctrl\x00\x01\x07\x0b\x0c\x1b\x7fchars", "zero\u200bwidth", "\ufffdreplacement",
    "x" * 401, "y" * 400 + "!", "ＦＵＬＬｗｉｄｔｈ", "emoji 🤗 text", "a\u00a0nbsp", "1,000.50$", "##hash",
    "[CLS] [SEP] [UNK]", "e\u0301 combining", "İstanbul", "ǅ titlecase", "ß straße", "^`~|\\{}",
]


def _strings():
    words, questions = set(), set()
    for name in FILES:
        with open(fixtures.real_data(name), encoding="utf-8") as f:
            data = json.load(f)["data"]
        for article in data:
            for p in article["paragraphs"]:
                words.update(split_context(p["context"])[0])
                for qa in p["qas"]:
                    questions.add(qa["question"])
                    for a in qa.get("answers", []):
                        questions.add(a["text"])
    return sorted(words), sorted(questions)


@pytest.mark.parametrize("do_lower_case", [True, False])
def test_equals_full_tokenizer_on_real_data_and_edge_cases(vocab_file, do_lower_case):
    words, questions = _strings()
    assert len(words) > 45_000 and len(questions) > 12_000  # 45,577 and 12,515 distinct strings
    reference = official.FullTokenizer(vocab_file, do_lower_case)
    ours = CachedFullTokenizer(vocab_file, do_lower_case)
    mismatches = [s for s in words + questions + EDGE_CASES if ours.tokenize(s) != reference.tokenize(s)]
    assert mismatches == []
    # A second pass is served from the memo and must not change anything.
    assert all(ours.tokenize(s) == reference.tokenize(s) for s in EDGE_CASES + questions[:500])


def test_ids_round_trip(vocab_file):
    tok = CachedFullTokenizer(vocab_file)
    tokens = tok.tokenize("The quick brown fox jumped over Ångström's lazy dog.")
    assert tok.convert_ids_to_tokens(tok.convert_tokens_to_ids(tokens)) == tokens
