"""The one line between "your input is bad" and "the tool failed".

Every error that a user fixes by changing their input (a file, a flag, a config key) derives
from ``InputError``; the CLI prints its message and exits 1. Anything else is the tool's
fault: the CLI says so and exits 3 (``--debug`` shows the traceback). argparse keeps 2 for
usage errors.
"""
from __future__ import annotations

EXIT_BAD_INPUT = 1
EXIT_USAGE = 2  # argparse's own
EXIT_TOOL_FAILED = 3


class InputError(ValueError):
    """Input the user must fix; the message names the file (and record) at fault."""
