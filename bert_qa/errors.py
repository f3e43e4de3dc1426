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


def read_utf8_file(path: str, what: str, error: type = InputError,
                   not_text_hint: str = "save it as UTF-8") -> str:
    """The text of a UTF-8 file the user named, or ``error("{what} {path}: <problem>")``.

    One place for the problems a user can fix: missing, a directory, unreadable, or not UTF-8
    (the line, and the bad byte with its offset, which an editor or ``xxd`` finds; then
    ``not_text_hint``, what to do about it).
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise error(f"{what} {path}: not found") from None
    except IsADirectoryError:
        raise error(f"{what} {path}: is a directory, not a file") from None
    except OSError as err:
        raise error(f"{what} {path}: cannot read it: {err.strerror or err}") from err
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise error(f"{what} {path}: line {line}: not UTF-8 text (byte 0x{raw[err.start]:02x} at offset "
                    f"{err.start}); {not_text_hint}") from None
