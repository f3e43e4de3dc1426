"""Official SQuAD scores, computed by tf-models-official's own scorers.

We do not re-implement EM/F1: ``official.nlp.tools.squad_evaluate_v1_1`` and
``squad_evaluate_v2_0`` are what Model Maker reports, so we call them. Note their scales
differ, as in the reference: v1.1 gives fractions (``exact_match``, ``final_f1``; we add
``f1`` as an alias), v2.0 gives percentages (``exact``, ``f1``, ``HasAns_*``, ``NoAns_*``,
``best_*`` (= Model Garden's ``final_*``) and their thresholds). Per-question scores (for slicing) use the same modules'
normalisation and token F1.
"""
from __future__ import annotations

import json
import math
from typing import Dict, List, Optional

from official.nlp.tools import squad_evaluate_v1_1, squad_evaluate_v2_0

from bert_qa.errors import InputError


def is_v2(dataset: List[dict]) -> bool:
    """A dataset is SQuAD v2.0-style if any question is marked impossible."""
    return any(qa.get("is_impossible", False)
               for article in dataset for p in article["paragraphs"] for qa in p["qas"])


def score(dataset: List[dict], predictions: Dict[str, str], na_probs: Optional[Dict[str, float]] = None,
          version_2_with_negative: Optional[bool] = None) -> dict:
    """The official metrics for ``predictions`` over a SQuAD ``data`` list."""
    if version_2_with_negative is None:
        version_2_with_negative = na_probs is not None or is_v2(dataset)
    if version_2_with_negative:
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
            return json.load(f)
    except (OSError, ValueError) as err:  # missing, not UTF-8, malformed or truncated JSON
        raise ScoringInputError(f"{what} {path}: cannot read it as JSON: {err}") from err


def check_inputs(dataset, predictions, na_probs, data_file: str = "data", predictions_file: str = "predictions",
                 na_prob_file: str = "na_probs", allow_missing: bool = False) -> Dict[str, str]:
    """What the official scorers take on trust, checked: every question accounted for.

    Returns the predictions to score: with ``allow_missing`` a question without a prediction
    is scored as answered with the empty string (wrong when it has an answer), not dropped, as
    the official v2.0 script would silently do.
    """
    if not isinstance(dataset, list):
        raise ScoringInputError(f"data {data_file}: needs a top-level object with a 'data' list")
    if not isinstance(predictions, dict):
        raise ScoringInputError(f"predictions {predictions_file}: must be an object {{question id: answer "
                                f"text}}, not a JSON {type(predictions).__name__}")
    ids = []
    for article in dataset:
        for paragraph in article.get("paragraphs", []) if isinstance(article, dict) else []:
            for qa in paragraph.get("qas", []):
                qid = qa.get("id")
                if not isinstance(qid, str):
                    raise ScoringInputError(f"data {data_file}: a question has id {qid!r}; ids are strings")
                if "is_impossible" in qa and not isinstance(qa["is_impossible"], bool):
                    raise ScoringInputError(f"data {data_file}: question {qid}: is_impossible must be true "
                                            f"or false, not {qa['is_impossible']!r}")
                ids.append(qid)
    for qid, answer in predictions.items():
        if not isinstance(answer, str):
            raise ScoringInputError(f"predictions {predictions_file}: question {qid}: the answer must be a "
                                    f"string, not {answer!r}")
    missing = [qid for qid in ids if qid not in predictions]
    if missing and not allow_missing:
        raise ScoringInputError(f"predictions {predictions_file}: {len(missing)} of {len(ids)} questions have "
                                f"no prediction (first: {missing[:3]}); pass allow_missing to score them as "
                                f"unanswered")
    if na_probs is not None:
        if not isinstance(na_probs, dict):
            raise ScoringInputError(f"null odds {na_prob_file}: must be an object {{question id: number}}")
        for qid in ids:
            value = na_probs.get(qid)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ScoringInputError(f"null odds {na_prob_file}: question {qid}: needs a finite number, "
                                        f"not {value!r}")
    return {**{qid: "" for qid in missing}, **predictions}


def score_files(data_file: str, predictions_file: str, na_prob_file: Optional[str] = None,
                allow_missing: bool = False) -> dict:
    data = _load(data_file, "data")
    dataset = data.get("data") if isinstance(data, dict) else None
    predictions = _load(predictions_file, "predictions")
    na_probs = _load(na_prob_file, "null odds") if na_prob_file else None
    predictions = check_inputs(dataset, predictions, na_probs, data_file, predictions_file,
                               na_prob_file or "", allow_missing)
    return score(dataset, predictions, na_probs)


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
