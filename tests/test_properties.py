"""Property-based tests (hypothesis) of validation -> ingestion -> windowing on generated SQuAD files.

What is generated:
  * valid SQuAD v1.1 / v2.0 files: 1-2 articles of 1-2 paragraphs; contexts are words joined by
    separators; words mix plain English, punctuation, combining marks (e + U+0301), zero-width and
    other format characters (U+200B, U+200C, U+200D, U+2060, U+FEFF, U+200F), CJK and Hangul,
    emoji (with ZWJ, skin-tone modifier, flag), C0/C1 control characters, NBSP and other Unicode
    whitespace (U+2009, U+3000, U+2028, \\x0b, \\x1c, \\x1f), letters whose case mapping changes
    their length (İ, ß, ﬁ), U+FFFD, a private-use character and very long words (95-230
    characters, across WordPiece's 200-character limit). Separators include the ones squad_lib
    splits on (space, \\t, \\r\\n, \\n, U+202F) and ones it does not (NBSP, U+3000, U+2009, \\x0b).
    Questions are answerable (1-3 answers, each either whole squad_lib words or any substring of
    the context) or unanswerable (v2: is_impossible true, answers [] or absent); ids are unique
    non-empty strings of any of those characters (questions hold no NUL: validation refuses one);
    validation must accept every one of them (asserted, not assumed: measured 1000 of 1000);
  * files holding a question whose answer is 1-6 whole squad_lib words of its context (half the
    time words without NBSP-like whitespace), often with plain words around it so that the
    context spans several windows;
  * the same files deliberately corrupted: a value anywhere in the tree deleted or replaced by a
    value of another JSON type (int64 overflows included), a lone surrogate put into a string, a
    context or answer made only of invisible characters, a bad answer offset (shifted, negative,
    past the end) or text, a duplicated question id, or the bytes themselves damaged (truncated,
    a byte made invalid UTF-8, UTF-16, a BOM, trailing garbage, non-object top level, NaN, an
    integer literal of 5,000 digits, 100,000 nested arrays, an empty file), a NUL in a question;
  * windowing parameters: seq_len 24-64, query_len 2-16, doc_stride 1-24, training or evaluation,
    v1 or v2, multi_answer 'first' or 'error'.

Each file goes through what the pipeline runs: ``validation.validate_file`` and ``bertqa
validate`` (``bert_qa_cli.main.main``); SquadExampleGen's ``read_split`` and the question
tf.Example codec (written, then read back by FeatureWindowing's ``_key_by_paragraph``);
FeatureWindowing's ``WindowParagraph`` (``squad_data.to_squad_examples`` +
``windowing.convert_examples_to_features``), ``plan_offsets``, ``assign_ids`` and
``summarize``, with a 123-token WordPiece vocab (no model is built). Hypothesis runs
derandomized (the same examples on every run) without an example database, so CI is
deterministic. In training, a whole-word answer is never skipped (but where squad_lib's own
alignment rule drops it) and is labelled exactly whenever a window can hold it
(``check_whole_word_answers``, on every file and in a property of its own that counts how often
it had to hold). Bugs these properties found are kept, each as its own minimal case with its
exact outcome (validation's problems, then windowing's counts, skips and labels, or ingestion's
error), in ``KNOWN_CASES`` at the end (fixed; regression tests now).
"""
from __future__ import annotations

import collections
import unittest.mock
import contextlib
import io
import json
import os
import string
import tempfile
import unicodedata

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis.control import currently_in_test_context
from hypothesis import strategies as st

from bert_qa import squad_data, windowing
from bert_qa.errors import InputError
from bert_qa.validation import validate_file

# -- settings ----------------------------------------------------------------------------------

CI = settings(max_examples=80, deadline=None, derandomize=True, database=None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much])
FEW = settings(CI, max_examples=40)

# -- the tiny vocab ------------------------------------------------------------------------------

_LETTERS = string.ascii_lowercase + string.digits
TINY_VOCAB = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
              + list(_LETTERS) + ["##" + c for c in _LETTERS] + list(string.punctuation)
              + ["the", "an", "of", "paris", "france", "capital", "tower", "##s", "##ing", "##ed",
                 "中", "文", "日", "本"])
_WORKDIR = tempfile.mkdtemp(prefix="bertqa_properties_")
VOCAB_FILE = os.path.join(_WORKDIR, "vocab.txt")
with open(VOCAB_FILE, "w", encoding="utf-8") as _f:
    _f.write("\n".join(TINY_VOCAB) + "\n")

# -- text strategies -----------------------------------------------------------------------------

COMBINING = "\u0301\u0308\u0327"
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u200f"
CJK = "中文日本語한국"
EMOJI = ["😀", "👍", "👍🏽", "❤️", "👩\u200d💻", "🇫🇷"]
CONTROL = "\x00\x01\x07\x1b\x7f\x85\x80\x9f"
UNICODE_SPACE = "\u00a0\u2009\u3000\u2028\x0b\x1f\x1c"
ODD_LETTERS = "éßİﬁΩא\ufffd\U0010fffd"
INVISIBLE = ["\u200b", "\u200d\u2060", "\ufeff", "\x00", "\u0301", "\x07\u200f", "\u00a0\u200b",
             "\u3000\u0301"]

WORD_ALPHABET = st.sampled_from(list(string.ascii_letters + string.digits + "-.,'()?!%$" + COMBINING
                                     + ZERO_WIDTH + CJK + CONTROL + UNICODE_SPACE + ODD_LETTERS)
                                + EMOJI)
