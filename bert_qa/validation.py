"""`bertqa validate`: find every problem in a SQuAD file, not just the first.

Pure Python (no TensorFlow) so it is quick to run on a laptop or in CI before a pipeline.
Whatever the file holds, validation reports it as a problem naming the file (and position and
question id where known) and goes on: nothing a file contains makes it raise.

It is at least as strict as ingestion (``bert_qa.squad_data``): a file it passes is read,
windowed and scored without error, every question accounted for.
"""
from __future__ import annotations

import dataclasses
import reprlib
from typing import Dict, Iterable, List, Optional

from bert_qa.squad_data import (HugeInt, JSONReadError, describe_surrogate, has_tokens, loads_json,
                                lone_surrogate)


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


def validate_file(path: str, seen_ids: Optional[Dict[str, str]] = None) -> Report:
    """The report on one file. ``seen_ids`` (question id -> where first seen) is shared by
    ``validate_files`` so that an id repeated in another file of the same call is reported."""
    report = Report(path)
    try:
        with open(path, encoding="utf-8-sig") as f:  # a byte-order mark is accepted, as ingestion does
            text = f.read()
    except (OSError, UnicodeDecodeError) as err:
        report.problems.append(Problem("error", path, None, f"cannot read: {err}"))
        return report
    try:
        dataset = loads_json(text, note_duplicate_keys=True)
    except JSONReadError as err:  # malformed, nested too deeply, ...
        report.problems.append(Problem("error", path, None, str(err)))
        return report
    validate_dataset(dataset, report, seen_ids)
    return report


def validate_files(paths: Iterable[str]) -> List[Report]:
    """One report per file; a question id used in two files is an error in the second."""
    seen_ids: Dict[str, str] = {}
    return [validate_file(path, seen_ids) for path in paths]


def _surrogate_error(err, where, qid, field, value) -> bool:
    offset = lone_surrogate(value)
    if offset is not None:
        err(where, qid, f"{field} has {describe_surrogate(value, offset)}")
    return offset is not None


def _duplicate_keys(obj) -> Dict[str, list]:
    """Keys ``obj`` (loaded with ``note_duplicate_keys``) names more than once, with their values."""
    return getattr(obj, "duplicate_keys", None) or {}


def _duplicates_note(obj, *fields) -> str:
    """For an error about ``fields`` of an answer: which of them the file gives twice."""
    notes = [f"duplicate JSON key {field!r} in this answer ({len(values)} times: the last, "
             f"{reprlib.repr(values[-1])}, is used; before it: {', '.join(reprlib.repr(v) for v in values[:-1])})"
             for field, values in _duplicate_keys(obj).items() if field in fields]
    return f"; note: {'; '.join(notes)}" if notes else ""


def _warn_duplicates(obj, where, qid, warn) -> None:
    for key, values in _duplicate_keys(obj).items():
        warn(where, qid, f"duplicate JSON key {key!r} ({len(values)} times): the last value, "
                         f"{reprlib.repr(values[-1])}, is used; other tools may take the first, "
                         f"{reprlib.repr(values[0])}")


def validate_dataset(dataset, report: Report, seen_ids: Optional[Dict[str, str]] = None) -> Report:
    err = lambda where, qid, msg: report.problems.append(Problem("error", where, qid, msg))  # noqa: E731
    warn = lambda where, qid, msg: report.problems.append(Problem("warning", where, qid, msg))  # noqa: E731
    path = report.path
    _warn_duplicates(dataset, path, None, warn)
    if not isinstance(dataset, dict) or not isinstance(dataset.get("data"), list):
        err(path, None, "top level must be an object with a 'data' list")
        return report
    seen_ids = {} if seen_ids is None else seen_ids
    for a_i, article in enumerate(dataset["data"]):
        where_a = f"{path}: data[{a_i}]"
        if not isinstance(article, dict):
            err(where_a, None, "article is not an object")
            continue
        report.articles += 1
        _warn_duplicates(article, where_a, None, warn)
        title = article.get("title", "")
        if not isinstance(title, str):
            err(where_a, None, f"'title' is not a string: {reprlib.repr(title)}")
        else:
            _surrogate_error(err, where_a, None, "'title'", title)
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
            qas = paragraph.get("qas")
            first = _first_id(qas)
            _warn_duplicates(paragraph, where_p, first, warn)
            if not isinstance(context, str):
                err(where_p, first, "missing or non-string 'context'")
                context = None
            elif _surrogate_error(err, where_p, first, "the context", context):
                context = None
            elif not context.strip():
                err(where_p, first, "empty context")
            elif not has_tokens(context):
                err(where_p, first, f"the context has only whitespace, control or format characters "
                                    f"({reprlib.repr(context)}): no tokens, so its questions cannot be windowed")
            if not isinstance(qas, list):
                err(where_p, None, "missing or non-list 'qas'")
                continue
            for q_i, qa in enumerate(qas):
                _validate_question(qa, f"{where_p}.qas[{q_i}]", context, seen_ids, report, err, warn)
    if report.questions == 0 and not report.errors:
        warn(path, None, "no questions")
    return report


