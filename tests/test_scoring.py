"""Scores equal tf-models-official's official SQuAD scorers; per-question scores add up."""
import json
import random
import re
import subprocess
import sys

import pytest
from official.nlp.tools import squad_evaluate_v1_1, squad_evaluate_v2_0

from bert_qa import scoring
from tests import fixtures


def _predictions(dataset, rng, with_negatives=False):
    """Realistic predictions: exact, partial, wrong, over-long and empty answers."""
    preds = {}
    for article in dataset:
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                gold = qa["answers"][0]["text"] if qa["answers"] else ""
                r = rng.random()
                if r < 0.3:
                    preds[qa["id"]] = gold
                elif r < 0.5:
                    preds[qa["id"]] = " ".join(gold.split()[: max(1, len(gold.split()) // 2)])
                elif r < 0.7:
                    preds[qa["id"]] = p["context"][:40]
                elif r < 0.85:
                    preds[qa["id"]] = "The " + gold + ", indeed."
                else:
                    preds[qa["id"]] = ""
    return preds


def _with_negatives(dataset, rng):
    for article in dataset:
        for i, p in enumerate(article["paragraphs"]):
            for qa in p["qas"]:
                qa["is_impossible"] = False
            if i % 2 == 0:
                p["qas"].append({"id": p["qas"][0]["id"] + "-neg", "question": "Is it unanswerable?",
                                 "answers": [], "is_impossible": True})
    return dataset


def test_v1_metrics_and_per_question_scores(tmp_path):
    dataset = fixtures.load_squad("qed-nq-dev.squad.json")["data"]
    preds = _predictions(dataset, random.Random(1))
    official = squad_evaluate_v1_1.evaluate(dataset, preds)
    ours = scoring.score(dataset, preds)
    assert ours["exact_match"] == official["exact_match"] and ours["f1"] == official["final_f1"]
    assert 0.2 < ours["f1"] < 0.8  # the mix above is neither all right nor all wrong
    per_q = [scoring.question_scores([a["text"] for a in qa["answers"]], preds[qa["id"]])
             for a_ in dataset for p in a_["paragraphs"] for qa in p["qas"]]
    assert abs(sum(s["exact_match"] for s in per_q) / len(per_q) - official["exact_match"]) < 1e-9
    assert abs(sum(s["f1"] for s in per_q) / len(per_q) - official["final_f1"]) < 1e-9


def test_v2_metrics_and_per_question_scores():
    rng = random.Random(2)
    dataset = _with_negatives(fixtures.load_squad("english_tydiqa_dev.json")["data"], rng)
    preds = _predictions(dataset, rng)
    na_probs = {qid: rng.uniform(-5, 5) for qid in preds}
    official = squad_evaluate_v2_0.evaluate(dataset, preds, na_probs)
    ours = scoring.score(dataset, preds, na_probs)
    assert official.items() <= ours.items()
    assert (ours["best_f1"], ours["best_exact_thresh"]) == (official["final_f1"], official["final_exact_thresh"])
    for key in ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1",
                "best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh"):
        assert key in ours
    per_q = [scoring.question_scores([a["text"] for a in qa["answers"]], preds[qa["id"]], True)
             for a_ in dataset for p in a_["paragraphs"] for qa in p["qas"]]
    no_threshold = squad_evaluate_v2_0.evaluate(dataset, preds, None)
    assert abs(100 * sum(s["f1"] for s in per_q) / len(per_q) - no_threshold["f1"]) < 1e-9
    assert abs(100 * sum(s["exact_match"] for s in per_q) / len(per_q) - no_threshold["exact"]) < 1e-9


def test_score_cli_prints_official_metrics(tmp_path):
    rng = random.Random(3)
    data = fixtures.load_squad("english_tydiqa_dev.json")
    preds = _predictions(data["data"], rng)
    (tmp_path / "d.json").write_text(json.dumps(data))
    (tmp_path / "p.json").write_text(json.dumps(preds))
    out = subprocess.run([sys.executable, "-m", "bert_qa_cli.main", "score", "--data", str(tmp_path / "d.json"),
                          "--predictions", str(tmp_path / "p.json")],
                         capture_output=True, text=True, check=True, cwd=fixtures.REPO_ROOT).stdout
    printed = json.loads(out)
    official = squad_evaluate_v1_1.evaluate(data["data"], preds)
    assert printed["exact_match"] == pytest.approx(official["exact_match"], abs=1e-12)
    assert printed["f1"] == pytest.approx(official["final_f1"], abs=1e-12)

    v2 = _with_negatives(data["data"], rng)
    preds = _predictions(v2, rng)
    na = {q: rng.uniform(-3, 3) for q in preds}
    (tmp_path / "d2.json").write_text(json.dumps({"data": v2}))
    (tmp_path / "p2.json").write_text(json.dumps(preds))
    (tmp_path / "na.json").write_text(json.dumps(na))
    out = subprocess.run([sys.executable, "-m", "bert_qa_cli.main", "score", "--data", str(tmp_path / "d2.json"),
                          "--predictions", str(tmp_path / "p2.json"), "--na-prob", str(tmp_path / "na.json")],
                         capture_output=True, text=True, check=True, cwd=fixtures.REPO_ROOT).stdout
    printed = json.loads(out)
    official = squad_evaluate_v2_0.evaluate(v2, preds, na)
    for key, value in official.items():
        assert printed[key] == pytest.approx(value, abs=1e-9), key


def _squad(*qas):
    return {"version": "2.0", "data": [{"title": "t", "paragraphs": [{"context": "Paris is in France.",
                                                                     "qas": list(qas)}]}]}


def _qa(qid, answer="Paris", impossible=False):
    return {"id": qid, "question": "Where?", "is_impossible": impossible,
            "answers": [] if impossible else [{"text": answer, "answer_start": 0}]}


@pytest.mark.parametrize("data,predictions,na_probs,message", [
    (_squad(_qa("a"), _qa("b", impossible=True)), {"a": "Paris"}, None, r"1 of 2 questions have no prediction"),
    # Thousands of missing ids would drown the message: it names the first three, in data order.
    (_squad(*[_qa(q) for q in "abcde"]), {"a": "Paris"}, None,
     r"4 of 5 questions have no prediction \(first: \['b', 'c', 'd'\]\); pass --allow-missing"),
    (_squad(_qa("a")), ["Paris"], None, r"must be an object \{question id: answer text\}, not a JSON list"),
    (_squad(_qa("a")), {"a": None}, None, r"question a: the answer must be a string, not None"),
    (_squad(_qa("a")), {"a": 3}, None, r"question a: the answer must be a string, not 3"),
    ({"version": "1.1"}, {"a": "x"}, None, r"needs a top-level object with a 'data' list"),
    (_squad({**_qa("a"), "is_impossible": "false"}), {"a": "Paris"}, None, r"is_impossible must be true or false"),
    (_squad({**_qa("a"), "id": 7}), {"7": "Paris"}, None, r"has id 7; ids are strings"),
    (_squad(_qa("a")), {"a": "Paris"}, {"a": "0.5"}, r"question a: needs a finite number, not '0.5'"),
    (_squad(_qa("a"), _qa("b")), {"a": "Paris", "b": ""}, {"a": 0.1},
     r"question b has no null odds: 1 of 2 questions are missing from the file"),
    (_squad(*[_qa(q) for q in "abcde"]), {q: "Paris" for q in "abcde"}, {"a": 0.1},
     r"question b has no null odds: 4 of 5 questions are missing from the file \(first: \['b', 'c', 'd'\]\)"),
    (_squad(_qa("a")), {"a": "Paris"}, [0.5], r"null odds \S*na\.json: must be an object \{question id: number\}"),
    # Each of these once escaped from the official scorers as a traceback (exit 3).
    (_squad(_qa("a")), {"a": "Paris"}, {"a": 10 ** 400}, r"question a: needs a finite number"),  # OverflowError
    ({"data": []}, {}, None, r"has no questions to score"),  # ZeroDivisionError
    (_squad({"id": "a", "question": "?", "answers": []}), {"a": ""}, None,
     r"question a has no answers: SQuAD v1.1 scoring needs one"),  # max() of an empty list
    (_squad({"id": "a", "question": "?"}), {"a": ""}, None, r"question a: 'answers' must be a list"),  # KeyError
    (_squad({**_qa("a"), "answers": "Paris"}), {"a": ""}, None, r"question a: 'answers' must be a list, not 'Paris'"),
    (_squad({"id": "a", "question": "?", "answers": [{"text": 5}]}), {"a": ""}, None,
     r"question a: answers\[0\] needs a string 'text'"),  # AttributeError
    ({"data": [{"paragraphs": [7]}]}, {}, None, r"data\[0\]\.paragraphs\[0\]: needs a 'qas' list"),
    ({"data": [{"paragraphs": [{"qas": ["a"]}]}]}, {}, None, r"qas\[0\]: a question must be an object"),
    (_squad(_qa("a"), _qa("b"), _qa("a")), {"a": "Paris", "b": "Paris"}, None,
     r"question a occurs twice \(data\[0\]\.paragraphs\[0\]\.qas\[0\] and data\[0\]\.paragraphs\[0\]\.qas\[2\]\)"),
])
def test_score_refuses_inputs_the_official_scorers_would_misscore(tmp_path, capsys, data, predictions,
                                                                  na_probs, message):
    """Each case once silently gave a wrong score or a traceback: now exit 1 naming file and question."""
    from bert_qa_cli.main import main

    args = ["score", "--data", str(tmp_path / "d.json"), "--predictions", str(tmp_path / "p.json")]
    (tmp_path / "d.json").write_text(json.dumps(data))
    (tmp_path / "p.json").write_text(json.dumps(predictions))
    if na_probs is not None:
        (tmp_path / "na.json").write_text(json.dumps(na_probs))
        args += ["--na-prob", str(tmp_path / "na.json")]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert "Traceback" not in err


def _write(tmp_path, data, predictions, na_probs=None):
    """(data, predictions, null odds or None) file paths, as strings."""
    paths = [tmp_path / "d.json", tmp_path / "p.json", tmp_path / "na.json"]
    for path, content in zip(paths, (data, predictions, na_probs)):
        if content is not None:
            path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(paths[0]), str(paths[1]), str(paths[2]) if na_probs is not None else None


@pytest.mark.parametrize("broken", ["data", "predictions", "null odds"])
def test_an_unreadable_file_is_named_with_its_role(tmp_path, broken):
    files = {"data": _squad(_qa("a")), "predictions": {"a": "Paris"}, "null odds": {"a": 0.0}}
    files[broken] = '{"a": "Par'
    d, p, na = _write(tmp_path, files["data"], files["predictions"], files["null odds"])
    path = {"data": d, "predictions": p, "null odds": na}[broken]
    with pytest.raises(scoring.ScoringInputError, match=rf"^{broken} {re.escape(path)}: cannot read it as JSON"):
        scoring.score_files(d, p, na)


def test_input_errors_name_the_file_and_question_at_fault(tmp_path):
    """score_files (bertqa score, and Python callers) names the file at fault, not the role alone."""
    d, p, na = _write(tmp_path, _squad(_qa("a"), _qa("b")), {"a": "Paris", "b": 3}, {"a": 0.0, "b": 0.0})
    with pytest.raises(scoring.ScoringInputError,
                       match=rf"^predictions {re.escape(p)}: question b: the answer must be a string, not 3$"):
        scoring.score_files(d, p, na)
    d, p, na = _write(tmp_path, _squad(_qa("a"), _qa("b")), {"a": "Paris", "b": ""}, {"a": 0.0, "b": "high"})
    with pytest.raises(scoring.ScoringInputError,
                       match=rf"^null odds {re.escape(na)}: question b: needs a finite number, not 'high'$"):
        scoring.score_files(d, p, na)
    d, p, na = _write(tmp_path, _squad(_qa("a"), _qa("a")), {"a": "Paris"})
    with pytest.raises(scoring.ScoringInputError, match=rf"^data {re.escape(d)}: question a occurs twice"):
        scoring.score_files(d, p, na)


def test_missing_predictions_are_refused_unless_allowed(tmp_path):
    """The default, in Python as on the command line, is to refuse: never a silently inflated score."""
    data, predictions = _squad(_qa("a"), _qa("b")), {"a": "Paris"}
    d, p, _ = _write(tmp_path, data, predictions)
    with pytest.raises(scoring.ScoringInputError, match=rf"^predictions {re.escape(p)}: 1 of 2 questions have "
                                                        r"no prediction \(first: \['b'\]\)"):
        scoring.score_files(d, p)
    with pytest.raises(scoring.ScoringInputError, match=r"1 of 2 questions have no prediction"):
        scoring.check_inputs(data["data"], predictions, None, d, p, None)
    assert scoring.score_files(d, p, allow_missing=True)["exact_match"] == 0.5


def test_a_missing_prediction_abstains_when_allowed(tmp_path):
    """With allow_missing a question without a prediction is answered with the empty string:
    right for an unanswerable question, as the official scorer rates an explicit abstention."""
    data = _squad(_qa("a"), _qa("b", impossible=True), _qa("c", impossible=True))
    na_probs = {"a": 0.1, "b": 0.9, "c": 0.8}
    d, p, na = _write(tmp_path, data, {"a": "Paris", "c": "Paris"}, na_probs)
    metrics = scoring.score_files(d, p, na, allow_missing=True)
    official = squad_evaluate_v2_0.evaluate(data["data"], {"a": "Paris", "b": "", "c": "Paris"}, na_probs)
    assert official.items() <= metrics.items()
    assert (metrics["total"], metrics["NoAns_exact"], metrics["exact"]) == (3, 50.0, pytest.approx(200 / 3))


def test_prediction_ids_that_are_no_question_are_reported_and_ignored(tmp_path):
    """A misspelt id leaves its question unanswered: bertqa score warns with the ids that name
    no question (and only those), and scores as the official scripts do, ignoring them."""
    data = _squad(_qa("a"), _qa("b", impossible=True))
    predictions = {"a": "Paris", "typo-b": "", "b": "", "zz": "France"}
    d, p, na = _write(tmp_path, data, predictions, {"a": 0.0, "b": 0.5})
    reported = []
    metrics = scoring.score_files(d, p, na, on_extra_ids=reported.append)
    assert reported == [["typo-b", "zz"]]
    official = squad_evaluate_v2_0.evaluate(data["data"], {"a": "Paris", "b": ""}, {"a": 0.0, "b": 0.5})
    assert official.items() <= metrics.items() and metrics["exact"] == 100.0

    reported.clear()
    d, p, _ = _write(tmp_path, _squad(_qa("a")), {"a": "Paris"})
    assert scoring.score_files(d, p, on_extra_ids=reported.append)["exact_match"] == 1.0
    assert reported == []  # nothing to warn about


def test_null_odds_of_ids_not_in_the_data_are_ignored(tmp_path):
    """The official v2.0 scorer sorts every key of the null odds: an extra id with a
    non-number once made it raise TypeError."""
    data = _squad(_qa("a"), _qa("b", impossible=True))
    (tmp_path / "d.json").write_text(json.dumps(data))
    (tmp_path / "p.json").write_text(json.dumps({"a": "Paris", "b": ""}))
    (tmp_path / "na.json").write_text(json.dumps({"a": 0.0, "b": 0.9, "other": "n/a"}))
    metrics = scoring.score_files(str(tmp_path / "d.json"), str(tmp_path / "p.json"), str(tmp_path / "na.json"))
    assert (metrics["total"], metrics["exact"]) == (2, 100.0)


def test_missing_predictions_are_scored_not_dropped_when_allowed(tmp_path):
    """The official v2.0 script drops a question without prediction (2 questions, 1 predicted:
    exact 100); with allow_missing it counts as unanswered: wrong for the answerable one."""
    data = _squad(_qa("a"), _qa("b"))
    (tmp_path / "d.json").write_text(json.dumps(data))
    (tmp_path / "p.json").write_text(json.dumps({"a": "Paris"}))
    (tmp_path / "na.json").write_text(json.dumps({"a": 0.0, "b": 0.0}))
    metrics = scoring.score_files(str(tmp_path / "d.json"), str(tmp_path / "p.json"), str(tmp_path / "na.json"),
                                  allow_missing=True)
    assert (metrics["total"], metrics["exact"]) == (2, 50.0)
    with pytest.raises(scoring.ScoringInputError, match="cannot read it as JSON"):
        (tmp_path / "t.json").write_text('{"a": "Par')
        scoring.score_files(str(tmp_path / "d.json"), str(tmp_path / "t.json"))


def test_scores_against_hand_computed_cases():
    """EM/F1 worked out by hand (SQuAD normalisation: lower case, no punctuation or articles),
    not by the official scorer that ``score`` wraps."""
    def qa(qid, *golds):
        return {"id": qid, "question": "?", "answers": [{"text": g, "answer_start": 0} for g in golds]}

    data = [{"title": "t", "paragraphs": [{"context": "c", "qas": [
        qa("q1", "the Eiffel Tower"),       # "Eiffel Tower": articles dropped -> EM 1, F1 1
        qa("q2", "Paris, France"),          # "Paris": P 1, R 1/2 -> F1 2/3, EM 0
        qa("q3", "1889", "in 1889"),        # "in 1889": the best gold counts -> EM 1, F1 1
        qa("q4", "Gustave Eiffel"),         # "Alexandre Gustave Eiffel": P 2/3, R 1 -> F1 4/5
    ]}]}]
    preds = {"q1": "Eiffel Tower", "q2": "Paris", "q3": "in 1889", "q4": "Alexandre Gustave Eiffel"}
    ours = scoring.score(data, preds)
    assert ours["exact_match"] == pytest.approx(2 / 4, abs=1e-12)
    assert ours["f1"] == pytest.approx((1 + 2 / 3 + 1 + 4 / 5) / 4, abs=1e-12)
    assert scoring.question_scores(["Paris, France"], "Paris")["f1"] == pytest.approx(2 / 3, abs=1e-12)

    # SQuAD v2.0 (percent): an unanswerable question answered "" is right, answered at all wrong.
    data[0]["paragraphs"][0]["qas"] = data[0]["paragraphs"][0]["qas"][:2] + [
        {"id": "q5", "question": "?", "answers": [], "is_impossible": True}]
    for qa_ in data[0]["paragraphs"][0]["qas"][:2]:
        qa_["is_impossible"] = False
    v2 = scoring.score(data, {"q1": "Eiffel Tower", "q2": "Paris", "q5": ""}, {"q1": 0.0, "q2": 0.0, "q5": 0.0})
    assert v2["exact"] == pytest.approx(100 * 2 / 3, abs=1e-9)
    assert v2["f1"] == pytest.approx(100 * (1 + 2 / 3 + 1) / 3, abs=1e-9)
    assert v2["NoAns_exact"] == pytest.approx(100.0)
    wrong = scoring.score(data, {"q1": "Eiffel Tower", "q2": "Paris", "q5": "Paris"}, {"q1": 0.0, "q2": 0.0, "q5": 0.0})
    assert wrong["NoAns_f1"] == pytest.approx(0.0) and wrong["exact"] == pytest.approx(100 / 3, abs=1e-9)


def test_question_scores_of_a_question_without_gold_answer():
    """SQuAD v1.1 (the default) has no rule for a question without answers: refused, as the
    official v1.1 scorer cannot score it. In v2.0 it is unanswerable: only abstaining is right."""
    with pytest.raises(ValueError, match=r"^SQuAD v1\.1 scoring needs at least one ground-truth answer$"):
        scoring.question_scores([], "")
    assert scoring.question_scores([], "", True) == {"exact_match": 1.0, "f1": 1.0}
    assert scoring.question_scores([], "Paris", True) == {"exact_match": 0.0, "f1": 0.0}
