"""SQuAD feature windowing: examples -> fixed-length BERT features.

Produces exactly the features of ``official.nlp.data.squad_lib.convert_examples_to_features``
(Model Maker's windowing) for the same examples, tokenizer vocab and parameters; the test
suite proves it over thousands of real questions. It is faster because work that squad_lib
repeats per question is done once per paragraph (context tokenization, WordPiece ids) and
once per (paragraph, query length) (doc spans and their max-context flags), and because the
tokenizer memoises words (see ``bert_qa.tokenization``).
"""
from __future__ import annotations

import collections
import copy
import gc
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from bert_qa import _env  # noqa: F401
from official.nlp.data import squad_lib

BASE_UNIQUE_ID = 1_000_000_000
InputFeatures = squad_lib.InputFeatures
DocSpan = collections.namedtuple("DocSpan", ["start", "length"])


class _Paragraph:
    """WordPiece view of one context, shared by all its questions."""

    __slots__ = ("all_doc_tokens", "doc_ids", "tok_to_orig_index", "orig_to_tok_index", "spans")

    def __init__(self, doc_tokens: Sequence[str], tokenizer):
        all_doc_tokens: List[str] = []
        tok_to_orig_index: List[int] = []
        orig_to_tok_index: List[int] = []
        tokenize = tokenizer.tokenize_cached if hasattr(tokenizer, "tokenize_cached") else tokenizer.tokenize
        for i, token in enumerate(doc_tokens):
            orig_to_tok_index.append(len(all_doc_tokens))
            sub_tokens = tokenize(token)
            all_doc_tokens.extend(sub_tokens)
            tok_to_orig_index.extend([i] * len(sub_tokens))
        self.all_doc_tokens = all_doc_tokens
        self.doc_ids = tokenizer.convert_tokens_to_ids(all_doc_tokens)
        self.tok_to_orig_index = tok_to_orig_index
        self.orig_to_tok_index = orig_to_tok_index
        self.spans: Dict[int, Tuple[List[DocSpan], List[List[bool]]]] = {}

    def spans_for(self, max_tokens_for_doc: int, doc_stride: int):
        """Doc spans and per-span max-context flags (squad_lib's sliding window)."""
        cached = self.spans.get(max_tokens_for_doc)
        if cached is None:
            cached = _doc_spans(len(self.all_doc_tokens), max_tokens_for_doc, doc_stride)
            self.spans[max_tokens_for_doc] = cached
        return cached


def _doc_spans(num_tokens: int, max_tokens_for_doc: int, doc_stride: int):
    # squad_lib's loop advances by min(window, stride): either below 1 and it never ends,
    # appending spans until memory runs out.
    if max_tokens_for_doc < 1 or doc_stride < 1:
        raise ValueError(f"cannot window a context with {max_tokens_for_doc} tokens per window and "
                         f"stride {doc_stride}: both must be >= 1")
    spans: List[DocSpan] = []
    start_offset = 0
    while start_offset < num_tokens:
        length = min(num_tokens - start_offset, max_tokens_for_doc)
        spans.append(DocSpan(start_offset, length))
        if start_offset + length == num_tokens:
            break
        start_offset += min(length, doc_stride)
    if len(spans) == 1:
        return spans, [[True] * spans[0].length]
    # squad_lib._check_is_max_context, computed for every position at once: the span
    # that maximises min(left, right) + 0.01 * length wins; the first span wins ties.
    best_score: Dict[int, float] = {}
    best_span: Dict[int, int] = {}
    for span_index, span in enumerate(spans):
        end = span.start + span.length - 1
        for position in range(span.start, end + 1):
            score = min(position - span.start, end - position) + 0.01 * span.length
            if position not in best_score or score > best_score[position]:
                best_score[position] = score
                best_span[position] = span_index
    max_context = [
        [best_span[span.start + i] == span_index for i in range(span.length)]
        for span_index, span in enumerate(spans)
    ]
    return spans, max_context


def _improve_answer_span(doc_tokens, input_start, input_end, tokenizer, orig_answer_text):
    """squad_lib._improve_answer_span: the tightest WordPiece span equal to the answer."""
    tok_answer_text = " ".join(tokenizer.tokenize(orig_answer_text))
    for new_start in range(input_start, input_end + 1):
        for new_end in range(input_end, new_start - 1, -1):
            if " ".join(doc_tokens[new_start:new_end + 1]) == tok_answer_text:
                return new_start, new_end
    return input_start, input_end


def convert_examples_to_features(
    examples: Sequence[squad_lib.SquadExample],
    tokenizer,
    max_seq_length: int,
    doc_stride: int,
    max_query_length: int,
    is_training: bool,
    output_fn: Callable,
    batch_size: Optional[int] = None,
    base_unique_id: int = BASE_UNIQUE_ID,
    first_example_index: int = 0,
    pad_to_batch: bool = True,
) -> int:
    """Windows ``examples`` into features; calls ``output_fn`` as squad_lib does.

    Returns the number of features produced (padding features included), as squad_lib.
    ``base_unique_id`` / ``first_example_index`` / ``pad_to_batch`` exist for sharded
    (Beam) windowing; their defaults reproduce squad_lib exactly.

    Parameters that would never finish (squad_lib loops forever on ``doc_stride=0`` or a
    ``max_seq_length`` with no room for the context) raise ``SettingError`` (a ValueError)
    before any work.
    """
    from bert_qa.settings import check_settings

    check_settings({"seq_len": max_seq_length, "query_len": max_query_length, "doc_stride": doc_stride},
                   {"seq_len": "max_seq_length", "query_len": "max_query_length"})
    # Windowing allocates millions of small, acyclic lists and dicts; the cyclic garbage
    # collector would rescan all of them again and again while callers accumulate them.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _convert(examples, tokenizer, max_seq_length, doc_stride, max_query_length,
                        is_training, output_fn, batch_size, base_unique_id,
                        first_example_index, pad_to_batch)
    finally:
        if gc_was_enabled:
            gc.enable()