COMMON_WORDS = ["Paris", "the", "capital", "of", "France", "a", "an", "1889", "Eiffel", "Tower's",
                "(1,000)", "naïve", "café", "e\u0301te\u0301", "İstanbul", "Straße", "ﬁle", "中文",
                "日本語", "😀", "👩\u200d💻", "U.S.", "don't", "x\u200by", "—", "«quote»"]
SEPARATORS = [" ", " ", " ", "  ", "\n", "\t", "\r\n", "\u202f", " \u00a0 ", "\u00a0", "\u3000",
              "\u2009", " \u2028 ", "\x0b", " \u200b "]

random_word = st.lists(WORD_ALPHABET, min_size=1, max_size=6).map("".join)
long_word = st.builds(lambda c, n: (c * n)[:230], st.sampled_from(["a", "b", "中", "é", "ab"]),
                      st.integers(95, 230))
word = st.sampled_from(["common"] * 5 + ["random"] * 4 + ["long"]).flatmap(
    lambda kind: {"common": st.sampled_from(COMMON_WORDS), "random": random_word, "long": long_word}[kind])
separator = st.sampled_from(SEPARATORS)
plain_word = st.sampled_from(["Paris", "capital", "France", "tower", "1889", "river", "Seine"])


_TOKENIZER = None


def tokenizer():
    """BERT's tokenizer with the tiny vocab (lower case), as the pipeline builds it."""
    global _TOKENIZER
    if _TOKENIZER is None:
        from bert_qa.tokenization import CachedFullTokenizer

        _TOKENIZER = CachedFullTokenizer(VOCAB_FILE, True)
    return _TOKENIZER


def tokenizes(text: str) -> bool:
    """Whether BERT's tokenizer (the tiny vocab's) gives ``text`` any token."""
    return bool(tokenizer().tokenize(text))


def known_bug(text: str) -> bool:
    """Where ingestion's has_tokens and the tokenizer disagree (once: U+2028/U+2029); none now,
    so nothing is kept out of the generated files, and any disagreement found fails the test."""
    assert not (squad_data.has_tokens(text) and not tokenizes(text)), repr(text)
    return False


@st.composite
def contexts(draw) -> str:
    """Words and separators; most contexts also hold one plain word somewhere."""
    parts = draw(st.lists(st.tuples(word, separator), min_size=0, max_size=24))
    if not parts or draw(st.integers(0, 9)):
        parts.insert(draw(st.integers(0, len(parts))), (draw(plain_word), draw(separator)))
    lead = draw(st.sampled_from(["", "", " ", "\n", "\u00a0"]))
    context = lead + "".join(w + s for w, s in parts)
    assume(not known_bug(context))
    return context


def squad_word_spans(context: str):
    """[start, end) of every whitespace token squad_lib sees."""
    spans, start = [], None
    for i, c in enumerate(context):
        if squad_data._is_whitespace(c):
            if start is not None:
                spans.append((start, i))
                start = None
        elif start is None:
            start = i
    if start is not None:
        spans.append((start, len(context)))
    return spans


@st.composite
def answers_in(draw, context: str):
    """One answer of ``context``: whole squad_lib words or any substring."""
    # Answers without a token are errors (invisible_corruptions makes those): not worth
    # generating here, where the files are meant to be valid.
    visible = lambda s, e: context[s:e].strip() and tokenizes(context[s:e])  # noqa: E731
    spans = squad_word_spans(context)
    assume(any(visible(s, e) for s, e in spans))
    if draw(st.integers(0, 2)):
        i = draw(st.integers(0, len(spans) - 1))
        j = draw(st.integers(i, min(len(spans) - 1, i + 5)))
        start, end = spans[i][0], spans[j][1]
    else:
        start = draw(st.integers(0, len(context) - 1))
        end = draw(st.integers(start + 1, min(len(context), start + 40)))
    if not visible(start, end) or known_bug(context[start:end]):
        start, end = draw(st.sampled_from([(s, e) for s, e in spans if visible(s, e)]))
    assume(not known_bug(context[start:end]))
    return {"text": context[start:end], "answer_start": start}


# No NUL in a valid file's questions: validation refuses it (nul_question_files makes those).
question_text = st.lists(word, min_size=1, max_size=12).map(" ".join).map(
    lambda q: "What " + q.replace("\x00", "") + "?")
qid_text = st.one_of(st.sampled_from(["q", "56be4db0acb8001400a502ec", "1", "id with spaces", "ид"]),
                     st.lists(WORD_ALPHABET, min_size=1, max_size=10).map("".join))


@st.composite
def qas_for(draw, context: str, v2: bool):
    qa = {"question": draw(question_text)}
    if v2 and draw(st.booleans()):
        qa["is_impossible"] = True
        if draw(st.booleans()):
            qa["answers"] = []
    else:
        if draw(st.booleans()):
            qa["is_impossible"] = False
        qa["answers"] = draw(st.lists(answers_in(context), min_size=1, max_size=3))
    return qa


