"""Official SQuAD scores, computed by tf-models-official's own scorers.

We do not re-implement EM/F1: ``official.nlp.tools.squad_evaluate_v1_1`` and
``squad_evaluate_v2_0`` are what Model Maker reports, so we call them. Note their scales
differ, as in the reference: v1.1 gives fractions (``exact_match``, ``final_f1``; we add
``f1`` as an alias), v2.0 gives percentages (``exact``, ``f1``, ``HasAns_*``, ``NoAns_*``,
``best_*`` (= Model Garden's ``final_*``) and their thresholds). Per-question scores (for slicing) use the same modules'
normalisation and token F1.
"""
from __future__ import annotations

import math
import reprlib
from typing import Callable, Dict, List, Optional, Tuple

from official.nlp.tools import squad_evaluate_v1_1, squad_evaluate_v2_0

from bert_qa.errors import InputError
from bert_qa.squad_data import JSONReadError, loads_json


def is_v2(dataset: List[dict]) -> bool:
    """A dataset is SQuAD v2.0-style if any question is marked impossible."""
    return any(qa.get("is_impossible")
               for article in dataset for p in article["paragraphs"] for qa in p["qas"])


def score(dataset: List[dict], predictions: Dict[str, str], na_probs: Optional[Dict[str, float]] = None,
          version_2_with_negative: Optional[bool] = None) -> dict:
    """The official metrics for ``predictions`` over a SQuAD ``data`` list."""
    if version_2_with_negative is None:
        version_2_with_negative = na_probs is not None or is_v2(dataset)
    if version_2_with_negative:
        # Predictions for ids the data does not have are ignored, as both official scripts
        # (v1.1 and v2.0) do: they loop over the data's questions only. Model Garden's copy of
        # the v2.0 script also runs the precision-recall analysis over every prediction id
        # (the official one only with --out-image-dir), which fails on an extra id (KeyError).
        ids = {qa["id"] for article in dataset for p in article["paragraphs"] for qa in p["qas"]}
        predictions = {qid: text for qid, text in predictions.items() if qid in ids}
        if na_probs is not None:
            na_probs = {qid: value for qid, value in na_probs.items() if qid in ids}
        metrics = dict(squad_evaluate_v2_0.evaluate(dataset, predictions, na_probs))
        # The official SQuAD 2.0 script calls these best_*; Model Garden calls them final_*.
        for name in ("exact", "exact_thresh", "f1", "f1_thresh"):
            metrics[f"best_{name}"] = metrics[f"final_{name}"]
        return metrics
    metrics = dict(squad_evaluate_v1_1.evaluate(dataset, predictions))
    metrics["f1"] = metrics["final_f1"]
    return metrics


class ScoringInputError(InputError):
    """A data, predictions or null-odds file the scorers would mis-score; names file and question."""


def _load(path: str, what: str):
    # utf-8-sig: a byte-order mark is accepted, as everywhere data is read.
    try:
        with open(path, encoding="utf-8-sig") as f:
            text = f.read()
    except (OSError, ValueError) as err:  # missing, a directory, not UTF-8
        raise ScoringInputError(f"{what} {path}: cannot read it as JSON: {err}") from err
    try:
        return loads_json(text)
    except JSONReadError as err:  # malformed, truncated, nested too deeply
        raise ScoringInputError(f"{what} {path}: cannot read it as JSON: {err}") from None


