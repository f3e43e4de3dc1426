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
import re
import unicodedata
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
INT64_MAX = 2 ** 63 - 1


# -- reading JSON that may be hostile ---------------------------------------------------------

class HugeInt:
    """An integer literal too long for ``int()`` (Python's ``int_max_str_digits`` limit).

    ``json.loads`` raises a bare ValueError, with no position, on such a literal; we keep
    its digits instead so that the field holding it is reported like any other wrong type.
    Deliberately neither an ``int`` nor a ``str``: no type check accepts it.
    """

    __slots__ = ("digits",)

    def __init__(self, digits: str):
        self.digits = digits

    def __repr__(self) -> str:
        return f"<{len(self.digits.lstrip('-'))}-digit integer>"

    __str__ = __repr__


def _parse_int(literal: str):
    try:
        return int(literal)
    except ValueError:  # more digits than sys.get_int_max_str_digits()
        return HugeInt(literal)


class JSONReadError(ValueError):
    """A text that is not JSON Python can load; the message says where, not which file."""


_JSON_NESTING = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _deepest_nesting(text: str) -> Tuple[int, int, int]:
    """(depth, line, column) of the deepest nesting of ``text`` (strings skipped)."""
    depth = deepest = position = 0
    for match in _JSON_NESTING.finditer(text):
        c = match.group()
        if c in "[{":
            depth += 1
            if depth > deepest:
                deepest, position = depth, match.start()
        elif c in "]}":
            depth -= 1
    line = text.count("\n", 0, position) + 1
    column = position - text.rfind("\n", 0, position)
    return deepest, line, column


class JSONObject(dict):
    """A JSON object that named a key more than once: ``json.loads`` keeps the last value;
    ``duplicate_keys`` maps each such key to all its values, in file order."""

    __slots__ = ("duplicate_keys",)


def _object_noting_duplicates(pairs):
    values: Dict[str, list] = {}
    for key, value in pairs:
        values.setdefault(key, []).append(value)
    if len(values) == len(pairs):
        return dict(pairs)
    obj = JSONObject(pairs)
    obj.duplicate_keys = {k: v for k, v in values.items() if len(v) > 1}
    return obj


def loads_json(text: str, note_duplicate_keys: bool = False):
    """``json.loads`` that fails only with ``JSONReadError`` (position in the message).

    Malformed JSON, nesting deeper than Python's recursion limit lets the parser go
    (``RecursionError``) and anything else the parser raises all become ``JSONReadError``;
    integer literals too long for ``int()`` load as ``HugeInt``. With
    ``note_duplicate_keys``, an object that repeats a key loads as a ``JSONObject`` saying so.
    """
    hook = _object_noting_duplicates if note_duplicate_keys else None
    try:
        return json.loads(text, parse_int=_parse_int, object_pairs_hook=hook)
    except json.JSONDecodeError as err:
        raise JSONReadError(f"malformed JSON: {err}") from None
    except RecursionError:
        depth, line, column = _deepest_nesting(text)
        raise JSONReadError(f"JSON nested too deeply to load: {depth} levels of arrays/objects "
                            f"(deepest at line {line} column {column})") from None
    except ValueError as err:
        raise JSONReadError(f"cannot load JSON: {err}") from None


# -- text the pipeline can store and tokenize -------------------------------------------------

def lone_surrogate(s: str) -> Optional[int]:
    """Offset of the first unpaired surrogate (``"\\ud800"`` in JSON) in ``s``, else None.

    Such a string is not valid Unicode: it cannot be written as UTF-8 (tf.Example, TFRecord,
    any output file), so it must be refused where the file is read.
    """
    if s.isascii():
        return None
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as err:
        return err.start
    return None


def describe_surrogate(s: str, offset: int) -> str:
    return (f"a lone surrogate {s[offset]!r} at character {offset} (an unpaired "
            f"\\ud800-\\udfff escape): not valid Unicode, cannot be written as UTF-8")


def has_tokens(text: str) -> bool:
    """Whether BERT's tokenizer keeps any character of ``text``.

    ``BasicTokenizer`` deletes NUL, U+FFFD and control/format characters (Cc, Cf), turns
    whitespace (space, tab, CR, LF, Zs) into separators and, when lower-casing, deletes
    combining marks (Mn). A context made only of those gives no tokens, hence no features:
    its questions would vanish without a trace; an answer made only of those has no token
    span. (Mn is counted as deleted whatever the casing: the conservative choice.)
    """
    for c in text:
        if c in " \t\r\n" or c == "\ufffd" or c == "\x00" or c.isspace():
            continue  # isspace: all of Zs; U+2028/U+2029 too, which whitespace_tokenize's str.split() drops
        if unicodedata.category(c) in ("Cc", "Cf", "Mn"):
            continue
        return True
    return False


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
        dataset = loads_json(text)
    except JSONReadError as err:
        raise SquadFormatError(source, str(err)) from None
    if not isinstance(dataset, dict) or not isinstance(dataset.get("data"), list):
        raise SquadFormatError(source, "top level must be an object with a 'data' list")
    return dataset


