"""bert_qa.postprocess against squad_lib.postprocess_output (what Model Maker runs): the same
predictions, n-best lists (texts, probabilities, logits, order) and null odds."""
from __future__ import annotations

import numpy as np
import pytest
from official.legacy.bert import run_squad_helper
from official.nlp.data import squad_lib
from official.nlp.tools import tokenization

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


def _results(features, seed, scale, null_bias=0.0):
    rng = np.random.default_rng(seed)
    out = []
    for f in features:
        start, end = (rng.normal(0, scale, size=(2, 96))).astype(np.float32)
        start[0] += null_bias  # a model leaning to "no answer" (random logits never do)
        end[0] += null_bias
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


@pytest.mark.parametrize("do_lower_case", [True, False])
def test_final_text_same_as_squad_lib(do_lower_case):
    """get_final_text maps a normalized prediction back onto the original words (or gives up and
    returns them whole): every substring of the tokenized span as a prediction, including the
    empty one and ones starting or ending at a space, gives squad_lib's text."""
    basic = tokenization.BasicTokenizer(do_lower_case=do_lower_case)
    spans = ["Steve Smith's"]
    for example in _examples()[-len(AWKWARD):]:
        words = example.doc_tokens
        spans += [" ".join(words[i:i + 3]) for i in range(len(words))]
    mapped = 0
    for orig_text in spans:
        tok_text = " ".join(basic.tokenize(orig_text))
        preds = {tok_text[i:j] for i in range(len(tok_text) + 1) for j in range(i, len(tok_text) + 1)}
        for pred_text in sorted(preds) + ["not there"]:
            expected = squad_lib.get_final_text(pred_text, orig_text, do_lower_case)
            assert postprocess._final_text(pred_text, orig_text, tok_text) == expected, (pred_text, orig_text)
            mapped += expected != orig_text
    assert mapped > 1000  # most predictions map to a part of the original text


def _both(examples, features, results, **args):
    """(ours, squad_lib's) outputs on the same inputs, asserted identical; squad_lib's returned."""
    reference = squad_lib.postprocess_output(examples, features, results, **args)
    assert postprocess.postprocess_output(examples, features, results, **args) == reference
    return reference


def test_features_without_a_result(windowed):
    """A feature with no result (an incomplete prediction run) is skipped wherever it is in its
    question; a question with no result at all gets the null answer, null odds 1000000."""
    examples, features = windowed
    first_window = {}
    for f in features:
        first_window.setdefault(f.example_index, f.unique_id)
    dropped = {uid for index, uid in first_window.items() if index % 3 == 0}
    results = [r for r in _results(features, 0, 2.0) if r.unique_id not in dropped]
    windows = {index: sum(f.example_index == index for f in features) for index in first_window}
    assert {windows[index] > 1 for index in first_window if index % 3 == 0} == {True, False}
    args = dict(n_best_size=20, max_answer_length=30, do_lower_case=True)
    _both(examples, features, results, **args)
    predictions, nbest, null_odds = _both(examples, features, results, version_2_with_negative=True, **args)
    unanswered = [examples[index].qas_id for index in first_window if index % 3 == 0 and windows[index] == 1]
    for qas_id in unanswered:
        assert (predictions[qas_id], null_odds[qas_id]) == ("", 1000000)
        assert nbest[qas_id] == [{"text": "", "probability": 1.0, "start_logit": 0, "end_logit": 0}]


def _answered(nbest):
    return [qas_id for qas_id, entries in nbest.items() if any(e["text"] for e in entries)]


def test_null_threshold_is_strict(windowed):
    """The null answer wins only if its score beats the best span's by more than the threshold: a
    question whose score difference equals the threshold keeps its answer."""
    examples, features = windowed
    examples, features = examples[:40], [f for f in features if f.example_index < 40]
    results = _results(features, 0, 2.0)
    args = dict(n_best_size=20, max_answer_length=30, do_lower_case=True, version_2_with_negative=True)
    _, nbest, null_odds = _both(examples, features, results, **args)
    for qas_id in _answered(nbest)[:3]:
        best = next(e["text"] for e in nbest[qas_id] if e["text"])
        predictions, _, _ = _both(examples, features, results, null_score_diff_threshold=null_odds[qas_id], **args)
        assert predictions[qas_id] == best


def test_default_null_threshold(windowed):
    """Without a threshold, squad_lib's default 0.0: the null answer wins as soon as it scores more
    than the best span."""
    examples, features = windowed
    results = _results(features, 2, 0.5, null_bias=1.5)
    predictions, nbest, null_odds = _both(examples, features, results, n_best_size=20, max_answer_length=30,
                                          do_lower_case=True, version_2_with_negative=True)
    close = [qas_id for qas_id in _answered(nbest) if 0 < null_odds[qas_id] <= 1]
    assert close and all(predictions[qas_id] == "" for qas_id in close)


def test_null_ties_with_a_span_of_a_later_window(windowed):
    """A span scoring exactly the null score, found in a later window than the null one, ranks
    before the null answer (squad_lib's sort is stable and the null candidate comes last), and
    the tie keeps the answer."""
    examples, features = windowed
    results = {r.unique_id: r for r in _results(features, 0, 2.0)}
    index = next(f.example_index for f in features if f.example_index and
                 sum(g.example_index == f.example_index for g in features) > 1)
    windows = [f for f in features if f.example_index == index]
    for w, f in enumerate(windows):
        start, end = [-10.0] * 96, [-10.0] * 96
        start[0] = end[0] = 1.0 if w == 0 else 3.0  # the null score is window 0's: 2.0
        if w == 1:
            s = next(i for i in sorted(f.token_to_orig_map) if f.token_is_max_context[i])
            start[s] = end[s] = 1.0  # a one-token span scoring 2.0
        results[f.unique_id] = run_squad_helper.RawResult(unique_id=f.unique_id, start_logits=start,
                                                          end_logits=end)
    predictions, nbest, null_odds = _both(examples, features, list(results.values()), n_best_size=20,
                                          max_answer_length=30, do_lower_case=True,
                                          version_2_with_negative=True)
    qas_id = examples[index].qas_id
    assert [e["text"] for e in nbest[qas_id][:2]] == [predictions[qas_id], ""]
    assert predictions[qas_id] and null_odds[qas_id] == 0.0