def _scorable(dataset, data_file: str) -> Tuple[List[dict], List[str], bool]:
    """(the ``data`` list as the official scorers read it, question ids, any is_impossible).

    Every field the scorers index is checked, so that they cannot fail half-way with a
    KeyError or TypeError: ``paragraphs`` and ``qas`` lists, string ids (each once),
    ``is_impossible`` booleans, ``answers`` lists of objects with a string ``text`` (an
    unanswerable question may leave ``answers`` out). Other fields are not the scorers'
    business (``bertqa validate`` checks them).
    """
    def bad(message: str):
        return ScoringInputError(f"data {data_file}: {message}")

    if not isinstance(dataset, list):
        raise ScoringInputError(f"data {data_file}: needs a top-level object with a 'data' list")
    scorable, ids, any_impossible = [], [], False
    seen: Dict[str, str] = {}
    for a_i, article in enumerate(dataset):
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise bad(f"data[{a_i}]: needs a 'paragraphs' list")
        paragraphs = []
        for p_i, paragraph in enumerate(article["paragraphs"]):
            where = f"data[{a_i}].paragraphs[{p_i}]"
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("qas"), list):
                raise bad(f"{where}: needs a 'qas' list")
            qas = []
            for q_i, qa in enumerate(paragraph["qas"]):
                if not isinstance(qa, dict):
                    raise bad(f"{where}.qas[{q_i}]: a question must be an object")
                qid = qa.get("id")
                if not isinstance(qid, str):
                    raise bad(f"a question has id {reprlib.repr(qid)}; ids are strings")
                if qid in seen:
                    raise bad(f"question {qid} occurs twice ({seen[qid]} and {where}.qas[{q_i}]): "
                              f"one prediction cannot score both")
                seen[qid] = f"{where}.qas[{q_i}]"
                impossible = qa.get("is_impossible", False)
                if not isinstance(impossible, bool):
                    raise bad(f"question {qid}: is_impossible must be true or false, not "
                              f"{reprlib.repr(impossible)}")
                answers = qa.get("answers", [] if impossible else None)
                if not isinstance(answers, list):
                    raise bad(f"question {qid}: 'answers' must be a list, not {reprlib.repr(answers)}")
                texts = []
                for k, answer in enumerate(answers):
                    if not isinstance(answer, dict) or not isinstance(answer.get("text"), str):
                        raise bad(f"question {qid}: answers[{k}] needs a string 'text'")
                    texts.append(answer["text"])
                any_impossible = any_impossible or impossible
                ids.append(qid)
                qas.append({"id": qid, "is_impossible": impossible, "answers": [{"text": t} for t in texts]})
            paragraphs.append({"qas": qas})
        scorable.append({"paragraphs": paragraphs})
    return scorable, ids, any_impossible


def _finite_number(value) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond float range
        return False


def check_inputs(dataset, predictions, na_probs, data_file: str, predictions_file: str,
                 na_prob_file: Optional[str], allow_missing: bool = False) -> Dict[str, str]:
    """What the official scorers take on trust, checked: every question accounted for.

    The file names are those the error messages name (``na_prob_file`` only with ``na_probs``).

    Returns the predictions to score: with ``allow_missing`` a question without a prediction
    is scored as answered with the empty string (wrong when it has an answer), not dropped, as
    the official v2.0 script would silently do.
    """
    dataset, ids, any_impossible = _scorable(dataset, data_file)
    if not ids:
        raise ScoringInputError(f"data {data_file}: has no questions to score")
    if na_probs is None and not any_impossible:  # SQuAD v1.1: every question needs a gold answer
        for article in dataset:
            for paragraph in article["paragraphs"]:
                for qa in paragraph["qas"]:
                    if not qa["answers"]:
                        raise ScoringInputError(
                            f"data {data_file}: question {qa['id']} has no answers: SQuAD v1.1 scoring "
                            f"needs one (mark unanswerable questions is_impossible: true for v2.0)")
    if not isinstance(predictions, dict):
        raise ScoringInputError(f"predictions {predictions_file}: must be an object {{question id: answer "
                                f"text}}, not a JSON {type(predictions).__name__}")
    for qid, answer in predictions.items():
        if not isinstance(answer, str):
            raise ScoringInputError(f"predictions {predictions_file}: question {qid}: the answer must be a "
                                    f"string, not {reprlib.repr(answer)}")
    missing = [qid for qid in ids if qid not in predictions]
    if missing and not allow_missing:
        raise ScoringInputError(f"predictions {predictions_file}: {len(missing)} of {len(ids)} questions have "
                                f"no prediction (first: {missing[:3]}); pass --allow-missing (bertqa score; "
                                f"allow_missing=True in Python) to score them as unanswered")
    if na_probs is not None:
        if not isinstance(na_probs, dict):
            raise ScoringInputError(f"null odds {na_prob_file}: must be an object {{question id: number}}")
        absent = [qid for qid in ids if qid not in na_probs]
        if absent:
            raise ScoringInputError(f"null odds {na_prob_file}: question {absent[0]} has no null odds: "
                                    f"{len(absent)} of {len(ids)} questions are missing from the file "
                                    f"(first: {absent[:3]}); it needs a number for every question")
        for qid in ids:
            value = na_probs[qid]
            if not _finite_number(value):
                raise ScoringInputError(f"null odds {na_prob_file}: question {qid}: needs a finite number, "
                                        f"not {reprlib.repr(value)}")
    return {**{qid: "" for qid in missing}, **predictions}


