"""Reading SQuAD v1.1 / v2.0 JSON into questions and squad_lib examples, losing nothing.

``squad_lib.read_squad_examples`` (what Model Maker calls) silently drops training answers
it cannot align and fails on bad files with a bare KeyError. Here every question comes out
either as an example or as a ``Skipped`` record with its reason, and malformed input raises
``SquadFormatError`` naming the file and the question id. For well-formed files the examples
are identical to squad_lib's (the tests compare them).
"""
from __future__ import annotations

import dataclasses
import json
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from bert_qa import _env  # noqa: F401
from bert_qa.errors import InputError


class SquadFormatError(InputError):
    """A SQuAD file that cannot be read; the message names the file and question id."""

    def __init__(self, source: str, message: str, question_id: Optional[str] = None):
        where = f"{source}" + (f", question {question_id!r}" if question_id is not None else "")
        super().__init__(f"{where}: {message}")
        self.source = source
        self.question_id = question_id


@dataclasses.dataclass(frozen=True)
class Question:
    """One SQuAD question with its context: the unit the pipeline stores and accounts for."""

    id: str
    title: str
    context: str
    question: str
    answer_texts: Tuple[str, ...]
    answer_starts: Tuple[int, ...]
    is_impossible: bool = False
    source: str = ""


@dataclasses.dataclass(frozen=True)
class Skipped:
    """A question left out, with a short reason code and the details."""

    id: str
    reason: str  # one of NO_ANSWER, ANSWER_OUT_OF_RANGE, ANSWER_NOT_ALIGNED
    detail: str = ""


NO_ANSWER = "answerable training question without an answer"
ANSWER_OUT_OF_RANGE = "answer_start outside the context"
ANSWER_NOT_ALIGNED = "answer text not recoverable from the context tokens"


BOM = "\ufeff"


def load_squad_json(path: str) -> dict:
    """The parsed file; any I/O or JSON error names the file."""
    import tensorflow as tf  # gfile: local paths and gs://, hdfs://, ...

    try:
        with tf.io.gfile.GFile(path, "r") as f:
            text = f.read()
    except Exception as err:  # gfile raises NotFoundError and friends
        raise SquadFormatError(path, f"cannot read file: {err}") from err
    return parse_squad_json(text, path)


def parse_squad_json(text: str, source: str) -> dict:
    # A UTF-8 byte-order mark (common in files saved on Windows) is unambiguous: accept it.
    text = text[1:] if text.startswith(BOM) else text
    try:
        dataset = json.loads(text)
    except json.JSONDecodeError as err:
        raise SquadFormatError(source, f"malformed JSON: {err}") from err
    if not isinstance(dataset, dict) or not isinstance(dataset.get("data"), list):
        raise SquadFormatError(source, "top level must be an object with a 'data' list")
    return dataset


def iter_questions(dataset: dict, source: str) -> Iterator[Question]:
    """Every question of a parsed SQuAD file, in file order, type-checked."""
    for a_index, article in enumerate(dataset["data"]):
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise SquadFormatError(source, f"data[{a_index}] has no 'paragraphs' list")
        title = article.get("title", "")
        for p_index, paragraph in enumerate(article["paragraphs"]):
            where = f"data[{a_index}].paragraphs[{p_index}]"
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("context"), str):
                raise SquadFormatError(source, f"{where} has no 'context' string")
            if not isinstance(paragraph.get("qas"), list):
                raise SquadFormatError(source, f"{where} has no 'qas' list")
            for qa in paragraph["qas"]:
                yield _question(qa, title, paragraph["context"], source, where)


def _question(qa, title, context, source, where) -> Question:
    if not isinstance(qa, dict):
        raise SquadFormatError(source, f"{where}: a qas entry is not an object")
    qid = qa.get("id")
    if not isinstance(qid, (str, int)):
        raise SquadFormatError(source, f"{where}: question without an 'id'", None)
    qid = str(qid)
    if not isinstance(qa.get("question"), str):
        raise SquadFormatError(source, "missing or non-string 'question'", qid)
    answers = qa.get("answers", [])
    if not isinstance(answers, list):
        raise SquadFormatError(source, "'answers' is not a list", qid)
    texts, starts = [], []
    for answer in answers:
        if not isinstance(answer, dict) or not isinstance(answer.get("text"), str) \
                or not isinstance(answer.get("answer_start"), int) or isinstance(answer.get("answer_start"), bool):
            raise SquadFormatError(source, "each answer needs a string 'text' and an integer 'answer_start'", qid)
        texts.append(answer["text"])
        starts.append(answer["answer_start"])
    is_impossible = qa.get("is_impossible", False)
    if not isinstance(is_impossible, bool):
        raise SquadFormatError(source, "'is_impossible' must be true or false", qid)
    return Question(qid, str(title), context, qa["question"], tuple(texts), tuple(starts),
                    is_impossible, source)


