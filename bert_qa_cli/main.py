"""`bertqa`: the command line on top of bert_qa, components, pipeline and kubeflow.

Each subcommand lives in its own module under ``bert_qa_cli.commands`` and exposes
``register(subparsers)``; they are discovered here so that adding a command touches one file.
Commands do not import each other: what several share is in ``bert_qa_cli.common``, and what
their outcome means as an exit status is ``bert_qa_cli.exit_codes``. Nothing imports this package.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from bert_qa import _env  # noqa: F401  (before anything imports TensorFlow)
from bert_qa_cli import commands
from bert_qa_cli.exit_codes import run_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bertqa",
        description="Fine-tune BERT-family encoders for extractive QA (SQuAD format) and "
                    "ship Task Library TFLite models; TFLite Model Maker BertQaSpec parity.")
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of a failure (default: one line)")
    parser.add_argument("--verbose", action="store_true",
                        help="keep the libraries' console chatter (TensorFlow's C++ start-up lines, "
                             "deprecation notices); by default only our lines and real warnings show")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        if hasattr(module, "register"):
            module.register(subparsers)
    return parser


def main(argv=None) -> int:
    """Exit 0 done, 1 bad input, 2 usage, 3 the tool failed: ``bert_qa_cli.exit_codes``."""
    args = build_parser().parse_args(argv)
    if argv is None:  # the process is ours (the `bertqa` command), not a caller's (tests, notebooks)
        from bert_qa_cli import console

        console.quiet(args.verbose)
    return run_command(args.command, args.func, args, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
