"""Push destinations on S3, against a real S3 API server on 127.0.0.1 (tests/s3_server.py).

The pusher publishes versioned (a claim by conditional PUT, the files, the manifest last), never
overwrites another pusher's version, never leaves half a model, and ``latest_published`` finds
the newest whole version. The end-to-end run on S3, with QaEvaluator re-scoring what was pushed,
is tests/test_kfp_launcher.py.
"""
from __future__ import annotations

import json

import pytest

from bert_qa_pipeline.components import artifacts, object_store
from bert_qa_pipeline.components.tflite_pusher import executor as pusher_executor
from tests.train_push_helpers import fake_blessing, fake_export, push

BUCKET = "pushes"


@pytest.fixture(scope="module")
def bucket(s3_server):
    return s3_server.create_bucket(BUCKET)


def test_the_store_speaks_s3(s3_server, bucket, tmp_path):
    base = f"s3://{bucket}/store"
    assert not object_store.exists(base) and object_store.listdir(base) == []
    assert object_store.create_exclusive(f"{base}/1/.claim", b"a")
    assert not object_store.create_exclusive(f"{base}/1/.claim", b"b")  # If-None-Match: the first wins
    assert s3_server.read(bucket, "store/1/.claim") == b"a"
    local = tmp_path / "f.bin"
    local.write_bytes(b"x" * 3_000_000)
    object_store.copy(str(local), f"{base}/1/big.bin")
    with pytest.raises(FileExistsError):
        object_store.copy(str(local), f"{base}/1/big.bin")
    object_store.copy(f"{base}/1/big.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == local.read_bytes()
    assert object_store.listdir(base) == ["1"] and object_store.listdir(f"{base}/1") == [".claim", "big.bin"]
    assert object_store.isdir(base) and object_store.mtime_ns(f"{base}/1/big.bin") > 0
    object_store.rmtree(f"{base}/1")
    assert s3_server.keys(bucket, "store/") == []


def test_pusher_publishes_versions_on_s3_and_never_overwrites(s3_server, bucket, tmp_path, monkeypatch):
    destination = f"s3://{bucket}/models"
    first = push(fake_export(tmp_path, "m1", b"one"), fake_blessing(tmp_path, "b1", True), destination, tmp_path, "p1")
    assert first.get_string_custom_property("pushed_destination") == f"{destination}/1"
    assert s3_server.keys(bucket, "models/") == [
        "models/1/.claim", "models/1/manifest.json", "models/1/model.tflite", "models/1/vocab.txt"]
    manifest = json.loads(s3_server.read(bucket, "models/1/manifest.json"))
    assert manifest["version"] == 1 and manifest["files"] == ["model.tflite", "vocab.txt"]

    # Another pusher claimed version 2 after we listed the versions: our claim on 2 fails (the
    # conditional PUT), and we take 3; its files are untouched.
    listed = pusher_executor.existing_versions

    def stale_then_real(dest, calls=[]):
        calls.append(1)
        if len(calls) == 2:  # the first look inside publish() (the first is the duplicate check)
            s3_server.client().put_object(Bucket=bucket, Key="models/2/.claim", Body=b"someone-else")
            s3_server.client().put_object(Bucket=bucket, Key="models/2/model.tflite", Body=b"theirs")
            return [1]
        return listed(dest)

    real_create, claims = object_store.create_exclusive, []

    def recording_create(path, data):
        claims.append((path.rsplit("/", 2)[-2], real_create(path, data)))
        return claims[-1][1]

    monkeypatch.setattr(pusher_executor, "existing_versions", stale_then_real)
    monkeypatch.setattr(object_store, "create_exclusive", recording_create)
    third = push(fake_export(tmp_path, "m3", b"three"), fake_blessing(tmp_path, "b3", True), destination, tmp_path,
                 "p3")
    monkeypatch.undo()
    assert third.get_string_custom_property("pushed_version") == "3"
    assert claims == [("2", False), ("3", True), ("3", True)]  # lost 2's claim; 3's claim, then its manifest
    assert s3_server.read(bucket, "models/2/model.tflite") == b"theirs"
    assert s3_server.read(bucket, "models/3/model.tflite") == b"three"
    # Version 2 has no manifest (its pusher is still copying): readers take 3, the newest whole one.
    assert artifacts.latest_published(destination) == f"{destination}/3"
    assert artifacts.published_versions(destination) == [1, 2, 3]


def test_a_failed_push_to_s3_leaves_no_half_model(s3_server, bucket, tmp_path, monkeypatch):
    destination = f"s3://{bucket}/failing"
    push(fake_export(tmp_path, "m1", b"one"), fake_blessing(tmp_path, "b1", True), destination, tmp_path, "p1")
    real_copy, calls = object_store.copy, []

    def failing_copy(src, dst, overwrite=False):
        calls.append(dst)
        if len(calls) == 2:
            raise ConnectionError("connection reset (simulated)")
        return real_copy(src, dst, overwrite)

    monkeypatch.setattr(object_store, "copy", failing_copy)
    with pytest.raises(ConnectionError, match="simulated"):
        push(fake_export(tmp_path, "m2", b"two"), fake_blessing(tmp_path, "b2", True), destination, tmp_path, "p2")
    monkeypatch.undo()
    assert [k for k in s3_server.keys(bucket, "failing/") if k.startswith("failing/2/")] == []
    assert artifacts.latest_published(destination) == f"{destination}/1"


def test_a_minio_destination_is_refused_before_any_work(tmp_path):
    with pytest.raises(object_store.UnsupportedSchemeError, match=r"write s3://BUCKET/PATH and set AWS_ENDPOINT_URL"):
        push(fake_export(tmp_path, "m", b"x"), fake_blessing(tmp_path, "b", True), "minio://mlpipeline/pushed",
             tmp_path, "p")
    with pytest.raises(object_store.UnsupportedSchemeError, match="names no bucket"):
        object_store.check_destination("s3:///pushed")
