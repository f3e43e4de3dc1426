"""`bertqa validate`: find every problem in a SQuAD file, not just the first.

Pure Python (no TensorFlow) so it is quick to run on a laptop or in CI before a pipeline.
"""
from __future__ import annotations

import dataclasses
import json
from typing import List, Optional


@dataclasses.dataclass
class Problem:
    severity: str  # "error" | "warning"
    where: str     # file and position
    question_id: Optional[str]
    message: str

    def __str__(self):
        qid = f" question {self.question_id!r}" if self.question_id is not None else ""
        return f"{self.severity}: {self.where}{qid}: {self.message}"


@dataclasses.dataclass
class Report:
    path: str
    articles: int = 0
    paragraphs: int = 0
    questions: int = 0
    answerable: int = 0
    unanswerable: int = 0
    problems: List[Problem] = dataclasses.field(default_factory=list)

    @property
    def errors(self) -> List[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def to_dict(self) -> dict:
        return {"file": self.path, "articles": self.articles, "paragraphs": self.paragraphs,
                "questions": self.questions, "answerable": self.answerable,
                "unanswerable": self.unanswerable, "errors": len(self.errors),
                "warnings": len(self.problems) - len(self.errors),
                "problems": [str(p) for p in self.problems]}


def validate_file(path: str) -> Report:
    report = Report(path)
    try:
        with open(path, encoding="utf-8-sig") as f:  # a byte-order mark is accepted, as ingestion does
            text = f.read()
    except (OSError, UnicodeDecodeError) as err:
        report.problems.append(Problem("error", path, None, f"cannot read: {err}"))
        return report
    try:
        dataset = json.loads(text)
    except json.JSONDecodeError as err:
        report.problems.append(Problem("error", path, None, f"malformed JSON: {err}"))
        return report
    validate_dataset(dataset, report)
    return report


def validate_dataset(dataset, report: Report) -> Report:
    err = lambda where, qid, msg: report.problems.append(Problem("error", where, qid, msg))  # noqa: E731
    warn = lambda where, qid, msg: report.problems.append(Problem("warning", where, qid, msg))  # noqa: E731
    path = report.path
    if not isinstance(dataset, dict) or not isinstance(dataset.get("data"), list):
        err(path, None, "top level must be an object with a 'data' list")
        return report
    seen_ids = {}
    for a_i, article in enumerate(dataset["data"]):
        where_a = f"{path}: data[{a_i}]"
        if not isinstance(article, dict):
            err(where_a, None, "article is not an object")
            continue
        report.articles += 1
        if not isinstance(article.get("title", ""), str):
            err(where_a, None, "'title' is not a string")
        paragraphs = article.get("paragraphs")
        if not isinstance(paragraphs, list):
            err(where_a, None, "missing or non-list 'paragraphs'")
            continue
        for p_i, paragraph in enumerate(paragraphs):
            where_p = f"{where_a}.paragraphs[{p_i}]"
            if not isinstance(paragraph, dict):
                err(where_p, None, "paragraph is not an object")
                continue
            report.paragraphs += 1
            context = paragraph.get("context")
            if not isinstance(context, str):
                err(where_p, None, "missing or non-string 'context'")
                context = None
            elif not context.strip():
                err(where_p, None, "empty context")
            qas = paragraph.get("qas")
            if not isinstance(qas, list):
                err(where_p, None, "missing or non-list 'qas'")
                continue
            for q_i, qa in enumerate(qas):
                _validate_question(qa, f"{where_p}.qas[{q_i}]", context, seen_ids, report, err, warn)
    return report


def _validate_question(qa, where, context, seen_ids, report, err, warn):
    if not isinstance(qa, dict):
        err(where, None, "question entry is not an object")
        return
    report.questions += 1
    qid = qa.get("id")
    if not isinstance(qid, str) or not qid:
        err(where, None, "missing or non-string 'id'")
        qid = None
    elif qid in seen_ids:
        err(where, qid, f"duplicate id (first at {seen_ids[qid]})")
    else:
        seen_ids[qid] = where
    question = qa.get("question")
    if not isinstance(question, str):
        err(where, qid, "missing or non-string 'question'")
    elif not question.strip():
        err(where, qid, "empty question")
    impossible = qa.get("is_impossible", False)
    if not isinstance(impossible, bool):
        err(where, qid, "'is_impossible' must be true or false")
        impossible = False
    answers = qa.get("answers")
    if answers is None and impossible:
        answers = []
    if not isinstance(answers, list):
        err(where, qid, "missing or non-list 'answers'")
        return
    if impossible:
        report.unanswerable += 1
        if answers:
            err(where, qid, "is_impossible is true but 'answers' is not empty")
        return
    if not answers:
        err(where, qid, "answerable question (is_impossible false or absent) without answers")
        return
    report.answerable += 1
    for k, answer in enumerate(answers):
        if not isinstance(answer, dict):
            err(where, qid, f"answers[{k}] is not an object")
            continue
        text, start = answer.get("text"), answer.get("answer_start")
        if not isinstance(text, str):
            err(where, qid, f"answers[{k}] missing or non-string 'text'")
            continue
        if not isinstance(start, int) or isinstance(start, bool):
            err(where, qid, f"answers[{k}] missing or non-integer 'answer_start'")
            continue
        if not text.strip():
            err(where, qid, f"answers[{k}] has empty text")
        elif context is not None and context[start:start + len(text)] != text:
            found = context.find(text)
            hint = f"; the text occurs at {found}" if found >= 0 else "; the text is not in the context"
            err(where, qid, f"answers[{k}] text {text!r} is not at answer_start {start} "
                            f"(context there: {context[start:start + len(text)]!r}){hint}")