def _convert(examples, tokenizer, max_seq_length, doc_stride, max_query_length, is_training,
             output_fn, batch_size, base_unique_id, first_example_index, pad_to_batch):
    vocab = tokenizer.vocab
    missing = [token for token in ("[CLS]", "[SEP]") if token not in vocab]
    if missing:
        from bert_qa.errors import InputError

        raise InputError(f"the tokenizer's vocabulary ({len(vocab)} tokens) has no {' or '.join(missing)}: "
                         f"not a BERT WordPiece vocabulary, windows cannot be built")
    cls_id, sep_id = vocab["[CLS]"], vocab["[SEP]"]
    paragraphs: Dict[int, Tuple[object, _Paragraph]] = {}
    unique_id = base_unique_id
    feature = None
    for offset, example in enumerate(examples):
        example_index = first_example_index + offset
        key = id(example.doc_tokens)
        cached = paragraphs.get(key)
        if cached is None or cached[0] is not example.doc_tokens:
            # Keep a reference to the list so its id cannot be reused while cached.
            cached = (example.doc_tokens, _Paragraph(example.doc_tokens, tokenizer))
            paragraphs[key] = cached
        para = cached[1]

        query_tokens = tokenizer.tokenize(example.question_text)[:max_query_length]
        query_ids = tokenizer.convert_tokens_to_ids(query_tokens)
        n_query = len(query_tokens)

        tok_start = tok_end = None
        if is_training and example.is_impossible:
            tok_start = tok_end = -1
        if is_training and not example.is_impossible:
            tok_start = para.orig_to_tok_index[example.start_position]
            if example.end_position < len(example.doc_tokens) - 1:
                tok_end = para.orig_to_tok_index[example.end_position + 1] - 1
            else:
                tok_end = len(para.all_doc_tokens) - 1
            tok_start, tok_end = _improve_answer_span(
                para.all_doc_tokens, tok_start, tok_end, tokenizer, example.orig_answer_text)

        max_tokens_for_doc = max_seq_length - n_query - 3
        spans, max_context = para.spans_for(max_tokens_for_doc, doc_stride)
        doc_offset = n_query + 2
        prefix_tokens = ["[CLS]"] + list(query_tokens) + ["[SEP]"]
        prefix_ids = [cls_id] + query_ids + [sep_id]

        for span_index, span in enumerate(spans):
            s, n = span.start, span.length
            used = doc_offset + n + 1
            pad = max_seq_length - used
            tokens = prefix_tokens + para.all_doc_tokens[s:s + n] + ["[SEP]"]
            positions = range(doc_offset, doc_offset + n)
            token_to_orig_map = dict(zip(positions, para.tok_to_orig_index[s:s + n]))
            token_is_max_context = dict(zip(positions, max_context[span_index]))
            input_ids = prefix_ids + para.doc_ids[s:s + n] + [sep_id] + [0] * pad
            input_mask = [1] * used + [0] * pad
            segment_ids = [0] * doc_offset + [1] * (n + 1) + [0] * pad
            paragraph_mask = [1] + [0] * (n_query + 1) + [1] * n + [0] + [0] * pad

            start_position = end_position = 0
            span_contains_answer = False
            if is_training and not example.is_impossible:
                doc_end = s + n - 1
                span_contains_answer = tok_start >= s and tok_end <= doc_end
                if span_contains_answer:
                    start_position = tok_start - s + doc_offset
                    end_position = tok_end - s + doc_offset

            feature = InputFeatures(
                unique_id=unique_id,
                example_index=example_index,
                doc_span_index=span_index,
                tokens=tokens,
                paragraph_mask=paragraph_mask,
                class_index=0,
                token_to_orig_map=token_to_orig_map,
                token_is_max_context=token_is_max_context,
                input_ids=input_ids,
                input_mask=input_mask,
                segment_ids=segment_ids,
                start_position=start_position,
                end_position=end_position,
                is_impossible=not span_contains_answer)
            if is_training:
                output_fn(feature)
            else:
                output_fn(feature, is_padding=False)
            unique_id += 1

    if not is_training and feature and pad_to_batch:
        assert batch_size
        # squad_lib's padding, quirks included: the test is on unique_id (not the count)
        # and the callback receives the last real feature, not the renumbered copy.
        num_padding = 0
        num_examples = unique_id - base_unique_id
        if unique_id % batch_size != 0:
            num_padding = batch_size - (num_examples % batch_size)
        dummy_feature = copy.deepcopy(feature)
        for _ in range(num_padding):
            dummy_feature.unique_id = unique_id
            output_fn(feature, is_padding=True)
            unique_id += 1
    return unique_id - base_unique_id
