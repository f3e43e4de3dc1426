"""TflitePusher under faults: kill -9 mid-push, an object store's copy order, stale leftovers."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
import tensorflow as tf
from tfx.utils import json_utils

from bert_qa_pipeline.components import artifacts
from bert_qa_pipeline.components.tflite_pusher import executor as pusher_executor
from tests import fixtures
from tests.train_push_helpers import fake_blessing, fake_export, push

_KILLED_PUSHER = textwrap.dedent("""
    import json, os, signal, sys
    from bert_qa import _env
    import tensorflow as tf
    from tfx.utils import json_utils
    from bert_qa_pipeline.components.tflite_pusher import executor

    args = json.load(open(sys.argv[1]))
    real_copy, copies = tf.io.gfile.copy, []

    def copy(src, dst, overwrite=False):
        copies.append(dst)
        if len(copies) == 2:  # one file staged, the second not yet
            os.kill(os.getpid(), signal.SIGKILL)
        return real_copy(src, dst, overwrite)

    tf.io.gfile.copy = copy
    inputs = {k: json_utils.loads(v) for k, v in args["inputs"].items()}
    outputs = {k: json_utils.loads(v) for k, v in args["outputs"].items()}
    executor.Executor().Do(inputs, outputs, args["properties"])
""")


def test_a_push_killed_midway_publishes_nothing_and_the_rerun_publishes(tmp_path):
    from tfx.types import standard_artifacts

    destination = str(tmp_path / "dest")
    model, blessing = fake_export(tmp_path, "m", b"model"), fake_blessing(tmp_path, "b", True)
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "killed")
    script, args = tmp_path / "child.py", tmp_path / "args.json"
    script.write_text(_KILLED_PUSHER)
    args.write_text(json.dumps({
        "properties": {"push_destination": destination, "variant": "dynamic"},
        "inputs": {"tflite_model": json_utils.dumps([model]), "blessing": json_utils.dumps([blessing])},
        "outputs": {"pushed_model": json_utils.dumps([pushed])}}))
    child = subprocess.run([sys.executable, str(script), str(args)], capture_output=True, text=True,
                           timeout=300, env=dict(os.environ, PYTHONPATH=fixtures.REPO_ROOT))
    assert child.returncode == -9, child.stderr[-3000:]
    left = os.listdir(destination)
    assert len(left) == 1 and left[0].startswith(".staging-")  # the kill left its staging only
    assert artifacts.published_versions(destination) == [] and artifacts.latest_published(destination) is None

    # A day later the leftover is swept by the next push, which publishes version 1, whole.
    day_ago = time.time() - 2 * 24 * 3600
    staging = os.path.join(destination, left[0])
    for name in os.listdir(staging):
        os.utime(os.path.join(staging, name), (day_ago, day_ago))
    os.utime(staging, (day_ago, day_ago))
    rerun = push(model, blessing, destination, tmp_path, "rerun")
    assert rerun.get_string_custom_property("pushed_version") == "1"
    assert sorted(os.listdir(destination)) == ["1"]
    assert open(os.path.join(destination, "1", "model.tflite"), "rb").read() == b"model"


def test_a_fresh_staging_directory_is_left_to_its_pusher(tmp_path):
    destination = tmp_path / "dest"
    live = destination / ".staging-live"
    live.mkdir(parents=True)
    (live / "model.tflite").write_bytes(b"being copied")
    push(fake_export(tmp_path, "m", b"model"), fake_blessing(tmp_path, "b", True), str(destination), tmp_path, "p")
    assert (live / "model.tflite").exists()


def test_object_store_push_claims_the_version_and_writes_the_manifest_last(tmp_path, monkeypatch):
    """Through gfile's file:// scheme, which takes the object-store branch (no directory rename)."""
    from bert_qa_pipeline.components import object_store

    destination = "file://" + str(tmp_path / "bucket" / "pushed")
    real_copy, real_create, written = object_store.copy, object_store.create_exclusive, []

    def recording_copy(src, dst, overwrite=False):
        written.append(os.path.basename(dst))
        return real_copy(src, dst, overwrite)

    def recording_create(path, data):
        written.append(os.path.basename(path))
        return real_create(path, data)

    monkeypatch.setattr(object_store, "copy", recording_copy)
    monkeypatch.setattr(object_store, "create_exclusive", recording_create)
    first = push(fake_export(tmp_path, "m1", b"one"), fake_blessing(tmp_path, "b1", True), destination, tmp_path, "p1")
    assert first.get_string_custom_property("pushed_version") == "1"
    # The claim first, the manifest last, every file in between.
    assert written == [pusher_executor.CLAIM_FILE, "model.tflite", "vocab.txt", artifacts.MANIFEST_FILE]

    # A copy that fails after the model reached version 2: the error surfaces (it is no lost
    # race), and the half-written version is removed, so no reader can take it.
    calls = []

    def failing_copy(src, dst, overwrite=False):
        calls.append(dst)
        if len(calls) == 2:
            raise tf.errors.UnavailableError(None, None, "connection reset (simulated)")
        return real_copy(src, dst, overwrite)

    monkeypatch.setattr(object_store, "copy", failing_copy)
    with pytest.raises(tf.errors.UnavailableError, match="simulated"):
        push(fake_export(tmp_path, "m2", b"two"), fake_blessing(tmp_path, "b2", True), destination, tmp_path, "p2")
    monkeypatch.undo()
    local = str(tmp_path / "bucket" / "pushed")
    assert sorted(os.listdir(local)) == ["1"]
    assert artifacts.latest_published(destination).endswith("/1")
