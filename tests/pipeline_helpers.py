"""A whole pipeline's set-up and configuration, and what its runs recorded (ML Metadata).

Shared by tests/test_pipeline.py and the modules that run or compile the same small pipeline
elsewhere (test_pipeline_faults, test_kfp_launcher, test_container_entrypoint, test_dataflow).
Not a test module: importing it builds nothing.
"""
from __future__ import annotations

import json
import os

from tests import fixtures
from bert_qa import _env  # noqa: F401

from bert_qa_pipeline.pipeline import config as config_lib
from bert_qa_pipeline.pipeline import runner


def _subset(src: str, dst: str, articles: int, paragraphs: int) -> str:
    with open(src, encoding="utf-8") as f:
        data = json.load(f)["data"][:articles]
    return fixtures.write_squad(dst, [{"title": a["title"], "paragraphs": a["paragraphs"][:paragraphs]}
                                      for a in data])


def make_setup(root) -> dict:
    """A few dozen real questions (train and eval subsets) and a tiny encoder under ``root``."""
    data_dir = os.path.join(fixtures.REPO_ROOT, "data")
    train = _subset(os.path.join(data_dir, "new_wiki_train.json"), str(root / "train.json"), 2, 3)
    evaluation = _subset(os.path.join(data_dir, "new_wiki_eval.json"), str(root / "eval.json"), 2, 2)
    encoder = fixtures.make_tiny_tf2_encoder(str(root / "encoder"))
    return {"root": root, "train": train, "eval": evaluation, "encoder": encoder}


def pipeline_config(setup, **sections) -> config_lib.PipelineConfig:
    """The small pipeline's configuration on ``setup`` (make_setup's), each keyword a section's
    changes (merged into the section, not replacing it)."""
    values = {
        "output": str(setup["root"] / "out"),
        "data": {"train": [setup["train"]], "eval": [setup["eval"]]},
        "model": {"encoder": setup["encoder"], "seq_len": 64, "query_len": 16, "doc_stride": 32,
                  "predict_batch_size": 8},
        "train": {"epochs": 1, "batch_size": 8},
        "export": {"variants": ["float32", "dynamic"]},
        "evaluation": {"min_exact_match": 0.0, "min_f1": 0.0, "max_quantized_f1_drop": 100.0,
                       "max_f1_drop_vs_baseline": 100.0, "min_f1_gain_over_untrained": -100.0},
    }
    for section, update in sections.items():
        values[section] = {**values.get(section, {}), **update}
    return config_lib.load_config(None, [values])


def node_states(summary):
    """Each node's state in a run's summary (runner.run's)."""
    return {n.node: n.state for n in summary.nodes}


def mlmd_artifact(config, node: str, key: str):
    """The newest output artifact ``key`` of ``node``, from MLMD, as a TFX artifact."""
    import ml_metadata as mlmd
    from ml_metadata.proto import metadata_store_pb2
    from tfx.types import artifact_utils

    store = mlmd.MetadataStore(runner.metadata_config(config.metadata_path))
    context = store.get_context_by_type_and_name("node", f"{config.name}.{node}")
    executions = sorted(store.get_executions_by_context(context.id), key=lambda e: e.id)
    events = [e for e in store.get_events_by_execution_ids([executions[-1].id])
              if e.type == metadata_store_pb2.Event.OUTPUT and e.path.steps[0].key == key]
    [artifact] = store.get_artifacts_by_id([events[0].artifact_id])
    [artifact_type] = store.get_artifact_types_by_id([artifact.type_id])
    return artifact_utils.deserialize_artifact(artifact_type, artifact)


def cluster_paths(config):
    """Locations a cluster's task can read (compile refuses this machine's paths): data shipped in
    this repository (the image holds it) and on Cloud Storage, and the encoder on Cloud Storage."""
    config.data.train = [os.path.join(fixtures.REPO_ROOT, "data", "new_wiki_train.json")]
    config.data.eval = ["gs://bucket/data/eval.json"]
    config.model.encoder = "gs://bucket/encoder"
    return config
