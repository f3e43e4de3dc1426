"""Slice keys of one question: question word, answer-length bucket, article."""
from __future__ import annotations

import re
from typing import Dict

from bert_qa.squad_data import Question

QUESTION_WORDS = ("what", "who", "when", "where", "which", "how", "why")
SLICE_FEATURES = ("question_word", "answer_length", "article")
_WORD = re.compile(r"[a-z]+")


def question_word(question: str) -> str:
    """The first wh-word of the question ("In which year ..." -> which), else 'other'."""
    for word in _WORD.findall(question.lower()):
        if word in QUESTION_WORDS:
            return word
    return "other"


def answer_length_bucket(q: Question) -> str:
    """Whitespace words of the first reference answer, bucketed; 'none' when unanswerable."""
    if q.is_impossible or not q.answer_texts:
        return "none"
    n = len(q.answer_texts[0].split())
    if n <= 1:
        return "1 word"
    if n <= 3:
        return "2-3 words"
    if n <= 7:
        return "4-7 words"
    return "8+ words"


def slice_values(q: Question) -> Dict[str, str]:
    return {"question_word": question_word(q.question), "answer_length": answer_length_bucket(q),
            "article": q.title}
