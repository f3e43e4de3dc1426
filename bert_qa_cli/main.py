"""`bertqa`: the command line on top of bert_qa, components, pipeline and kubeflow.

Each subcommand lives in its own module under ``bert_qa_cli.commands`` and exposes
``register(subparsers)``; they are discovered here so that adding a command touches one file.
Nothing imports this package.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from bert_qa import _env  # noqa: F401  (before anything imports TensorFlow)
from bert_qa_cli import commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bertqa",
        description="Fine-tune BERT-family encoders for extractive QA (SQuAD format) and "
                    "ship Task Library TFLite models; TFLite Model Maker BertQaSpec parity.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        if hasattr(module, "register"):
            module.register(subparsers)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    result = args.func(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
