"""Runs the pipeline locally: LocalDagRunner, MLMD in sqlite under the output dir, caching on.

After the run, MLMD is read back for what happened: per-component state (COMPLETE or
CACHED) and wall time, where the model was pushed, and the evaluation report.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import time
from typing import Dict, List, Optional

from bert_qa import _env  # noqa: F401
from bert_qa import locks
from bert_qa_pipeline.pipeline.config import PipelineConfig


@dataclasses.dataclass
class NodeRun:
    node: str
    state: str
    seconds: float


@dataclasses.dataclass
class RunSummary:
    output_dir: str
    run_id: str
    seconds: float
    nodes: List[NodeRun]
    scores: Dict[str, float]
    blessed: Optional[bool]
    pushed: Optional[str]
    report: Optional[str]

    def format(self) -> str:
        lines = [f"Pipeline run {self.run_id} finished in {self.seconds:.0f} s; everything is under "
                 f"{self.output_dir}", "", f"{'component':<32} {'state':<10} {'seconds':>8}"]
        lines += [f"{n.node:<32} {n.state:<10} {n.seconds:>8.1f}" for n in self.nodes]
        if self.scores:
            lines += ["", "Evaluation (official SQuAD, %): " + ", ".join(
                f"{k} {v:.2f}" for k, v in sorted(self.scores.items()))]
        if self.blessed is not None:
            lines.append(f"Blessed: {'yes' if self.blessed else 'no'}")
        lines.append(f"Report: {self.report or '(none)'}")
        lines.append(f"Pushed model: {self.pushed or '(not pushed: model not blessed)'}")
        return "\n".join(lines)


RUN_LOCK_FILE = ".bertqa-run.lock"
# The components report through these loggers (logging; absl's handler shows them in a
# cluster's task logs, where TFX's entrypoints run at INFO).
PROGRESS_LOGGER = "bert_qa_pipeline.components"


@contextlib.contextmanager
def progress_on_stderr():
    """The components' records (INFO and up) on stderr while a local run lasts, one message a
    line as the executors printed them: what ``bertqa run`` shows between its own lines. Not
    propagated meanwhile, so a root handler does not show them twice."""
    logger = logging.getLogger(PROGRESS_LOGGER)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def metadata_config(path: str):
    from tfx.orchestration import metadata  # lazy: TFX (seconds); importing the runner stays cheap

    os.makedirs(os.path.dirname(path), exist_ok=True)
    return metadata.sqlite_metadata_connection_config(path)


def run(config: PipelineConfig) -> RunSummary:
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner  # lazy: TFX (seconds)

    from bert_qa_pipeline.pipeline.pipeline import create_pipeline  # lazy: TFX

    os.makedirs(config.output_dir, exist_ok=True)
    # One run per output directory: two would share the MLMD sqlite file and the trainer's
    # resume state, which the first to finish deletes under the other.
    with locks.exclusive(os.path.join(config.output_dir, RUN_LOCK_FILE), f"output directory {config.output_dir}"):
        start = time.time()
        tfx_pipeline = create_pipeline(config, metadata_connection_config=metadata_config(config.metadata_path))
        print(f"bertqa run: pipeline {config.name!r} under {config.output_dir} (encoder {config.encoder_uri})",
              file=sys.stderr, flush=True)
        with progress_on_stderr():
            LocalDagRunner().run(tfx_pipeline)
        return summarize(config, time.time() - start)


def summarize(config: PipelineConfig, seconds: float) -> RunSummary:
    """What the latest run did, read from MLMD."""
    import ml_metadata as mlmd  # lazy: TFX's metadata store, read after a run
    from ml_metadata.proto import metadata_store_pb2  # lazy: TFX's metadata store

    store = mlmd.MetadataStore(metadata_config(config.metadata_path))
    runs = store.get_contexts_by_type("pipeline_run")
    if not runs:
        raise RuntimeError(f"no pipeline run recorded in {config.metadata_path}")
    latest = max(runs, key=lambda c: c.create_time_since_epoch)
    state_names = {v: k for k, v in metadata_store_pb2.Execution.State.items()}
    nodes: List[NodeRun] = []
    outputs: Dict[str, list] = {}
    for execution in sorted(store.get_executions_by_context(latest.id), key=lambda e: e.create_time_since_epoch):
        node_contexts = [c for c in store.get_contexts_by_execution(execution.id)
                         if c.type == "node" or store.get_context_types_by_id([c.type_id])[0].name == "node"]
        node = node_contexts[0].name.split(".", 1)[-1] if node_contexts else str(execution.id)
        nodes.append(NodeRun(node, state_names.get(execution.last_known_state, "?"),
                             (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000))
        events = store.get_events_by_execution_ids([execution.id])
        out_ids = [e.artifact_id for e in events if e.type == metadata_store_pb2.Event.OUTPUT]
        outputs[node] = store.get_artifacts_by_id(out_ids) if out_ids else []

    scores, blessed, pushed, report = {}, None, None, None
    for artifact in outputs.get("QaEvaluator", []):
        props = artifact.custom_properties
        if "report" in props:
            report = props["report"].string_value
        for key, value in props.items():
            if key.startswith(("f1_", "exact_match_")):
                scores[key] = value.double_value
        if "blessed" in props:
            blessed = bool(props["blessed"].int_value)
    for artifact in outputs.get("TflitePusher", []):
        props = artifact.custom_properties
        if props.get("pushed") and props["pushed"].int_value == 1:
            pushed = props["pushed_destination"].string_value
    return RunSummary(config.output_dir, latest.name, seconds, nodes, scores, blessed, pushed, report)
