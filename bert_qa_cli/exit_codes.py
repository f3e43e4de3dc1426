"""The one exit-status policy of `bertqa` (issue 20): every command's outcome goes through here.

====  ==========================================================================================
0     done
1     bad input: an ``InputError`` (a file, flag, setting or configuration key the user must
      fix; the message names it), and a request the service refused or that could not reach
      the address given (``ServiceRefused``: the service's reason, or the host to check)
2     usage: argparse's own, and ``UsageError`` (a missing or conflicting flag, as argparse
      would say it had it known)
3     the tool failed: anything else (``--debug`` shows the traceback)
130   interrupted (Ctrl-C)
====  ==========================================================================================

Commands raise; they do not print an error and pick a status themselves. ``main`` calls
``run_command``, the one place that turns an exception into a line on stderr and a status.
"""
from __future__ import annotations

import sys

from bert_qa.errors import EXIT_BAD_INPUT, EXIT_TOOL_FAILED, EXIT_USAGE, InputError

OK = 0
BAD_INPUT = EXIT_BAD_INPUT
USAGE = EXIT_USAGE
FAILED = EXIT_TOOL_FAILED
INTERRUPTED = 130


class UsageError(Exception):
    """A flag missing or conflicting with another (e.g. ``--target vertex`` without
    ``--project``): exit 2, argparse's status for the same kind of mistake."""


class ServiceRefused(InputError):
    """The service (Vertex AI, a Kubeflow Pipelines API server) refused the request or could not
    be reached at the address given: its reason, exit 1. Nothing was started."""


def status_of(err: BaseException) -> int:
    """The exit status of a command that raised ``err``."""
    if isinstance(err, KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(err, UsageError):
        return USAGE
    if isinstance(err, InputError):
        return BAD_INPUT
    return FAILED


def message_of(command: str, err: BaseException) -> str:
    status = status_of(err)
    if status == INTERRUPTED:
        return f"bertqa {command}: interrupted"
    if status in (USAGE, BAD_INPUT):
        return f"bertqa {command}: error: {err}"
    return (f"bertqa {command}: failed: {type(err).__name__}: {err}\n"
            f"(this is the tool's failure, not a problem with your input as far as it can tell; "
            f"rerun with `bertqa --debug {command} ...` for the traceback)")


def run_command(command: str, func, args, debug: bool = False) -> int:
    """``func(args)``'s status (None is 0), or the status and one line for what it raised;
    with ``debug`` the exception propagates (its traceback), except Ctrl-C."""
    try:
        result = func(args)
    except KeyboardInterrupt as err:
        print(message_of(command, err), file=sys.stderr)
        return INTERRUPTED
    except Exception as err:  # noqa: BLE001 (the one place that turns failures into a status)
        if debug:
            raise
        print(message_of(command, err), file=sys.stderr)
        return status_of(err)
    return int(result or 0)
