"""Answering questions about raw text with a .tflite QA model and nothing else.

The vocabulary, tokenizer casing and windowing parameters come from the file's metadata
(see ``bert_qa.export.metadata``), so a model exported by ``bertqa export`` is
self-contained. The pipeline is Model Maker's ``predict_tflite`` + ``postprocess_output``:
squad_lib windowing (``bert_qa.windowing``, exact), the LiteRT interpreter, and squad_lib's
``postprocess_output`` (``bert_qa.postprocess``, exact; n-best 20, answers of at most 30 tokens).
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

from bert_qa import _env  # noqa: F401
from bert_qa.errors import InputError
from bert_qa.export.metadata import TfliteModelError  # noqa: F401  (re-exported)
from bert_qa.settings import check_settings

N_BEST_SIZE = 20
MAX_ANSWER_LENGTH = 30


class QuestionTruncatedWarning(UserWarning):
    """A question longer than the model's ``query_len`` tokens: only its first tokens are read
    (squad_lib's windowing cuts it; Model Maker did so silently)."""


@dataclasses.dataclass(frozen=True)
class Answer:
    """One candidate answer: its text, softmax probability over the n-best, and logits."""

    text: str
    probability: float
    start_logit: float
    end_logit: float


@dataclasses.dataclass
class Prediction:
    """Everything computed for a batch of questions (the tests compare against it)."""

    examples: list
    features: list
    raw_results: list
    nbest: Dict[str, List[Answer]]


class TfliteQuestionAnswerer:
    """A .tflite span model with its own tokenizer, answering questions on contexts."""

    def __init__(self, tflite_path: str, num_threads: Optional[int] = None,
                 query_len: Optional[int] = None, doc_stride: Optional[int] = None,
                 batch_size: int = 8):
        from bert_qa.export.metadata import read_metadata
        from bert_qa.tflite_runner import LiteRunner
        from bert_qa.tokenization import CachedFullTokenizer

        # Settings first: a thread count the interpreter refuses is not a damaged model.
        check_settings({"num_threads": num_threads, "batch_size": batch_size})
        # The interpreter first: it verifies the flatbuffer, so a corrupt or truncated file is
        # reported as such rather than as unreadable metadata. Both raise TfliteModelError
        # (an InputError naming the file).
        self.runner = LiteRunner(tflite_path, num_threads=num_threads)
        self.metadata = read_metadata(tflite_path)
        try:
            vocab_text = self.metadata.vocab_bytes.decode("utf-8")
        except UnicodeDecodeError as err:
            raise TfliteModelError(f"{tflite_path}: the vocabulary packed in its metadata is not "
                                   f"UTF-8 (damaged file?): {err}") from err
        if not vocab_text.strip():
            raise TfliteModelError(f"{tflite_path}: the vocabulary packed in its metadata is empty")
        with tempfile.TemporaryDirectory() as tmp:  # FullTokenizer reads the vocab eagerly
            vocab_path = self.metadata.write_vocab(os.path.join(tmp, "vocab.txt"))
            self.tokenizer = CachedFullTokenizer(vocab_path, self.metadata.do_lower_case)
        self.do_lower_case = self.metadata.do_lower_case
        self.seq_len = self.runner.seq_len
        options = self.metadata.options
        self.query_len = int(query_len or options.get("query_len") or _spec_default("query_len"))
        self.doc_stride = int(doc_stride or options.get("doc_stride") or _spec_default("doc_stride"))
        # The model's seq_len is fixed: "no room" means pass a smaller query_len.
        check_settings({"seq_len": self.seq_len, "query_len": self.query_len, "doc_stride": self.doc_stride},
                       {"seq_len": f"{tflite_path}: seq_len"})
        self.batch_size = batch_size

    def answer(self, context: str, question: str, top_k: int = 5,
               n_best_size: int = N_BEST_SIZE, max_answer_length: int = MAX_ANSWER_LENGTH
               ) -> List[Answer]:
        """The ``top_k`` best answers to ``question`` in ``context``, best first."""
        check_settings({"top_k": top_k})
        prediction = self.predict([("q0", context, question)], n_best_size, max_answer_length)
        return prediction.nbest["q0"][:top_k]

    def predict(self, items: Sequence[Tuple[str, str, str]], n_best_size: int = N_BEST_SIZE,
                max_answer_length: int = MAX_ANSWER_LENGTH) -> Prediction:
        """n-best answers for ``(id, context, question)`` items, keyed by id.

        A question or context without a token is an ``InputError`` (there is nothing to
        answer, or nothing to answer from); a question longer than ``query_len`` tokens is cut
        to its first ``query_len`` (as in training) with a ``QuestionTruncatedWarning``.
        """
        import numpy as np
        from official.legacy.bert.run_squad_helper import RawResult
        from bert_qa import postprocess, squad_data, windowing

        check_settings({"n_best_size": n_best_size, "max_answer_length": max_answer_length})
        for qid, context, question in items:
            if not isinstance(question, str) or not self.tokenizer.tokenize(question):
                raise InputError(f"question {qid!r}: the question is empty (no tokens in {question!r})")
            if not isinstance(context, str) or not self.tokenizer.tokenize(context):
                raise InputError(f"question {qid!r}: the context is empty (no tokens)")
            n_tokens = self.question_tokens(question)
            if n_tokens > self.query_len:
                warnings.warn(QuestionTruncatedWarning(
                    f"question {qid!r} has {n_tokens} tokens, more than the model's query_len: it was "
                    f"truncated to its first {self.query_len} tokens"), stacklevel=2)
        questions = [squad_data.Question(id=qid, title="", context=context, question=question,
                                         answer_texts=(), answer_starts=())
                     for qid, context, question in items]
        examples, _ = squad_data.to_squad_examples(questions, is_training=False)
        features: list = []
        windowing.convert_examples_to_features(
            examples, self.tokenizer, max_seq_length=self.seq_len, doc_stride=self.doc_stride,
            max_query_length=self.query_len, is_training=False,
            output_fn=lambda feature, is_padding=False: features.append(feature),
            pad_to_batch=False)
        results = []
        for start in range(0, len(features), self.batch_size):
            batch = features[start:start + self.batch_size]
            inputs = {"input_word_ids": np.array([f.input_ids for f in batch], np.int32),
                      "input_mask": np.array([f.input_mask for f in batch], np.int32),
                      "input_type_ids": np.array([f.segment_ids for f in batch], np.int32)}
            start_logits, end_logits = self.runner.run(inputs)
            for feature, s, e in zip(batch, start_logits, end_logits):
                results.append(RawResult(unique_id=feature.unique_id, start_logits=s.tolist(),
                                         end_logits=e.tolist()))
        _, nbest_json, _ = postprocess.postprocess_output(  # = squad_lib's, faster
            examples, features, results, n_best_size=n_best_size,
            max_answer_length=max_answer_length, do_lower_case=self.do_lower_case,
            version_2_with_negative=False)
        nbest = {qid: [Answer(text=a["text"], probability=float(a["probability"]),
                              start_logit=float(a["start_logit"]), end_logit=float(a["end_logit"]))
                       for a in answers]
                 for qid, answers in nbest_json.items()}
        return Prediction(examples=examples, features=features, raw_results=results, nbest=nbest)


    def question_tokens(self, question: str) -> int:
        """How many WordPiece tokens ``question`` has (the model reads at most ``query_len``)."""
        return len(self.tokenizer.tokenize(question))


def answer_question(tflite_path: str, context: str, question: str, top_k: int = 5,
                    **kwargs) -> List[Answer]:
    """One-shot helper: the ``top_k`` answers from a self-contained .tflite model."""
    return TfliteQuestionAnswerer(tflite_path, **kwargs).answer(context, question, top_k)


def _spec_default(name: str) -> int:
    """The spec's own default, for models whose metadata does not record the windowing."""
    from bert_qa.spec import windowing_defaults

    return windowing_defaults()[name]
