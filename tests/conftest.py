"""Shared pytest fixtures. Importing bert_qa first sets TF_USE_LEGACY_KERAS."""
import os

import pytest

# The suite runs TensorFlow as the product does: bert_qa._env's one inter-op thread (its docstring
# says why), inherited by the processes the tests start. An earlier suite reset it to TF's pool
# because a TPU fail-fast was slow late in a long run (the timings: git log -S'fail-fast'
# tests/conftest.py); the suspect, TF's TPU initializer clearing every cache of the process and
# garbage-collecting before it fails, no longer runs without a TPU (distribution._check_local_tpu).

import bert_qa  # noqa: E402,F401  (environment before TensorFlow)
from tests import fixtures


# Every test module in one tier (registered in pyproject.toml), so `bin/test -m "not e2e"` is the
# quick loop and `bin/test` (CI) still runs everything. A new module must be placed here.
TIERS = {
    # pure Python or small TensorFlow calls, seconds each
    "unit": {"test_scoring", "test_squad_data", "test_tokenization", "test_validate", "test_windowing",
             "test_postprocess", "test_properties", "test_input_corpus", "test_spec_api", "test_locks",
             "test_console", "test_suite_layout", "test_docs_current", "test_import_contracts",
             "test_progress_logging", "test_quality_study"},
    # real models, components, compilers, fake servers and S3: tens of seconds
    "integration": {"test_components_data", "test_components_train_push", "test_train_evaluate",
                    "test_mixed_precision", "test_tflite_export", "test_spec_encoders", "test_checkpoint_import",
                    "test_feature_cache", "test_push_faults", "test_object_store", "test_kfp_entrypoint",
                    "test_resources", "test_submit_kfp", "test_submit_vertex", "test_cli_errors",
                    "test_settings_refused", "test_packaging", "test_export_gate", "test_weight_outliers"},
    # whole pipelines, clusters of processes, kills, other runtimes (Task Library, PyTorch): minutes
    "e2e": {"test_pipeline", "test_pipeline_faults", "test_kfp_launcher", "test_container_entrypoint",
            "test_custom_job", "test_trainer_faults", "test_task_library", "test_training_parity",
            "test_dataflow", "test_strategies"},
}


def pytest_collection_modifyitems(config, items):
    tier_of = {module: tier for tier, modules in TIERS.items() for module in modules}
    unplaced = sorted({item.module.__name__.rsplit(".", 1)[-1] for item in items} - set(tier_of))
    if unplaced:
        raise pytest.UsageError(f"test modules {unplaced} are in no tier: add them to TIERS in tests/conftest.py")
    for item in items:
        item.add_marker(getattr(pytest.mark, tier_of[item.module.__name__.rsplit(".", 1)[-1]]))
    # Longest first (bin/test passes --no-loadscope-reorder so xdist keeps this order): the
    # whole-pipeline modules start at once and the many short unit tests fill the other worker's
    # tail. xdist's default queues modules by their number of tests, which left the two longest
    # (one and three tests) for last. A stable sort keeps each module's own order.
    rank = {module: (TIER_ORDER.index(tier), LONGEST_FIRST.index(module) if module in LONGEST_FIRST else
                     len(LONGEST_FIRST)) for module, tier in tier_of.items()}
    items.sort(key=lambda item: rank[item.module.__name__.rsplit(".", 1)[-1]])


TIER_ORDER = ("e2e", "integration", "unit")
# The slowest modules, by their measured time (tests/README.md's durations), longest first.
LONGEST_FIRST = ("test_kfp_launcher", "test_pipeline", "test_container_entrypoint", "test_pipeline_faults",
                 "test_custom_job", "test_strategies", "test_task_library", "test_components_train_push")


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


# Module fixtures several test modules use (no test module imports another: test_suite_layout).
# Each stays module-scoped, as it was in the module that defined it: every module that asks gets
# its own, built from scratch.

@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Real articles, plus two training questions whose answers cannot be used, through
    SquadExampleGen (test_components_data, test_dataflow)."""
    from tests import data_helpers

    return data_helpers.make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    """Windowed training features of a few real articles, for a tiny encoder
    (test_components_train_push, test_trainer_faults; test_custom_job has its own)."""
    from tests import train_push_helpers

    return train_push_helpers.make_features(tmp_path_factory.mktemp("train"))


@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory):
    """A real QA .tflite with Task Library metadata (tiny: an embedding and a dense layer), and
    the same model without metadata (test_cli_errors, test_settings_refused)."""
    from tests import cli_helpers

    return cli_helpers.make_tiny_tflite(tmp_path_factory.mktemp("tflite"))
