"""Score exported .tflite variants against the float model before anyone ships them.

A quantized variant can be much worse than the float model it came from (full-integer int8 of
a BERT encoder scored below an untrained model here, issue 22). The pipeline's QaEvaluator
gates the variant it pushes; ``bertqa export`` had no such gate. These helpers score each
variant on a held-out sample of SQuAD questions with the file alone (``TfliteQuestionAnswerer``:
the metadata's vocabulary and windowing, squad_lib's postprocessing, the official EM/F1 rules)
and say which fall more than ``max_f1_drop`` points below float. The threshold is a parameter:
the CLI passes the pipeline's ``evaluation.max_quantized_f1_drop`` default, and this library
knows nothing of the pipeline.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Dict, List, Mapping, Optional, Sequence

from bert_qa import _env  # noqa: F401
from bert_qa.errors import InputError

DEFAULT_EVAL_SAMPLE = 100


class VariantRefused(InputError):
    """One or more variants scored more than the allowed F1 points below the float model."""

    def __init__(self, message: str, refused: Sequence[str]):
        super().__init__(message)
        self.refused = list(refused)


@dataclasses.dataclass(frozen=True)
class VariantScore:
    """EM and F1 in percent (SQuAD leaderboard scale) on the sample, and the verdict."""

    name: str
    exact_match: float
    f1: float
    float_f1: float
    max_f1_drop: float
    questions: int

    @property
    def drop(self) -> float:
        return self.float_f1 - self.f1

    @property
    def passed(self) -> bool:
        return self.drop <= self.max_f1_drop


def sample_questions(path: str, n: Optional[int] = DEFAULT_EVAL_SAMPLE):
    """``n`` answerable questions of a SQuAD file spread evenly over it (all with ``n`` None).

    Deterministic: the same file and ``n`` give the same questions on every run.
    """
    from bert_qa import squad_data
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise InputError(f"eval sample {n!r}: must be an integer >= 1 (questions to score)")
    questions = [q for q in squad_data.read_questions(path) if q.answer_texts and not q.is_impossible]
    if not questions:
        raise InputError(f"{path}: no answerable question to score the variants on")
    if n is None or n >= len(questions):
        return questions
    return [questions[i * len(questions) // n] for i in range(n)]


def score_tflite(tflite_path: str, questions, num_threads: Optional[int] = None,
                 batch_size: int = 8) -> Dict[str, float]:
    """``{exact_match, f1}`` in percent of a .tflite QA model (with metadata) on ``questions``."""
    from bert_qa.answering import QuestionTruncatedWarning, TfliteQuestionAnswerer
    from bert_qa.scoring import question_scores

    answerer = TfliteQuestionAnswerer(tflite_path, num_threads=num_threads, batch_size=batch_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuestionTruncatedWarning)  # cut as in training
        prediction = answerer.predict([(q.id, q.context, q.question) for q in questions])
    em = f1 = 0.0
    for q in questions:
        answers = prediction.nbest.get(q.id) or []
        text = answers[0].text if answers else ""
        s = question_scores(list(q.answer_texts), text)
        em += s["exact_match"]
        f1 += s["f1"]
    n = len(questions)
    return {"exact_match": 100.0 * em / n, "f1": 100.0 * f1 / n}


def score_variants(paths: Mapping[str, str], float_path: str, questions, max_f1_drop: float,
                   num_threads: Optional[int] = None, on_score=None) -> List[VariantScore]:
    """Each variant's score next to the float model's (``float_path``, itself listed first as
    "float32" when it is not among ``paths``); ``on_score(VariantScore)`` as each is done."""
    if max_f1_drop is None or max_f1_drop < 0:
        raise InputError(f"max_f1_drop={max_f1_drop!r}: must be a number of F1 points >= 0")
    reference = score_tflite(float_path, questions, num_threads)
    results = []
    names = list(paths)
    if "float32" not in paths:
        names.insert(0, "float32")
    for name in names:
        s = reference if paths.get(name, float_path) == float_path else score_tflite(
            paths[name], questions, num_threads)
        result = VariantScore(name, s["exact_match"], s["f1"], reference["f1"], max_f1_drop, len(questions))
        results.append(result)
        if on_score is not None:
            on_score(result)
    return results


def format_score(s: VariantScore) -> str:
    verdict = "ok" if s.passed else f"REFUSED: {s.drop:.1f} F1 points below float (limit {s.max_f1_drop:g})"
    if s.name == "float32":
        verdict = "reference"
    return (f"{s.name:15s} EM {s.exact_match:5.1f}  F1 {s.f1:5.1f}  (float32 F1 {s.float_f1:5.1f}, "
            f"{s.questions} questions)  {verdict}")