def extra_prediction_ids(dataset, predictions) -> List[str]:
    """Prediction ids that are no question of ``dataset``: ignored by the scorers (as the
    official scripts do), but worth a warning (a misspelt id leaves its question unanswered)."""
    if not isinstance(dataset, list) or not isinstance(predictions, dict):
        return []
    ids = {qa.get("id") for article in dataset if isinstance(article, dict)
           for p in article.get("paragraphs") or [] if isinstance(p, dict)
           for qa in p.get("qas") or [] if isinstance(qa, dict)}
    return [qid for qid in predictions if qid not in ids]


def score_files(data_file: str, predictions_file: str, na_prob_file: Optional[str] = None,
                allow_missing: bool = False, on_extra_ids: Optional[Callable[[List[str]], None]] = None
                ) -> dict:
    """The official metrics of a predictions file; ``on_extra_ids`` is called with the
    prediction ids that are no question of the data (ignored, as the official scripts do)."""
    data = _load(data_file, "data")
    dataset = data.get("data") if isinstance(data, dict) else None
    predictions = _load(predictions_file, "predictions")
    na_probs = _load(na_prob_file, "null odds") if na_prob_file else None
    extra = extra_prediction_ids(dataset, predictions)
    if extra and on_extra_ids is not None:
        on_extra_ids(extra)
    predictions = check_inputs(dataset, predictions, na_probs, data_file, predictions_file,
                               na_prob_file, allow_missing)
    scorable, ids, _ = _scorable(dataset, data_file)
    if na_probs is not None:  # the v2.0 scorer sorts every key: ids not in the data would break it
        na_probs = {qid: na_probs[qid] for qid in ids}
    return score(scorable, predictions, na_probs)


def question_scores(ground_truths: List[str], prediction: str, version_2_with_negative: bool = False
                    ) -> Dict[str, float]:
    """EM and F1 of one prediction (max over ground truths), by the official rules.

    Averaging these over a v1.1 dataset gives exactly ``score``'s exact_match/f1; over a
    v2.0 dataset (before the no-answer threshold) exactly ``exact``/``f1`` divided by 100.
    """
    if version_2_with_negative:
        golds = [g for g in ground_truths if squad_evaluate_v2_0._normalize_answer(g)] or [""]
        return {
            "exact_match": float(max(squad_evaluate_v2_0._compute_exact(g, prediction) for g in golds)),
            "f1": float(max(squad_evaluate_v2_0._compute_f1(g, prediction) for g in golds)),
        }
    if not ground_truths:
        raise ValueError("SQuAD v1.1 scoring needs at least one ground-truth answer")
    em = squad_evaluate_v1_1._metric_max_over_ground_truths(
        squad_evaluate_v1_1._exact_match_score, prediction, ground_truths)
    f1 = squad_evaluate_v1_1._metric_max_over_ground_truths(
        squad_evaluate_v1_1._f1_score, prediction, ground_truths)
    return {"exact_match": float(em), "f1": float(f1)}
