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
from bert_qa.errors import EXIT_BAD_INPUT, EXIT_TOOL_FAILED, InputError
from bert_qa_cli import commands


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
    """Exit 0 done, 1 the input is bad (``InputError``: fix the file, flag or config named),
    2 usage (argparse), 3 the tool failed (anything else; ``--debug`` for the traceback)."""
    args = build_parser().parse_args(argv)
    if argv is None:  # the process is ours (the `bertqa` command), not a caller's (tests, notebooks)
        from bert_qa_cli import console

        console.quiet(args.verbose)
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        print(f"bertqa {args.command}: interrupted", file=sys.stderr)
        return 130
    except InputError as err:
        if args.debug:
            raise
        print(f"bertqa {args.command}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as err:  # noqa: BLE001 (the one place that turns failures into a status)
        if args.debug:
            raise
        print(f"bertqa {args.command}: failed: {type(err).__name__}: {err}\n"
              f"(this is the tool's failure, not a problem with your input as far as it can tell; "
              f"rerun with `bertqa --debug {args.command} ...` for the traceback)", file=sys.stderr)
        return EXIT_TOOL_FAILED
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