def read_questions(path: str) -> List[Question]:
    return list(iter_questions(load_squad_json(path), path))


def _is_whitespace(c: str) -> bool:
    # squad_lib.read_squad_examples' definition (narrower than str.isspace on purpose).
    return c in " \t\r\n" or ord(c) == 0x202F


def split_context(context: str) -> Tuple[List[str], List[int]]:
    """Whitespace tokens of a context and the token index of every character (squad_lib's)."""
    doc_tokens: List[str] = []
    char_to_word_offset: List[int] = []
    prev_is_whitespace = True
    for c in context:
        if _is_whitespace(c):
            prev_is_whitespace = True
        else:
            if prev_is_whitespace:
                doc_tokens.append(c)
            else:
                doc_tokens[-1] += c
            prev_is_whitespace = False
        char_to_word_offset.append(len(doc_tokens) - 1)
    return doc_tokens, char_to_word_offset


def to_squad_examples(questions: Iterable[Question], is_training: bool,
                      version_2_with_negative: bool = False, multi_answer: str = "error"):
    """``squad_lib.SquadExample``s for ``questions`` plus the questions skipped, with reasons.

    Training needs exactly one answer per answerable question: ``multi_answer='error'``
    fails as squad_lib does (naming the question), ``'first'`` trains on the first answer.
    Answers that cannot be recovered from the whitespace tokens are skipped as squad_lib
    skips them, but counted. Questions sharing a context share one ``doc_tokens`` list, as
    in squad_lib, so windowing tokenizes each context once.
    """
    from official.nlp.data import squad_lib
    from official.nlp.tools import tokenization

    if multi_answer not in ("error", "first"):
        raise ValueError(f"multi_answer must be 'error' or 'first', not {multi_answer!r}")
    examples, skipped = [], []
    split_cache: Dict[str, Tuple[List[str], List[int]]] = {}
    last_context = None
    for q in questions:
        if q.context is not last_context and q.context not in split_cache:
            split_cache.clear()  # contexts arrive grouped; keep memory flat
            split_cache[q.context] = split_context(q.context)
        last_context = q.context
        doc_tokens, char_to_word_offset = split_cache[q.context]
        start_position = end_position = None
        orig_answer_text = None
        is_impossible = False
        if is_training:
            if version_2_with_negative:
                is_impossible = q.is_impossible
            if len(q.answer_texts) != 1 and not is_impossible:
                if not q.answer_texts:
                    skipped.append(Skipped(q.id, NO_ANSWER))
                    continue
                if multi_answer == "error":
                    raise SquadFormatError(
                        q.source, f"training needs exactly 1 answer, found {len(q.answer_texts)} "
                        "(use multi_answer='first' to train on the first)", q.id)
            if not is_impossible:
                text, offset = q.answer_texts[0], q.answer_starts[0]
                if not 0 <= offset < len(q.context) or offset + len(text) > len(q.context) or not text:
                    skipped.append(Skipped(q.id, ANSWER_OUT_OF_RANGE, f"answer_start={offset}"))
                    continue
                orig_answer_text = text
                start_position = char_to_word_offset[offset]
                end_position = char_to_word_offset[offset + len(text) - 1]
                actual_text = " ".join(doc_tokens[start_position:end_position + 1])
                cleaned = " ".join(tokenization.whitespace_tokenize(text))
                if actual_text.find(cleaned) == -1:
                    skipped.append(Skipped(q.id, ANSWER_NOT_ALIGNED,
                                               f"answer {text!r} vs tokens {actual_text!r}"))
                    continue
            else:
                start_position = end_position = -1
                orig_answer_text = ""
        examples.append(squad_lib.SquadExample(
            qas_id=q.id, question_text=q.question, doc_tokens=doc_tokens,
            orig_answer_text=orig_answer_text, start_position=start_position,
            end_position=end_position, is_impossible=is_impossible))
    return examples, skipped


def read_squad_examples(path: str, is_training: bool, version_2_with_negative: bool = False,
                        multi_answer: str = "error"):
    """``squad_lib.read_squad_examples`` with accounting: (examples, skipped)."""
    return to_squad_examples(read_questions(path), is_training, version_2_with_negative, multi_answer)


def summarize_skipped(skipped: Sequence[Skipped], total: int) -> str:
    """One line: how many questions were skipped and why."""
    if not skipped:
        return f"all {total} questions kept"
    reasons: Dict[str, int] = {}
    for s in skipped:
        reasons[s.reason] = reasons.get(s.reason, 0) + 1
    detail = "; ".join(f"{n} {r}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
    first = ", ".join(s.id for s in skipped[:5])
    return (f"skipped {len(skipped)} of {total} questions ({detail}); first ids: {first}"
            + (" ..." if len(skipped) > 5 else ""))
