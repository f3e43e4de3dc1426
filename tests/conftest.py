"""Shared pytest fixtures. Importing bert_qa first sets TF_USE_LEGACY_KERAS."""
import os

import pytest

# The suite runs TensorFlow with its default inter-op pool ("0"), not bert_qa._env's one thread:
# with one thread, test_tpu_without_a_tpu_fails_fast[local] took 16.5 s (limit 10 s) late in a
# full run in this long-lived process (not investigated further). Processes the tests start
# inherit it. What one thread buys (bit-for-bit training next to other load) needs the real
# model to show, so it is measured by benchmarks/repeatability.py, not tested here; the setting
# itself is tested by test_processes_get_one_inter_op_thread_unless_they_ask_otherwise.
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "0")

import bert_qa  # noqa: E402,F401  (environment before TensorFlow)
from tests import fixtures


@pytest.fixture(scope="session")
def vocab_file():
    return fixtures.minilm_vocab()


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory):
    """A 2-layer, hidden-32 TF2 Hub-format encoder shared by the session's tests."""
    return fixtures.make_tiny_tf2_encoder(str(tmp_path_factory.mktemp("tiny_encoder") / "encoder"))


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 API server on 127.0.0.1 (tests/s3_server.py); its endpoint and credentials are
    in this process's environment while it runs, as they would be in a task's pod."""
    from tests.s3_server import S3Server

    server = S3Server()
    saved = {k: os.environ.get(k) for k in server.env}
    os.environ.update(server.env)
    yield server
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    server.stop()