def iter_questions(dataset: dict, source: str) -> Iterator[Question]:
    """Every question of a parsed SQuAD file, in file order, type-checked.

    Refused (``SquadFormatError`` naming file, position and question id): wrong types at
    any level (a bool is not a number, a string is not a bool), strings that are not valid
    Unicode (lone surrogates), contexts with questions but nothing a tokenizer keeps, and
    ``answer_start`` values no int64 holds. An ``answer_start`` outside the context
    (negative included) is not refused here: training skips the question with a reason.
    """
    for a_index, article in enumerate(dataset["data"]):
        if not isinstance(article, dict):
            raise SquadFormatError(source, f"data[{a_index}] is not an object: {_short(article)}")
        if not isinstance(article.get("paragraphs"), list):
            raise SquadFormatError(source, f"data[{a_index}] has no 'paragraphs' list")
        title = article.get("title", "")
        if isinstance(title, (list, dict, HugeInt)):
            raise SquadFormatError(source, f"data[{a_index}]: 'title' is not a string: {_short(title)}")
        title = str(title)
        offset = lone_surrogate(title)
        if offset is not None:
            raise SquadFormatError(source, f"data[{a_index}]: 'title' has {describe_surrogate(title, offset)}")
        for p_index, paragraph in enumerate(article["paragraphs"]):
            where = f"data[{a_index}].paragraphs[{p_index}]"
            if not isinstance(paragraph, dict):
                raise SquadFormatError(source, f"{where} is not an object: {_short(paragraph)}")
            if not isinstance(paragraph.get("context"), str):
                raise SquadFormatError(source, f"{where} has no 'context' string")
            if not isinstance(paragraph.get("qas"), list):
                raise SquadFormatError(source, f"{where} has no 'qas' list")
            context = paragraph["context"]
            if paragraph["qas"]:
                _check_context(context, paragraph["qas"], source, where)
            for qa in paragraph["qas"]:
                yield _question(qa, title, context, source, where)


def _short(value) -> str:
    import reprlib

    return reprlib.repr(value)


def _check_context(context: str, qas: list, source: str, where: str) -> None:
    first = qas[0].get("id") if isinstance(qas[0], dict) else None
    first = first if isinstance(first, str) else None
    others = f" (and the other {len(qas) - 1} questions on it)" if len(qas) > 1 else ""
    offset = lone_surrogate(context)
    if offset is not None:
        raise SquadFormatError(source, f"{where}: the context has {describe_surrogate(context, offset)}"
                               f"{others}", first)
    if not has_tokens(context):
        raise SquadFormatError(source, f"{where}: the context is empty or has only whitespace/control "
                               f"characters ({_short(context)}): no tokens, so its questions{others} "
                               f"could not be windowed", first)


def _check_text(value: str, field: str, source: str, qid: str) -> None:
    offset = lone_surrogate(value)
    if offset is not None:
        raise SquadFormatError(source, f"{field} has {describe_surrogate(value, offset)}", qid)


def _question(qa, title, context, source, where) -> Question:
    if not isinstance(qa, dict):
        raise SquadFormatError(source, f"{where}: a qas entry is not an object")
    qid = qa.get("id")
    if not isinstance(qid, (str, int)) or isinstance(qid, bool):
        raise SquadFormatError(source, f"{where}: question without a string 'id' "
                               f"(found {_short(qid)})", None)
    qid = str(qid)
    offset = lone_surrogate(qid)
    if offset is not None:
        raise SquadFormatError(source, f"{where}: the question 'id' {qid!r} has {describe_surrogate(qid, offset)}")
    if not isinstance(qa.get("question"), str):
        raise SquadFormatError(source, "missing or non-string 'question'", qid)
    _check_text(qa["question"], "'question'", source, qid)
    answers = qa.get("answers", [])
    if answers is None and qa.get("is_impossible") is True:
        answers = []  # as validate accepts it: an unanswerable question with "answers": null
    if not isinstance(answers, list):
        raise SquadFormatError(source, "'answers' is not a list", qid)
    texts, starts = [], []
    for k, answer in enumerate(answers):
        if not isinstance(answer, dict) or not isinstance(answer.get("text"), str) \
                or not isinstance(answer.get("answer_start"), int) or isinstance(answer.get("answer_start"), bool):
            found = (f"answers[{k}] is {_short(answer)}" if not isinstance(answer, dict) else
                     f"answers[{k}] has text {_short(answer.get('text'))}, "
                     f"answer_start {_short(answer.get('answer_start'))}")
            raise SquadFormatError(source, "each answer needs a string 'text' and an integer 'answer_start' "
                                   f"(true/false are not integers); {found}", qid)
        _check_text(answer["text"], f"answers[{k}] 'text'", source, qid)
        start = answer["answer_start"]
        if not -INT64_MAX - 1 <= start <= INT64_MAX:
            raise SquadFormatError(source, f"answers[{k}] 'answer_start' {start} is not a character "
                                   f"position (the context has {len(context)} characters)", qid)
        texts.append(answer["text"])
        starts.append(start)
    is_impossible = qa.get("is_impossible", False)
    if not isinstance(is_impossible, bool):
        raise SquadFormatError(source, f"'is_impossible' must be true or false, not {_short(is_impossible)}", qid)
    return Question(qid, title, context, qa["question"], tuple(texts), tuple(starts),
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
                # Never index with a negative offset: Python would count from the end.
                if not 0 <= offset < len(q.context) or offset + len(text) > len(q.context) or not text:
                    skipped.append(Skipped(q.id, ANSWER_OUT_OF_RANGE, f"answer_start={offset}"))
                    continue
                if not has_tokens(text):  # no token span: squad_lib would label end before start
                    skipped.append(Skipped(q.id, ANSWER_NOT_ALIGNED, f"answer {text!r} has no tokens"))
                    continue
                orig_answer_text = text
                # An answer starting in the context's leading whitespace: squad_lib's offset
                # is -1 there (a negative index, into the last token); the first token is meant.
                start_position = max(0, char_to_word_offset[offset])
                end_position = char_to_word_offset[offset + len(text) - 1]
                actual_text = " ".join(doc_tokens[start_position:end_position + 1])
                cleaned = " ".join(tokenization.whitespace_tokenize(text))
                if cleaned not in actual_text:  # squad_lib: actual_text.find(cleaned) == -1
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