def _first_id(qas) -> Optional[str]:
    """The id of a paragraph's first question, to name in a problem of the paragraph."""
    if isinstance(qas, list) and qas and isinstance(qas[0], dict) and isinstance(qas[0].get("id"), str):
        qid = qas[0]["id"]
        return qid if lone_surrogate(qid) is None else None
    return None


def _validate_question(qa, where, context, seen_ids, report, err, warn):
    if not isinstance(qa, dict):
        err(where, None, "question entry is not an object")
        return
    report.questions += 1
    qid = qa.get("id")
    _warn_duplicates(qa, where, qid if isinstance(qid, str) and qid and lone_surrogate(qid) is None else None, warn)
    if not isinstance(qid, str) or not qid:
        err(where, None, f"missing or non-string 'id' (found {reprlib.repr(qid)})")
        qid = None
    elif _surrogate_error(err, where, None, f"'id' {qid!r}", qid):
        qid = None
    elif qid in seen_ids:
        other = seen_ids[qid]
        across = "" if other.startswith(f"{report.path}: ") else " in another file"
        err(where, qid, f"duplicate id{across} (first at {other})")
    else:
        seen_ids[qid] = where
    question = qa.get("question")
    if not isinstance(question, str):
        err(where, qid, "missing or non-string 'question'")
    elif _surrogate_error(err, where, qid, "'question'", question):
        pass
    elif not question.strip():
        err(where, qid, "empty question")
    elif "\x00" in question:  # JSON "\u0000": a C string ends there; no typed question holds one
        err(where, qid, f"'question' has a NUL character (U+0000) at offset {question.index(chr(0))}: "
                        f"not text (a damaged or mis-encoded file?): {reprlib.repr(question)}")
    elif not has_tokens(question):
        err(where, qid, f"the question has only whitespace, control or format characters "
                        f"({reprlib.repr(question)}): no tokens, nothing to ask")
    impossible = qa.get("is_impossible", False)
    if not isinstance(impossible, bool):
        err(where, qid, f"'is_impossible' must be true or false, not {reprlib.repr(impossible)}")
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
        _warn_duplicates(answer, f"{where}.answers[{k}]", qid, warn)
        note = _duplicates_note(answer, "text", "answer_start")
        text, start = answer.get("text"), answer.get("answer_start")
        if not isinstance(text, str):
            err(where, qid, f"answers[{k}] missing or non-string 'text'")
            continue
        if _surrogate_error(err, where, qid, f"answers[{k}] 'text'", text):
            continue
        if isinstance(start, HugeInt):
            err(where, qid, f"answers[{k}] 'answer_start' is a {start!r}: not a position in the context")
            continue
        if not isinstance(start, int) or isinstance(start, bool):
            err(where, qid, f"answers[{k}] missing or non-integer 'answer_start' (found {reprlib.repr(start)}"
                            f"{'; true/false are not integers' if isinstance(start, bool) else ''})")
            continue
        if not text.strip():
            err(where, qid, f"answers[{k}] has empty text")
            continue
        if not has_tokens(text):
            err(where, qid, f"answers[{k}] text {text!r} has only whitespace, control or format characters")
            continue
        if context is None:
            continue
        if start < 0:
            err(where, qid, f"answers[{k}] 'answer_start' {start} is negative{_hint(context, text)}{note}")
        elif start + len(text) > len(context):
            err(where, qid, f"answers[{k}] text {reprlib.repr(text)} at answer_start {start} runs past the end "
                            f"of the context ({len(context)} characters){_hint(context, text)}{note}")
        elif context[start:start + len(text)] != text:
            err(where, qid, f"answers[{k}] text {text!r} is not at answer_start {start} "
                            f"(context there: {context[start:start + len(text)]!r}){_hint(context, text)}{note}")


def _hint(context: str, text: str) -> str:
    found = context.find(text)
    return f"; the text occurs at {found}" if found >= 0 else "; the text is not in the context"
