"""kill -9 inside a running pipeline (FeatureWindowing, mid-write): MLMD keeps the failed
execution, its half-written output is never consumed, and the re-run completes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from bert_qa_pipeline.pipeline import runner
from tests import fixtures
from tests.pipeline_helpers import make_setup, mlmd_artifact, node_states, pipeline_config

_KILLED_RUN = textwrap.dedent("""
    import json, os, signal, sys
    from bert_qa import _env
    from bert_qa_pipeline.components.feature_windowing import executor as windowing
    from bert_qa_pipeline.pipeline import config as config_lib, runner

    original = windowing.write_shard

    def write_shard(element, directory, plan):
        written = list(original(element, directory, plan))  # one shard on disk, the others not
        os.kill(os.getpid(), signal.SIGKILL)

    windowing.write_shard = write_shard
    runner.run(config_lib.load_config(None, [json.load(open(sys.argv[1]))]))
""")


def test_windowing_killed_mid_write_is_recorded_and_never_consumed(tmp_path):
    import ml_metadata as mlmd
    from ml_metadata.proto import metadata_store_pb2

    setup = make_setup(tmp_path)
    config = pipeline_config(setup, export={"variants": ["dynamic"]}, evaluation={"evaluate_untrained": False})
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))
    (tmp_path / "child.py").write_text(_KILLED_RUN)
    child = subprocess.run([sys.executable, str(tmp_path / "child.py"), str(tmp_path / "config.json")],
                           capture_output=True, text=True, timeout=600,
                           env=dict(os.environ, PYTHONPATH=fixtures.REPO_ROOT))
    assert child.returncode == -9, child.stderr[-3000:]
    assert "FeatureWindowing: windowing splits" in child.stderr and "QaTrainer:" not in child.stderr

    store = mlmd.MetadataStore(runner.metadata_config(config.metadata_path))
    context = store.get_context_by_type_and_name("node", f"{config.name}.FeatureWindowing")
    [killed] = store.get_executions_by_context(context.id)
    assert killed.last_known_state == metadata_store_pb2.Execution.RUNNING  # recorded, never completed
    # Its output was never published: MLMD holds no output artifact of it, only the directory
    # it was writing into holds the shard written before the kill.
    assert not [e for e in store.get_events_by_execution_ids([killed.id])
                if e.type == metadata_store_pb2.Event.OUTPUT]
    half_written = os.path.join(config.pipeline_root, "FeatureWindowing", "features", str(killed.id))
    written = [f for _, _, files in os.walk(half_written) for f in files]
    assert written  # something was on disk when it died

    rerun = runner.run(config)  # the lock died with the killed run: no stale lock to remove
    states = node_states(rerun)
    assert states["FeatureWindowing"] == "COMPLETE" and states["TflitePusher"] == "COMPLETE", rerun.format()
    features = mlmd_artifact(config, "FeatureWindowing", "features")
    assert not features.uri.startswith(half_written)
    trainer_context = store.get_context_by_type_and_name("node", f"{config.name}.QaTrainer")
    [trained] = store.get_executions_by_context(trainer_context.id)
    consumed = {e.artifact_id for e in store.get_events_by_execution_ids([trained.id])
                if e.type == metadata_store_pb2.Event.INPUT}
    assert features.id in consumed  # the re-run's complete features, nothing else
