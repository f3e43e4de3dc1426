"""Our windowing must give exactly squad_lib.convert_examples_to_features' features."""
import copy
import random

import pytest
from official.nlp.data import squad_lib
from official.nlp.tools import tokenization as official

from bert_qa import squad_data, windowing
from bert_qa.tokenization import CachedFullTokenizer
from tests import fixtures


def _collect(is_training):
    out = []
    if is_training:
        return out, out.append
    return out, lambda feature, is_padding: out.append((copy.deepcopy(feature), is_padding))


def _assert_same(examples, vocab_file, is_training, seq_len=384, stride=128, query_len=64, batch_size=8):
    ref, ref_fn = _collect(is_training)
    ours, ours_fn = _collect(is_training)
    n_ref = squad_lib.convert_examples_to_features(
        examples, official.FullTokenizer(vocab_file, True), seq_len, stride, query_len, is_training,
        ref_fn, batch_size=batch_size)
    n_ours = windowing.convert_examples_to_features(
        examples, CachedFullTokenizer(vocab_file, True), seq_len, stride, query_len, is_training,
        ours_fn, batch_size=batch_size)
    assert n_ours == n_ref
    assert len(ours) == len(ref)
    for a, b in zip(ref, ours):
        if not is_training:
            assert a[1] == b[1]  # is_padding
            a, b = a[0], b[0]
        assert vars(a) == vars(b)
    return n_ref


def _first_answer_articles(data, max_questions):
    kept, n = [], 0
    for article in data:
        paragraphs = []
        for p in article["paragraphs"]:
            qas = [dict(qa, answers=qa["answers"][:1]) for qa in p["qas"]]
            paragraphs.append(dict(p, qas=qas))
            n += len(qas)
        kept.append(dict(article, paragraphs=paragraphs))
        if n >= max_questions:
            break
    return kept


@pytest.mark.parametrize("is_training", [True, False])
def test_thousands_of_real_questions(tmp_path, vocab_file, is_training):
    path = fixtures.write_squad(str(tmp_path / "train.json"),
                                _first_answer_articles(fixtures.new_wiki_articles(), 2500))
    examples = squad_lib.read_squad_examples(path, is_training, False)
    assert len(examples) >= 2500
    n = _assert_same(examples, vocab_file, is_training)
    assert n >= len(examples)


def test_long_documents_short_windows(tmp_path, vocab_file):
    """COVID-QA contexts are whole papers: dozens of overlapping spans per question."""
    covid = fixtures.load_squad("covid-qa-200423-prerelease.fixed.json")["data"]
    path = fixtures.write_squad(str(tmp_path / "covid.json"), _first_answer_articles(covid, 60)[:3])
    for is_training in (True, False):
        examples = squad_lib.read_squad_examples(path, is_training, False)
        n = _assert_same(examples, vocab_file, is_training, seq_len=128, stride=48, query_len=24)
        assert n > 20 * len(examples)


def test_unanswerable_v2_questions(tmp_path, vocab_file):
    """SQuAD v2.0-style: questions moved to another paragraph are marked impossible."""
    articles = _first_answer_articles(fixtures.load_squad("english_tydiqa_dev.json")["data"], 400)
    rng = random.Random(0)
    paragraphs = [p for a in articles for p in a["paragraphs"]]
    for i, p in enumerate(paragraphs):
        for qa in p["qas"]:
            qa["is_impossible"] = False
        if i % 3 == 0:  # add an unanswerable question borrowed from another paragraph
            donor = rng.choice(paragraphs)["qas"][0]
            p["qas"].append({"id": f"neg-{i}", "question": donor["question"], "answers": [],
                             "is_impossible": True})
    path = fixtures.write_squad(str(tmp_path / "v2.json"), articles, version="2.0")
    for is_training in (True, False):
        examples = squad_lib.read_squad_examples(path, is_training, True)
        assert sum(e.is_impossible for e in examples) > 100 or not is_training
        _assert_same(examples, vocab_file, is_training, seq_len=192, stride=64, query_len=32)


def test_sharded_windowing_matches_one_pass(vocab_file):
    """Windowing paragraph groups separately with offsets equals one pass (for Beam workers)."""
    questions = squad_data.read_questions(fixtures.real_data("english_tydiqa_dev.json"))[:200]
    examples, _ = squad_data.to_squad_examples(questions, is_training=False)
    tok = CachedFullTokenizer(vocab_file)
    whole = []
    windowing.convert_examples_to_features(examples, tok, 256, 128, 64, False,
                                           lambda f, is_padding: whole.append(f), pad_to_batch=False)
    parts, next_id, next_example = [], windowing.BASE_UNIQUE_ID, 0
    for chunk in (examples[:70], examples[70:150], examples[150:]):
        got = []
        n = windowing.convert_examples_to_features(chunk, tok, 256, 128, 64, False,
                                                   lambda f, is_padding: got.append(f),
                                                   base_unique_id=next_id,
                                                   first_example_index=next_example, pad_to_batch=False)
        parts.extend(got)
        next_id += n
        next_example += len(chunk)
    assert [vars(f) for f in parts] == [vars(f) for f in whole]
