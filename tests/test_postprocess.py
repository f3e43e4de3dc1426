"""bert_qa.postprocess against squad_lib.postprocess_output (what Model Maker runs): the same
predictions, n-best lists (texts, probabilities, logits, order) and null odds."""
from __future__ import annotations

import numpy as np
import pytest
from official.legacy.bert import run_squad_helper
from official.nlp.data import squad_lib

from bert_qa import postprocess, squad_data, windowing
from bert_qa.tokenization import CachedFullTokenizer
from tests import fixtures

AWKWARD = [  # contexts where BasicTokenizer and the whitespace words disagree most
    "Café déjà-vu: naïve façades (1920–1930) cost $4.5M — « très cher »!",
    "東京は日本の首都です。 Tokyo's population is 14,000,000 people.",
    "Emoji 🎉🎉 party at 10:30pm; e-mail: a.b@c.de, URL https://x.y/z?q=1&r=2.",
    "Zero\u200bwidth and NBSP\u00a0joined words, tabs\tand non-breaking\u202fspaces.",
    "ÅNGSTRÖM Ǆ ﬁnal ligature ﬂow, Ⅻ roman, ½ fraction, Straße.",
]


def _examples():
    questions = squad_data.read_questions(fixtures.real_data("english_tydiqa_dev.json"))[:150]
    for k, context in enumerate(AWKWARD):
        questions.append(squad_data.Question(id=f"awkward-{k}", title="t", context=context,
                                             question="What?", answer_texts=(), answer_starts=()))
    examples, _ = squad_data.to_squad_examples(questions, is_training=False, multi_answer="first")
    return examples


@pytest.fixture(scope="module")
def windowed():
    examples = _examples()
    features = []
    tokenizer = CachedFullTokenizer(fixtures.minilm_vocab(), True)
    # Short windows: many features per question, so the max-context and null rules matter.
    windowing.convert_examples_to_features(examples, tokenizer, 96, 32, 24, False,
                                           lambda f, is_padding: features.append(f), batch_size=8)
    return examples, features


def _results(features, seed, scale):
    rng = np.random.default_rng(seed)
    out = []
    for f in features:
        start, end = (rng.normal(0, scale, size=(2, 96))).astype(np.float32)
        if seed % 2:  # ties: logits rounded coarsely, so stable ordering is exercised
            start, end = np.round(start), np.round(end)
        out.append(run_squad_helper.RawResult(unique_id=f.unique_id, start_logits=start.tolist(),
                                              end_logits=end.tolist()))
    return out


@pytest.mark.parametrize("seed,scale,n_best,max_len", [(0, 2.0, 20, 30), (1, 3.0, 20, 30), (2, 0.5, 5, 4),
                                                        (3, 8.0, 10, 1)])
@pytest.mark.parametrize("v2,threshold", [(False, 0.0), (True, 0.0), (True, -1.5)])
def test_same_answers_as_squad_lib(windowed, seed, scale, n_best, max_len, v2, threshold):
    examples, features = windowed
    results = _results(features, seed, scale)
    results = results[: len(results) - 3]  # features without a result are skipped by both
    args = dict(n_best_size=n_best, max_answer_length=max_len, do_lower_case=True,
                version_2_with_negative=v2, null_score_diff_threshold=threshold)
    reference = squad_lib.postprocess_output(examples, features, results, **args)
    ours = postprocess.postprocess_output(examples, features, results, **args)
    assert ours[0] == reference[0]
    assert ours[1] == reference[1]  # texts, probabilities, logits, order: exactly
    assert ours[2] == reference[2]
    texts = {e["text"] for nbest in ours[1].values() for e in nbest}
    assert any(t and t not in ("empty",) for t in texts)  # real answers were produced


def test_cased_vocabulary_the_same(windowed):
    examples, features = windowed
    results = _results(features, 5, 2.0)
    args = dict(n_best_size=20, max_answer_length=30, do_lower_case=False)
    assert postprocess.postprocess_output(examples, features, results, **args) == \
        squad_lib.postprocess_output(examples, features, results, **args)
