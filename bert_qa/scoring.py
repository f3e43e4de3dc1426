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
from typing import Dict, List, Optional

from official.nlp.tools import squad_evaluate_v1_1, squad_evaluate_v2_0


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


def score_files(data_file: str, predictions_file: str, na_prob_file: Optional[str] = None) -> dict:
    # utf-8-sig: a byte-order mark is accepted, as everywhere data is read.
    with open(data_file, encoding="utf-8-sig") as f:
        dataset = json.load(f)["data"]
    with open(predictions_file, encoding="utf-8-sig") as f:
        predictions = json.load(f)
    na_probs = None
    if na_prob_file:
        with open(na_prob_file, encoding="utf-8-sig") as f:
            na_probs = json.load(f)
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
