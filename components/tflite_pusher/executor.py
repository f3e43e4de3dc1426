"""TflitePusher's executor: atomic, versioned, never-overwriting publication."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from typing import Dict, Optional

from bert_qa import _env  # noqa: F401
import tensorflow as tf
from tfx.dsl.components.base import base_executor

from bert_qa_pipeline.components import artifacts, keys, object_store

log = logging.getLogger(__name__)

MANIFEST = artifacts.MANIFEST_FILE
existing_versions = artifacts.published_versions


class VersionExistsError(FileExistsError):
    """Another pusher published this version first."""


def publish(files: Dict[str, str], destination: str, manifest: dict, max_attempts: int = 5) -> str:
    """Copies ``{name: source}`` into ``<destination>/<next version>/``; returns that path.

    Local disks: staged in ``<destination>/.staging-<uuid>/`` and renamed into place. A rename is
    atomic on POSIX file systems (and HDFS), and renaming onto an existing, non-empty version
    fails, so a version is never overwritten. If another pusher takes the version first, the
    next one is tried. Staging directories of pushers killed long ago are swept.

    Object stores (gs://, s3://) have no directory rename. There a pusher first claims the
    version by creating ``<version>/.claim`` only if absent, then copies the files into it one
    by one and ``manifest.json`` last. So a version whose manifest exists is whole, which is
    what every reader (``artifacts.latest_published``) requires; a pusher killed midway leaves
    a claimed version without manifest, which readers skip and the next pusher steps over. On
    S3 the claim is a conditional PUT (``If-None-Match: *``): two racing pushers never share a
    version. On gs:// through gfile it is a check then a write (gfile has no preconditions).
    """
    object_store.check_destination(destination)
    if "://" in destination:
        return _publish_claimed(files, destination, manifest, max_attempts)
    tf.io.gfile.makedirs(destination)
    sweep_stale_staging(destination)
    staging = os.path.join(destination, f".staging-{uuid.uuid4().hex}")
    tf.io.gfile.makedirs(staging)
    try:
        for name, source in files.items():
            tf.io.gfile.copy(source, os.path.join(staging, name))
        for attempt in range(max_attempts):
            version = (existing_versions(destination) or [0])[-1] + 1
            target = os.path.join(destination, str(version))
            artifacts.write_json(os.path.join(staging, MANIFEST), {**manifest, "version": version})
            if tf.io.gfile.exists(target):
                continue
            try:
                os.rename(staging, target)  # rename(2): atomic; fails onto a non-empty dir
            except OSError as err:
                if isinstance(err, FileExistsError) or tf.io.gfile.exists(target):
                    continue  # another pusher has this version; take the next one
                raise
            return target
        raise VersionExistsError(f"could not claim a new version under {destination} "
                                 f"after {max_attempts} attempts")
    finally:
        if tf.io.gfile.exists(staging):
            tf.io.gfile.rmtree(staging)


CLAIM_FILE = ".claim"


def _publish_claimed(files: Dict[str, str], destination: str, manifest: dict, max_attempts: int) -> str:
    object_store.makedirs(destination)
    claim = json.dumps({"pusher": uuid.uuid4().hex, "pid": os.getpid()}).encode()
    for attempt in range(max_attempts):
        version = (existing_versions(destination) or [0])[-1] + 1
        target = os.path.join(destination, str(version))
        if not object_store.create_exclusive(os.path.join(target, CLAIM_FILE), claim):
            continue  # another pusher has this version; take the next one
        published = False
        try:
            for name in sorted(files):
                object_store.copy(files[name], os.path.join(target, name), overwrite=False)
            text = json.dumps({**manifest, "version": version}, indent=1, sort_keys=True).encode()
            if not object_store.create_exclusive(os.path.join(target, MANIFEST), text):
                raise VersionExistsError(f"{target} got a manifest from another pusher after we claimed it")
            published = True
            return target
        finally:
            if not published:  # never leave half a model where a reader could mistake it
                _remove_quietly(target)
    raise VersionExistsError(f"could not claim a new version under {destination} "
                             f"after {max_attempts} attempts")


def _remove_quietly(path: str) -> None:
    try:
        object_store.rmtree(path)
    except Exception:  # noqa: BLE001 -- the manifest is absent, so readers skip it anyway
        pass


_STALE_STAGING_SECONDS = 24 * 3600


def sweep_stale_staging(destination: str) -> None:
    """``.staging-*`` left by pushers killed at least a day ago (no live push takes that long)."""
    for name in tf.io.gfile.listdir(destination):
        if not name.rstrip("/").startswith(".staging-"):
            continue
        path = os.path.join(destination, name.rstrip("/"))
        try:
            newest = max([tf.io.gfile.stat(os.path.join(path, f)).mtime_nsec
                          for f in tf.io.gfile.listdir(path)] or [tf.io.gfile.stat(path).mtime_nsec])
            if time.time() - newest / 1e9 > _STALE_STAGING_SECONDS:
                tf.io.gfile.rmtree(path)
        except (tf.errors.OpError, OSError):
            pass  # swept by another pusher


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with object_store.open_file(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def find_pushed(destination: str, sha256: str) -> Optional[int]:
    """The version that already holds a model with this content, if any."""
    for version in existing_versions(destination):
        path = os.path.join(destination, str(version), MANIFEST)
        if object_store.exists(path) and artifacts.read_json(path).get("sha256") == sha256:
            return version
    return None


def pushed_scores(blessing, evaluation, variant: str) -> dict:
    """The scores of the file being pushed (its variant's), and the float model's beside them.

    Whoever deploys from the manifest must read the scores of what they deploy; the blessing
    carries the float SavedModel's.
    """
    scores = {"saved_model_f1": blessing.get_float_custom_property("f1"),
              "saved_model_exact_match": blessing.get_float_custom_property("exact_match")}
    path = os.path.join(evaluation.uri, artifacts.SCORES_FILE) if evaluation is not None else ""
    if path and tf.io.gfile.exists(path):
        variant_scores = artifacts.read_json(path).get("scores", {}).get(variant)
        if variant_scores:
            return {**scores, "f1": variant_scores["f1"], "exact_match": variant_scores["exact_match"],
                    "scores_of": variant}
    return {**scores, "scores_of": "saved_model (no evaluation of the pushed variant given)"}


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        tflite_model = artifacts.single(input_dict[keys.TFLITE_MODEL_KEY], keys.TFLITE_MODEL_KEY)
        blessing = artifacts.single(input_dict[keys.BLESSING_KEY], keys.BLESSING_KEY)
        evaluation: Optional = artifacts.optional_single(input_dict.get(keys.EVALUATION_KEY))
        pushed = artifacts.single(output_dict[keys.PUSHED_MODEL_KEY], keys.PUSHED_MODEL_KEY)
        destination = exec_properties["push_destination"]
        variant = exec_properties["variant"]
        object_store.check_destination(destination)  # before any work: a scheme we cannot write

        if not artifacts.is_blessed(blessing):
            failed = blessing.get_string_custom_property("failed_checks")
            log.info(f"TflitePusher: model not blessed (failed: {failed}); nothing pushed")
            artifacts.record_counts(pushed, {"pushed": 0, "pushed_destination": ""})
            return
        files = {artifacts.PUBLISHED_MODEL_FILE: artifacts.tflite_path(tflite_model.uri, variant),
                 artifacts.VOCAB_FILE: os.path.join(tflite_model.uri, artifacts.VOCAB_FILE)}
        if evaluation is not None:
            for name in (artifacts.REPORT_FILE, artifacts.CHART_FILE, artifacts.SCORES_FILE):
                path = os.path.join(evaluation.uri, name)
                if tf.io.gfile.exists(path):
                    files[name] = path
        sha256 = sha256_of(files[artifacts.PUBLISHED_MODEL_FILE])
        already = find_pushed(destination, sha256)
        if already is not None:
            # A re-evaluation of the same model (e.g. against itself as baseline) re-blesses
            # it; publishing identical bytes again would only add a duplicate version.
            target = os.path.join(destination, str(already))
            artifacts.record_counts(pushed, {"pushed": 1, "pushed_destination": target,
                                             "pushed_version": str(already), "variant": variant,
                                             "already_pushed": 1})
            log.info(f"TflitePusher: this model is already version {already} ({target}); not pushed again")
            return
        lengths = {f"{k}_seq_len": tflite_model.get_int_custom_property(f"{k}_seq_len")
                   for k in ("serving", "trained") if tflite_model.has_custom_property(f"{k}_seq_len")}
        manifest = {"sha256": sha256, "variant": variant, "source_model": tflite_model.uri,
                    "blessing": blessing.uri, "files": sorted(files), **lengths,
                    **pushed_scores(blessing, evaluation, variant)}
        target = publish(files, destination, manifest)
        version = int(os.path.basename(target))
        # The pushed copy is also kept inside the artifact (TFX's Pusher does the same).
        for name, source in files.items():
            tf.io.gfile.makedirs(pushed.uri)
            tf.io.gfile.copy(source, os.path.join(pushed.uri, name), overwrite=True)
        artifacts.record_counts(pushed, {"pushed": 1, "pushed_destination": target,
                                         "pushed_version": str(version), "variant": variant})
        log.info(f"TflitePusher: pushed {variant} model as version {version}: {target}")
