"""One owner at a time for a local directory (an output directory, a resume state).

An advisory ``flock`` on a lock file beside the state: the kernel releases it when its holder
dies, even by ``kill -9``, so a crashed run never leaves a lock that needs deleting by hand.
The file also says who holds it, for the message the second comer gets. Object stores
(``gs://``, ``s3://``) have no such lock; callers use this for local paths only.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
from typing import Iterator

from bert_qa.errors import InputError


class LockedError(InputError):
    """Another live process owns the state; the message names it."""


@contextlib.contextmanager
def exclusive(lock_path: str, what: str) -> Iterator[None]:
    """Holds ``lock_path`` for the block, or raises ``LockedError`` at once if another process
    does (``what``: the state it guards, for the message)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no protection, as before
        yield
        return
    os.makedirs(os.path.dirname(os.path.abspath(lock_path)), exist_ok=True)
    with open(lock_path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise LockedError(f"{what} is in use by {holder} (lock {lock_path}); wait for it to "
                              f"finish or use another directory") from None
        except OSError:  # the file system has no locks (some network mounts): no protection
            yield
            return
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps({
                "pid": os.getpid(), "host": socket.gethostname(),
                "since": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}))
            handle.flush()
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