@st.composite
def squad_files(draw, min_questions: int = 1):
    """A SQuAD dataset (dict) with unique question ids, valid but for rare invisible texts."""
    v2 = draw(st.booleans())
    articles = []
    for a in range(draw(st.integers(1, 2))):
        paragraphs = []
        for p in range(draw(st.integers(1, 2))):
            context = draw(contexts())
            assume(context.strip())
            first = a == 0 and p == 0
            qas = draw(st.lists(qas_for(context, v2), min_size=1 if first else 0, max_size=3))
            paragraphs.append({"context": context, "qas": qas})
        title = draw(st.one_of(st.just(f"Article {a}"), random_word))
        articles.append({"title": title, "paragraphs": paragraphs})
    all_qas = questions_of(articles)
    assume(len(all_qas) >= min_questions)
    ids = draw(st.lists(qid_text, min_size=len(all_qas), max_size=len(all_qas), unique=True))
    for qa, qid in zip(all_qas, ids):
        qa["id"] = qid
    return {"version": "v2.0" if v2 else "1.1", "data": articles}


def questions_of(articles):
    return [qa for art in articles for p in art["paragraphs"] for qa in p["qas"]]


WHOLE_WORD_ID = "whole-word answer"


@st.composite
def whole_word_files(draw):
    """A valid file with one answerable question (id WHOLE_WORD_ID) whose first answer is 1-6
    whole squad_lib words of its context, at least one with a token; other questions around it."""
    v2 = draw(st.booleans())
    context = draw(contexts())
    # Often plain words around it, so that the context spans several windows.
    before, after = (" ".join(draw(st.lists(plain_word, max_size=n))) for n in
                     draw(st.sampled_from([(0, 0), (0, 0), (40, 0), (0, 40), (20, 20)])))
    context = (before and before + " ") + context + (after and " " + after)
    spans = squad_word_spans(context)
    # Half the time only words without whitespace squad_lib keeps inside words (NBSP, U+3000, ...):
    # answers holding such a word squad_lib may drop (check_whole_word_answers).
    clean = [not any(c.isspace() for c in context[s:e]) for s, e in spans]
    only_clean = draw(st.booleans())
    with_tokens = [k for k, (s, e) in enumerate(spans) if tokenizes(context[s:e]) and (clean[k] or not only_clean)]
    assume(with_tokens)
    k = draw(st.sampled_from(with_tokens))
    first, last = k, k
    for _ in range(draw(st.integers(0, 2))):
        if first > 0 and (clean[first - 1] or not only_clean):
            first -= 1
    for _ in range(draw(st.integers(0, 3))):
        if last < len(spans) - 1 and (clean[last + 1] or not only_clean):
            last += 1
    start, end = spans[first][0], spans[last][1]
    qa = {"id": WHOLE_WORD_ID, "question": draw(question_text),
          "answers": [{"text": context[start:end], "answer_start": start}]
          + draw(st.lists(answers_in(context), max_size=2))}  # training takes the first
    if draw(st.booleans()):
        qa["is_impossible"] = False
    qas = draw(st.lists(qas_for(context, v2), max_size=3))
    qas.insert(draw(st.integers(0, len(qas))), qa)
    paragraphs = [{"context": context, "qas": qas}]
    if draw(st.booleans()):
        other = draw(contexts())
        assume(other.strip())
        paragraphs.insert(draw(st.integers(0, 1)), {"context": other, "qas": draw(st.lists(qas_for(other, v2),
                                                                                           max_size=2))})
    others = [q for p in paragraphs for q in p["qas"] if q is not qa]
    ids = draw(st.lists(qid_text.filter(lambda i: i != WHOLE_WORD_ID), min_size=len(others),
                        max_size=len(others), unique=True))
    for q, qid in zip(others, ids):
        q["id"] = qid
    return {"version": "v2.0" if v2 else "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]}


windowing_params = st.fixed_dictionaries({
    "seq_len": st.integers(24, 64),
    "query_len": st.integers(2, 16),
    "doc_stride": st.integers(1, 24),
    "is_training": st.booleans(),
    "version_2_with_negative": st.booleans(),
    "multi_answer": st.sampled_from(["first", "first", "error"]),
})

# -- corruption strategies -------------------------------------------------------------------

WRONG_VALUES = [None, 0, -1, 1.5, True, False, "", "x", " ", [], {}, [1], {"a": 1}, ["x"],
                2 ** 63, -(2 ** 63) - 1, 10 ** 30]


def _slots(node, out):
    """Every (container, key) in a JSON tree."""
    if isinstance(node, dict):
        for k, v in node.items():
            out.append((node, k))
            _slots(v, out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.append((node, i))
            _slots(v, out)
    return out


@st.composite
def tree_corruptions(draw):
    """A value anywhere deleted or replaced by one of another type, or a lone surrogate added."""
    dataset = draw(squad_files())
    container, key = draw(st.sampled_from(_slots(dataset, [])))
    action = draw(st.sampled_from(["delete", "replace", "replace", "surrogate"]))
    if action == "delete":
        del container[key]
    elif action == "replace" or not isinstance(container[key], str):
        container[key] = draw(st.sampled_from(WRONG_VALUES))
    else:
        value = container[key]
        i = draw(st.integers(0, len(value)))
        container[key] = value[:i] + draw(st.sampled_from(["\ud800", "\udfff", "\udc00x"])) + value[i:]
    return dataset


@st.composite
def invisible_corruptions(draw):
    """A context made only of invisible characters, or an invisible answer appended to one."""
    dataset = draw(squad_files())
    paragraph = draw(st.sampled_from([p for art in dataset["data"] for p in art["paragraphs"]]))
    invisible = draw(st.sampled_from(INVISIBLE))
    if draw(st.booleans()):
        paragraph["context"] = invisible
    elif paragraph["qas"]:
        qa = draw(st.sampled_from(paragraph["qas"]))
        separator = draw(st.sampled_from([" ", "\n"]))
        start = len(paragraph["context"]) + len(separator)
        paragraph["context"] += separator + invisible + draw(st.sampled_from(["", " end"]))
        qa.pop("is_impossible", None)
        qa["answers"] = [{"text": invisible, "answer_start": start}]
    return dataset


def _answers(dataset):
    return [(p, qa, ans) for art in dataset["data"] for p in art["paragraphs"] for qa in p["qas"]
            for ans in qa.get("answers", [])]


@st.composite
def offset_corruptions(draw):
    """A file with one answer's answer_start moved off its text (or its text changed)."""
    dataset = draw(squad_files())
    answers = _answers(dataset)
    assume(answers)
    paragraph, _, answer = draw(st.sampled_from(answers))
    context, start = paragraph["context"], answer["answer_start"]
    how = draw(st.sampled_from(["shift", "past_end", "negative", "text"]))
    if how == "shift":
        answer["answer_start"] = start + draw(st.sampled_from([-3, -2, -1, 1, 2, 3]))
    elif how == "past_end":
        answer["answer_start"] = len(context) + draw(st.integers(0, 5))
    elif how == "negative":
        answer["answer_start"] = -draw(st.integers(1, len(context) + 2))
    else:
        answer["text"] = answer["text"] + draw(st.sampled_from(["x", "!", "中"]))
    new = answer["answer_start"]
    assume(new < 0 or context[new:new + len(answer["text"])] != answer["text"])
    return dataset


@st.composite
def duplicate_id_files(draw):
    dataset = draw(squad_files(min_questions=2))
    qas = questions_of(dataset["data"])
    i, j = draw(st.lists(st.integers(0, len(qas) - 1), min_size=2, max_size=2, unique=True))
    qas[j]["id"] = qas[i]["id"]
    return dataset, qas[i]["id"]


@st.composite
def nul_question_files(draw):
    """A NUL character (JSON "\\u0000") put into one question: validation refuses it."""
    dataset = draw(squad_files())
    qa = draw(st.sampled_from(questions_of(dataset["data"])))
    i = draw(st.integers(0, len(qa["question"])))
    qa["question"] = qa["question"][:i] + "\x00" + qa["question"][i:]
    return dataset


def encode(dataset, ensure_ascii=True) -> bytes:
    return json.dumps(dataset, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")


@st.composite
def raw_corruptions(draw):
    data = encode(draw(squad_files()), draw(st.booleans()))
    how = draw(st.sampled_from(["truncate", "bad_byte", "utf16", "bom", "garbage", "top_list",
                                "data_object", "empty", "nan", "huge_int", "deep"]))
    if how == "truncate":
        return data[:draw(st.integers(0, len(data) - 1))]
    if how == "bad_byte":
        i = draw(st.integers(0, len(data) - 1))
        return data[:i] + draw(st.sampled_from([b"\xff", b"\xc3", b"\x80", b"\xed\xa0\x80"])) + data[i + 1:]
    if how == "utf16":
        return data.decode("utf-8").encode("utf-16")
    if how == "bom":
        return b"\xef\xbb\xbf" + data
    if how == "garbage":
        return data + draw(st.sampled_from([b"}", b" x", b"\x00", b"[]"]))
    if how == "top_list":
        return b"[" + data + b"]"
    if how == "data_object":
        return json.dumps({"data": {"title": "t"}}).encode()
    if how == "nan":
        return data.replace(b'"answer_start": ', b'"answer_start": NaN, "x": ', 1)
    if how == "huge_int":
        return data.replace(b'"answer_start": ', b'"answer_start": ' + b"7" * 5000 + b', "x": ', 1)
    if how == "deep":
        return b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    return b""


any_file = st.one_of(
    squad_files().map(encode),
    tree_corruptions().map(encode),
    invisible_corruptions().map(encode),
    offset_corruptions().map(encode),
    duplicate_id_files().map(lambda d: encode(d[0])),
    nul_question_files().map(encode),
    raw_corruptions(),
)

# -- running the pipeline's code -------------------------------------------------------------


def write_file(data: bytes, name: str = "squad.json") -> str:
    path = os.path.join(_WORKDIR, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def cli_validate(path: str) -> int:
    from bert_qa_cli.main import main

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main(["validate", path])


def ingest(path: str):
    """SquadExampleGen's read_split, then each question through its stored tf.Example, read back
    as FeatureWindowing reads it. Returns (questions, rows grouped by paragraph)."""
    from bert_qa_pipeline.components import example_codecs
    from bert_qa_pipeline.components.feature_windowing import executor as fw
    from bert_qa_pipeline.components.squad_example_gen import executor as gen

    with contextlib.redirect_stderr(io.StringIO()):
        questions, _ = gen.read_split([path], "train", None)
    groups = collections.OrderedDict()
    for index, (q, paragraph) in enumerate(zip(questions, gen.paragraph_indices(questions))):
        record = example_codecs.question_to_example(q, index, paragraph).SerializeToString(deterministic=True)
        paragraph_index, row = fw._key_by_paragraph(record)
        assert row == (index, q), "the question codec changed a question"
        groups.setdefault(paragraph_index, []).append(row)
    return questions, groups


Windowed = collections.namedtuple("Windowed", "features stats records")


def window(groups, params) -> Windowed:
    """FeatureWindowing for one split: WindowParagraph per paragraph, then the global ids."""
    import apache_beam as beam
    from bert_qa_pipeline.components.feature_windowing import executor as fw

    dofn = fw.WindowParagraph(VOCAB_FILE, True, params["seq_len"], params["query_len"],
                              params["doc_stride"], params["is_training"],
                              params["version_2_with_negative"], params["multi_answer"], "train")
    dofn.setup()
    counts, per_paragraph, features = [], {}, []
    # The stage hands serialized records on; the feature objects (tokens, maps, labels) are
    # taken where it serializes them, with the question id it records.
    serialize = fw.example_codecs.feature_to_example

    def keep(feature, is_training, qas_id):
        features.append((feature, qas_id))
        return serialize(feature, is_training, qas_id)

    with unittest.mock.patch.object(fw.example_codecs, "feature_to_example", keep):
        for paragraph_index, rows in groups.items():
            for out in dofn.process((paragraph_index, list(rows))):
                if isinstance(out, beam.pvalue.TaggedOutput):
                    counts.append(out.value)
                else:
                    per_paragraph[out[0]] = out[1]
    plan = fw.plan_offsets(counts, 0)
    records = [r for p in per_paragraph.items() for r in fw.assign_ids(p, plan, params["is_training"])]
    return Windowed(features, fw.summarize(counts), records)


# -- what must hold ------------------------------------------------------------------------------

def _visible(text: str) -> str:
    """What FullTokenizer (lower case) keeps: no NUL/U+FFFD/control/format chars, no combining marks."""
    from official.nlp.tools import tokenization as t

    kept = "".join(c for c in text if ord(c) not in (0, 0xFFFD) and not t._is_control(c))
    kept = unicodedata.normalize("NFD", kept.lower())
    return "".join(c for c in kept if unicodedata.category(c) != "Mn")


def squad_normalized(text: str) -> str:
    """The official SQuAD v1.1 normalisation of what the tokenizer can see."""
    from official.nlp.tools.squad_evaluate_v1_1 import _normalize_answer

    return _normalize_answer(_visible(text))


def is_whole_words(context: str, start: int, text: str) -> bool:
    end, ws = start + len(text), squad_data._is_whitespace
    return (not ws(context[start]) and not ws(context[end - 1])
            and (start == 0 or ws(context[start - 1])) and (end == len(context) or ws(context[end])))


def check_training_labels(questions, features):
    """Every in-window label maps back (token_to_orig_map + doc tokens, as squad_lib's
    postprocessing does) to the answer; a feature without the answer is labelled 0/0."""
    by_id = {q.id: q for q in questions}
    for feature, qid in features:
        q = by_id[qid]
        start, end = feature.start_position, feature.end_position
        if feature.is_impossible:
            assert (start, end) == (0, 0), f"question {qid!r}: out-of-window feature labelled {start}..{end}"
            continue
        assert start in feature.token_to_orig_map and end in feature.token_to_orig_map, \
            f"question {qid!r}: label {start}..{end} outside the document tokens {feature.tokens}"
        assert start <= end, f"question {qid!r}: label starts after it ends ({start}..{end})"
        doc_tokens, _ = squad_data.split_context(q.context)
        orig = " ".join(doc_tokens[feature.token_to_orig_map[start]:feature.token_to_orig_map[end] + 1])
        answer, answer_start = q.answer_texts[0], q.answer_starts[0]
        if is_whole_words(q.context, answer_start, answer):
            assert squad_normalized(orig) == squad_normalized(answer), (qid, orig, answer)
        else:  # part of a word: the labelled words hold it
            compact = lambda s: "".join(_visible(s).split())  # noqa: E731
            assert compact(answer) in compact(orig), (qid, orig, answer)


def check_whole_word_answers(questions, windowed: Windowed, params) -> dict:
    """Training: an answerable question whose (first) answer is whole squad_lib words of its
    context, at its offset, with a token, is never skipped (unless squad_lib's own alignment rule
    drops it, see below); each of its labelled features labels exactly the answer's WordPieces
    (token_to_orig_map: its first and last words with a token); and one feature is labelled
    whenever the answer can fit a window: always when the whole context fits one window, else when
    its WordPiece count is <= window - stride + 1 (some window then holds it).

    squad_lib (and so the pipeline, for parity) drops an answer when its text split on Python's
    whitespace, joined by spaces, does not occur in the context's words joined by spaces: a
    whole-word answer holding whitespace squad_lib does not split words on (NBSP, U+3000, U+2028,
    ...) between its words, e.g. "a \u00a0 b". That question must then be skipped, with reason
    ANSWER_NOT_ALIGNED; any other is not. Returns {question id: what held}."""
    if not params["is_training"]:
        return {}
    tok = tokenizer()
    skipped = {s["id"]: s for s in windowed.stats["skipped"]}
    features = collections.defaultdict(list)
    for feature, qid in windowed.features:
        features[qid].append(feature)
    held = {}
    for q in questions:
        if (params["version_2_with_negative"] and q.is_impossible) or not q.answer_texts:
            continue
        text, start = q.answer_texts[0], q.answer_starts[0]
        if not (text and 0 <= start and q.context[start:start + len(text)] == text
                and is_whole_words(q.context, start, text) and squad_data.has_tokens(text)):
            continue
        spans = squad_word_spans(q.context)
        words = [q.context[s:e] for s, e in spans]
        first = [s for s, _ in spans].index(start)
        last = [e for _, e in spans].index(start + len(text))
        if " ".join(text.split()) not in " ".join(words[first:last + 1]):
            assert skipped.get(q.id, {}).get("reason") == squad_data.ANSWER_NOT_ALIGNED, \
                f"question {q.id!r}: answer {text!r} kept, but squad_lib's alignment rule drops it"
            held[q.id] = "skipped: squad_lib's alignment rule"
            continue
        assert q.id not in skipped, f"question {q.id!r}: whole-word answer {text!r} skipped: {skipped[q.id]}"
        pieces = [tok.tokenize(w) for w in words]
        with_pieces = [k for k in range(first, last + 1) if pieces[k]]
        assert with_pieces, f"question {q.id!r}: answer {text!r} has tokens, its words none"
        want = [p for k in range(first, last + 1) for p in pieces[k]]
        mine = features[q.id]
        assert mine, f"question {q.id!r}: no feature"
        labelled = [f for f in mine if not f.is_impossible]
        for f in labelled:
            got = (f.token_to_orig_map.get(f.start_position), f.token_to_orig_map.get(f.end_position))
            assert got == (with_pieces[0], with_pieces[-1]), \
                f"question {q.id!r}: label maps to words {got}, the answer is words {with_pieces[0]}..{with_pieces[-1]}"
            assert f.tokens[f.start_position:f.end_position + 1] == want, \
                f"question {q.id!r}: labelled {f.tokens[f.start_position:f.end_position + 1]}, answer {want}"
        n_query = min(len(tok.tokenize(q.question)), params["query_len"])
        room = params["seq_len"] - n_query - 3  # document tokens per window
        if sum(map(len, pieces)) <= room:
            assert len(mine) == 1 and labelled, \
                f"question {q.id!r}: context fits one window; {len(mine)} features, {len(labelled)} labelled"
            held[q.id] = "labelled: context in one window"
        elif len(want) <= room - min(params["doc_stride"], room) + 1:
            assert labelled, f"question {q.id!r}: answer of {len(want)} tokens in no window of {room}"
            held[q.id] = "labelled: context in several windows"
        else:
            held[q.id] = "answer too long to be sure a window holds it"
    return held


def check_accounting(questions, windowed: Windowed, params):
    """ids in == ids with features + ids skipped; unique ids unique; features name real questions."""
    import tensorflow as tf

    ids_in = [q.id for q in questions]
    assert len(set(ids_in)) == len(ids_in)
    with_features = {qid for _, qid in windowed.features}
    skipped = [s["id"] for s in windowed.stats["skipped"]]
    assert len(set(skipped)) == len(skipped), f"a question skipped twice: {skipped}"
    assert with_features <= set(ids_in), "a feature references an unknown question id"
    assert with_features.isdisjoint(skipped), "a question both windowed and skipped"
    missing = set(ids_in) - with_features - set(skipped)
    assert not missing, f"questions silently dropped (no feature, no Skipped record): {sorted(missing)}"
    assert windowed.stats["questions"] == len(ids_in)
    if not params["is_training"]:
        assert not skipped, "evaluation skipped a question"
    assert windowed.stats["features"] == len(windowed.features)
    examples = [tf.train.Example.FromString(record) for _, (_, record) in windowed.records]
    final_ids = [e.features.feature["unique_ids"].int64_list.value[0] for e in examples]
    assert final_ids == [uid for _, (uid, _) in windowed.records]
    base = windowing.BASE_UNIQUE_ID
    assert sorted(final_ids) == list(range(base, base + len(windowed.features))), "unique ids not unique"
    if not params["is_training"]:
        pairs = {(e.features.feature["example_index"].int64_list.value[0],
                  e.features.feature["qas_id"].bytes_list.value[0].decode("utf-8")) for e in examples}
        assert {qid for _, qid in pairs} == with_features, "an evaluation feature names an unknown question id"
        assert len({i for i, _ in pairs}) == len(pairs) == len(with_features), \
            "example_index and question id do not match one to one"


def note(what: str) -> None:
    """A hypothesis event (statistics: ``--hypothesis-show-statistics``), if under hypothesis."""
    if currently_in_test_context():
        event(what)


def check_file(data: bytes, params) -> bool:
    """The properties for one file; True if validation passed."""
    path = write_file(data)
    report = validate_file(path)  # never raises: every problem is in the report
    assert all(path in str(p) for p in report.problems), "a problem does not name the file"
    assert cli_validate(path) == (1 if report.errors else 0), "bertqa validate exit status"
    note("validation " + ("failed" if report.errors else "passed"))
    try:
        questions, groups = ingest(path)
        windowed = window(groups, params)
    except Exception as err:  # noqa: BLE001 (the property is about which exceptions)
        assert isinstance(err, InputError), f"{type(err).__name__} is not an InputError: {err!r}"
        assert path in str(err), f"the error does not name the file: {err}"
        note("ingestion/windowing refused the file")
        if not report.errors:  # validation passed: only the training-only multi-answer rule may refuse
            assert (params["is_training"] and params["multi_answer"] == "error"
                    and "exactly 1 answer" in str(err)), f"validation passed, ingestion refused: {err}"
        return not report.errors
    if not report.errors:
        assert len(questions) == report.questions
    check_accounting(questions, windowed, params)
    if params["is_training"]:
        check_training_labels(questions, windowed.features)
        for what in check_whole_word_answers(questions, windowed, params).values():
            note("whole-word answer " + what)
    note("accepted: " + ("training" if params["is_training"] else "evaluation"))
    for reason in windowed.stats["skipped_by_reason"]:
        note(f"skipped: {reason}")
    if any(f.doc_span_index > 0 for f, _ in windowed.features):
        note("a question with several windows")
    if params["is_training"] and any(not f.is_impossible for f, _ in windowed.features):
        note("a training label in a window")
    return not report.errors


# -- the properties --------------------------------------------------------------------------------

@settings(CI, max_examples=100)
@given(data=any_file, params=windowing_params)
def test_any_file_passes_or_fails_with_an_input_error(data, params):
    """Valid or corrupted: validation reports (CLI exit 0/1); ingestion + windowing accept it,
    accounting for every question, or raise an InputError naming the file; a file validation
    passes is accepted."""
    check_file(data, params)


@CI
@given(dataset=squad_files(), params=windowing_params)
def test_valid_files_windowed_with_every_question_accounted_for(dataset, params):
    """Valid files, training and evaluation: ids in == ids with features + skipped, unique ids
    unique, training labels map back to the answer text (or 0/0 out of window)."""
    params = dict(params, multi_answer="first")  # the pipeline's default
    assert check_file(encode(dataset), params), "validation refused a generated valid file"


@CI
@given(dataset=squad_files(), params=windowing_params)
def test_training_labels_map_back_to_the_answer(dataset, params):
    """Valid files windowed for training: each feature's start/end, through token_to_orig_map
    and the doc tokens, is the answer text after SQuAD normalisation, or 0/0 out of window."""
    params = dict(params, is_training=True, multi_answer="first")
    assert check_file(encode(dataset), params), "validation refused a generated valid file"


WHOLE_WORD_SETTINGS = settings(CI, max_examples=120)


def test_a_whole_word_answer_is_never_skipped_and_labelled_when_a_window_holds_it():
    """Training on generated valid files each holding a question whose answer is whole words of
    its context (check_whole_word_answers). Counted over the run: how often the answer had to be
    labelled, so that the property cannot quietly stop testing it."""
    held = collections.Counter()

    @WHOLE_WORD_SETTINGS
    @given(dataset=whole_word_files(), params=windowing_params)
    def run(dataset, params):
        params = dict(params, is_training=True, multi_answer="first")
        path = write_file(encode(dataset))
        report = validate_file(path)
        assert not report.errors, [str(p) for p in report.errors]
        questions, groups = ingest(path)
        windowed = window(groups, params)
        check_accounting(questions, windowed, params)
        check_training_labels(questions, windowed.features)
        outcome = check_whole_word_answers(questions, windowed, params)
        held[outcome[WHOLE_WORD_ID]] += 1

    run()
    total = sum(held.values())
    # Measured (derandomized, 120 examples), alone: 54 labelled in a context of one window, 37 in
    # a context of several, 21 not labelled-for-sure (answer longer than window - stride + 1; still
    # never skipped), 8 dropped by squad_lib's rule. In the full suite (two xdist workers): 55, 13,
    # 22 and 30: Hypothesis also draws literals from the project's modules already imported in the
    # process, so the mix shifts with what ran before. Floors set below both.
    assert total >= WHOLE_WORD_SETTINGS.max_examples, held
    assert held["labelled: context in one window"] >= 0.35 * total, held
    assert held["labelled: context in several windows"] >= 0.08 * total, held
    assert held["skipped: squad_lib's alignment rule"] <= 0.3 * total, held


@FEW
@given(dataset=squad_files())
def test_unique_ids_are_never_reported_as_duplicates(dataset):
    path = write_file(encode(dataset))
    report = validate_file(path)
    assert not [p for p in report.problems if "duplicate" in p.message]
    try:
        ingest(path)
    except squad_data.SquadFormatError as err:
        assert "duplicate" not in str(err)


@FEW
@given(case=duplicate_id_files())
def test_a_duplicated_id_is_always_reported(case):
    dataset, qid = case
    path = write_file(encode(dataset))
    report = validate_file(path)
    assert [p for p in report.errors if "duplicate" in p.message and p.question_id == qid]
    assert cli_validate(path) == 1
    with pytest.raises(squad_data.SquadFormatError) as err:
        ingest(path)
    assert path in str(err.value)
    # Another problem of the file may come first; otherwise ingestion names the duplicate.
    if len(report.errors) == 1:
        assert "duplicate" in str(err.value) and repr(qid) in str(err.value)


@FEW
@given(dataset=offset_corruptions())
def test_an_answer_off_its_offset_is_reported(dataset):
    path = write_file(encode(dataset))
    assert [p for p in validate_file(path).errors if "answer" in p.message]


# -- known cases: minimal inputs of bugs these properties found, each a regression test --------------

def _one(context, qa, title="t"):
    return {"version": "v2.0", "data": [{"title": title, "paragraphs": [{"context": context, "qas": [qa]}]}]}


def _qa(text, start, **extra):
    return dict({"id": "q", "question": "Where?", "answers": [{"text": text, "answer_start": start}]}, **extra)


TRAIN = dict(seq_len=32, query_len=8, doc_stride=8, is_training=True, version_2_with_negative=True,
             multi_answer="first")
EVAL = dict(TRAIN, is_training=False)

NO_TOKENS = "has only whitespace, control or format characters"


def _refused_context(context):
    return ("<file>, question 'q': data[0].paragraphs[0]: the context is empty or has only whitespace/control "
            f"characters ({context!r}): no tokens, so its questions could not be windowed")


def _validation_of_context(context):
    return [("error", "q", f"the context {NO_TOKENS} ({context!r}): no tokens, so its questions cannot be windowed"),
            ("error", "q", f"answers[0] text {context!r} {NO_TOKENS}")]


def _windowed(skipped=(), labels=()):
    """What FeatureWindowing makes of the one question: skipped (reason, detail), or its
    features' labels (start, end, is_impossible, the labelled tokens)."""
    return {"questions": 1, "examples": 0 if skipped else 1, "features": len(labels),
            "skipped": [("q",) + s for s in skipped], "labels": list(labels)}


PARIS_LABEL = (8, 8, False, ["paris"])  # [CLS] w ##h ##e ##r ##e ? [SEP] paris [SEP]

# Each: the file, the windowing parameters, then exactly what happens: validation's problems
# (severity, question id, message) and either windowing's result or the InputError ingestion
# raises ("<file>" for the path).
KNOWN_CASES = [
    pytest.param(_one("Paris ", _qa("Paris", -6)), TRAIN,
                 [("error", "q", "answers[0] 'answer_start' -6 is negative; the text occurs at 0")],
                 _windowed(skipped=[(squad_data.ANSWER_OUT_OF_RANGE, "answer_start=-6")]),
                 id="negative-answer_start"),
    pytest.param(_one(" Paris", _qa(" Paris", 0)), TRAIN, [], _windowed(labels=[PARIS_LABEL]),
                 id="answer-in-leading-space"),
    pytest.param(_one("Paris \u200b x", _qa("\u200b", 6)), TRAIN,
                 [("error", "q", f"answers[0] text '\\u200b' {NO_TOKENS}")],
                 _windowed(skipped=[(squad_data.ANSWER_NOT_ALIGNED, "answer '\\u200b' has no tokens")]),
                 id="zero-width-answer"),
    pytest.param(_one("Paris \u0301", _qa("\u0301", 6)), TRAIN,
                 [("error", "q", f"answers[0] text {chr(0x301)!r} {NO_TOKENS}")],
                 _windowed(skipped=[(squad_data.ANSWER_NOT_ALIGNED, f"answer {chr(0x301)!r} has no tokens")]),
                 id="combining-mark-answer-last"),
    pytest.param(_one("\u200b", _qa("\u200b", 0)), EVAL, _validation_of_context("\u200b"),
                 _refused_context("\u200b"), id="zero-width-context"),
    pytest.param(_one("Paris \ud800", _qa("Paris", 0)), TRAIN,
                 [("error", "q", "the context has a lone surrogate '\\ud800' at character 6 (an unpaired "
                                 "\\ud800-\\udfff escape): not valid Unicode, cannot be written as UTF-8")],
                 "<file>, question 'q': data[0].paragraphs[0]: the context has a lone surrogate '\\ud800' at "
                 "character 6 (an unpaired \\ud800-\\udfff escape): not valid Unicode, cannot be written as UTF-8",
                 id="lone-surrogate"),
    pytest.param(_one("Paris", _qa("Paris", 2 ** 63)), TRAIN,
                 [("error", "q", "answers[0] text 'Paris' at answer_start 9223372036854775808 runs past the end "
                                 "of the context (5 characters); the text occurs at 0")],
                 "<file>, question 'q': answers[0] 'answer_start' 9223372036854775808 is not a character "
                 "position (the context has 5 characters)", id="answer_start-over-int64"),
    # validate refuses a non-string title; ingestion reads it as its text, "5".
    pytest.param(_one("Paris", _qa("Paris", 0), title=5), TRAIN, [("error", None, "'title' is not a string: 5")],
                 _windowed(labels=[PARIS_LABEL]), id="int-title"),
    pytest.param(_one("Paris", {"id": "q", "question": "Where?", "is_impossible": True, "answers": None}),
                 TRAIN, [], _windowed(labels=[(0, 0, True, ["[CLS]"])]), id="impossible-with-null-answers"),
    pytest.param(_one("Paris \u2028\u200b", _qa("\u2028\u200b", 6)), TRAIN,
                 [("error", "q", f"answers[0] text '\\u2028\\u200b' {NO_TOKENS}")],
                 _windowed(skipped=[(squad_data.ANSWER_NOT_ALIGNED, "answer '\\u2028\\u200b' has no tokens")]),
                 id="answer-of-line-separator-and-zero-width"),
    pytest.param(_one("\u2028\u200b", _qa("\u2028\u200b", 0)), EVAL, _validation_of_context("\u2028\u200b"),
                 _refused_context("\u2028\u200b"), id="context-of-line-separator-and-zero-width"),
]


@pytest.mark.parametrize("dataset,params,validation,windowed", KNOWN_CASES)
def test_known_cases(dataset, params, validation, windowed):
    """The general properties (check_file), then this case's exact outcome."""
    data = encode(dataset)
    check_file(data, params)
    path = write_file(data)
    report = validate_file(path)
    assert [(p.severity, p.question_id, p.message) for p in report.problems] == validation
    assert cli_validate(path) == (1 if validation else 0)
    if isinstance(windowed, str):  # ingestion refuses the file
        with pytest.raises(squad_data.SquadFormatError) as err:
            ingest(path)
        assert str(err.value).replace(path, "<file>") == windowed
        return
    questions, groups = ingest(path)
    result = window(groups, params)
    got = {key: result.stats[key] for key in ("questions", "examples", "features")}
    got["skipped"] = [(s["id"], s["reason"], s["detail"]) for s in result.stats["skipped"]]
    got["labels"] = [(f.start_position, f.end_position, f.is_impossible,
                      f.tokens[f.start_position:f.end_position + 1]) for f, _ in result.features]
    assert got == windowed
    assert [qid for _, qid in result.features] == ["q"] * len(windowed["labels"])
