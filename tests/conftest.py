"""Shared pytest fixtures. Importing bert_qa first sets TF_USE_LEGACY_KERAS."""
import os

import pytest

import bert_qa  # noqa: F401  (environment before TensorFlow)
from tests import fixtures


@pytest.fixture(scope="session")
def vocab_file():
    return fixtures.minilm_vocab()


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory):
    """A 2-layer, hidden-32 TF2 Hub-format encoder shared by the session's tests."""
    return fixtures.make_tiny_tf2_encoder(str(tmp_path_factory.mktemp("tiny_encoder") / "encoder"))


@pytest.fixture(scope="session")
def shared_data():
    if not os.path.isdir(fixtures.SHARED_DATA):
        pytest.fail(f"shared data directory missing: {fixtures.SHARED_DATA}")
    return fixtures.SHARED_DATA
