"""`bertqa predict`: answer a question about a text with a .tflite model alone."""
from __future__ import annotations

import sys

from bert_qa_cli.common import int_flags

NAME = "predict"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        NAME,
        help="answer a question about a text with an exported .tflite model",
        description=(
            "Answer QUESTION from a context with a .tflite model written by `bertqa export`. "
            "Only the file is needed: the vocabulary and tokenizer options come from its "
            "metadata. Long contexts are windowed as in training (squad_lib), answers are "
            "ranked as Model Maker does (n-best 20, at most 30 tokens)."),
        epilog='example: bertqa predict --model model_dynamic.tflite --context-file doc.txt '
               '--question "Who wrote it?"')
    p.add_argument("--model", required=True, help=".tflite file with QA metadata")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--context", help="the context text")
    source.add_argument("--context-file", help="file holding the context text (UTF-8)")
    p.add_argument("--question", required=True, help="the question")
    # Numbers are parsed by the one settings check, so that "abc" and "-3" are both bad input
    # (exit 1) naming the flag and its range, as --set / --epochs are for `bertqa run`.
    p.add_argument("--top-k", default="5", metavar="K", help="answers to print, >= 1 (default 5)")
    p.add_argument("--max-answer-length", default="30", metavar="TOKENS",
                   help="longest answer in tokens, >= 1 (default 30)")
    p.add_argument("--threads", default=None, metavar="N", help="interpreter threads, >= 1")
    p.set_defaults(func=run)


FLAGS = {"top_k": "--top-k", "max_answer_length": "--max-answer-length", "num_threads": "--threads"}


def run(args) -> int:
    import warnings

    from bert_qa.answering import QuestionTruncatedWarning, TfliteQuestionAnswerer
    from bert_qa.errors import InputError
    from bert_qa.settings import check_settings

    settings = int_flags({"top_k": args.top_k, "max_answer_length": args.max_answer_length,
                          "num_threads": args.threads}, FLAGS)
    check_settings(settings, FLAGS)
    if not args.question.strip():
        raise InputError("--question: the question is empty")
    if args.context_file:
        context = read_context_file(args.context_file)
        if not context.strip():
            raise InputError(f"context file {args.context_file}: it is empty")
    else:
        context = args.context
        if not context.strip():
            raise InputError("--context: the context is empty")
    # A missing, unreadable, corrupt or truncated model, or one without QA metadata, is a
    # TfliteModelError (an InputError naming the file); anything else is the tool's failure.
    answerer = TfliteQuestionAnswerer(args.model, num_threads=settings["num_threads"])
    if not answerer.question_tokens(args.question):
        raise InputError(f"--question: the question has no tokens ({args.question!r})")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", QuestionTruncatedWarning)
        answers = answerer.answer(context, args.question, top_k=settings["top_k"],
                                  max_answer_length=settings["max_answer_length"])
    for warning in caught:
        if issubclass(warning.category, QuestionTruncatedWarning):
            print(f"bertqa {NAME}: warning: --question has {answerer.question_tokens(args.question)} "
                  f"tokens, more than the model's query_len {answerer.query_len}: it was truncated "
                  f"to its first {answerer.query_len} tokens", file=sys.stderr)
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    print(f"Q: {args.question}")
    for rank, answer in enumerate(answers, 1):
        print(f"{rank}. {answer.text!r}  probability {answer.probability:.4f}  "
              f"logits {answer.start_logit:.3f}/{answer.end_logit:.3f}")
    return 0


def read_context_file(path: str) -> str:
    """The context text; a missing, unreadable or non-UTF-8 file is an InputError naming it."""
    from bert_qa.errors import read_utf8_file

    return read_utf8_file(path, "context file")
