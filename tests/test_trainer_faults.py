"""kill -9 during training, at several points; the re-run resumes to the uninterrupted model.

Each case trains in a child process that SIGKILLs itself at one point of epoch 2 of 3:
after the epoch's callbacks finished, while BackupAndRestore was writing its checkpoint (the
data files written, the checkpoint index not yet updated), and while ``progress.json`` was
being written (its temporary half written). The re-run, a new execution with the same inputs
and parameters, must then finish, report where it resumed, and end with the same weights as a
run that was never interrupted. Dropout is off in this encoder: its random masks are drawn
by stateful TF kernels whose position is not checkpointable, so with dropout on a resumed run
draws other masks (README, "Reliability"); the weights, optimizer state and the order of the
training batches are what resume restores, and what this checks.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import standard_artifacts
from tfx.utils import json_utils

from bert_qa_pipeline.components import artifacts
from bert_qa_pipeline.components.qa_trainer import executor as trainer_executor
from tests import fixtures

EPOCHS = 3

_CHILD = textwrap.dedent("""
    import json, os, signal, sys
    from bert_qa import _env
    import tensorflow as tf
    import tf_keras
    from tfx.utils import json_utils
    from bert_qa import spec as spec_module
    from bert_qa_pipeline.components import artifacts
    from bert_qa_pipeline.components.qa_trainer import executor

    import logging  # the executor reports through logging; a task's entrypoint logs INFO to stderr
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s", force=True)

    args = json.load(open(sys.argv[1]))
    point, epoch_to_die = args["kill_at"], 2
    state = {"epoch": 0}

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    class Epochs(tf_keras.callbacks.Callback):  # first in the list: knows the epoch early
        def on_epoch_begin(self, epoch, logs=None):
            state["epoch"] = epoch + 1

        def on_epoch_end(self, epoch, logs=None):
            pass

    class KillAfterEpoch(tf_keras.callbacks.Callback):  # last: every other callback has run
        def on_epoch_end(self, epoch, logs=None):
            if point == "after_epoch" and epoch + 1 == epoch_to_die:
                die()

    original_callbacks = spec_module.BertQaSpec._training_callbacks
    spec_module.BertQaSpec._training_callbacks = (
        lambda self: [Epochs()] + original_callbacks(self) + [KillAfterEpoch()])

    if point == "backup_write":
        original_save = tf.train.CheckpointManager.save

        def save(self, *a, **k):
            if state["epoch"] == epoch_to_die and self.directory.rstrip("/").endswith("chief"):
                self._checkpoint.write(os.path.join(self.directory, "ckpt-partial"))  # data, no index
                die()
            return original_save(self, *a, **k)
        tf.train.CheckpointManager.save = save

    if point == "progress_write":
        original_write = artifacts.write_json

        def write_json(path, value):
            if path.endswith("progress.json") and len(value.get("history", [])) == epoch_to_die:
                text = json.dumps(value)
                with open(path + ".tmp-killed", "w") as f:
                    f.write(text[: len(text) // 2])
                die()
            return original_write(path, value)
        artifacts.write_json = write_json

    inputs = {k: json_utils.loads(v) for k, v in args["inputs"].items()}
    outputs = {k: json_utils.loads(v) for k, v in args["outputs"].items()}
    executor.Executor().Do(inputs, outputs, args["properties"])
""")


def _properties(encoder: str, checkpoint_root: str) -> dict:
    return {"spec": "BertQaSpec", "spec_args": json.dumps({"uri": encoder, "distribution_strategy": "off"}),
            "epochs": EPOCHS, "batch_size": 8, "steps_per_epoch": 0, "shuffle": 1, "seed": 7,
            "train_split": "train", "checkpoint_root": checkpoint_root}


def _outputs(root, name):
    model, model_run = standard_artifacts.Model(), standard_artifacts.ModelRun()
    model.uri, model_run.uri = str(root / name / "model"), str(root / name / "model_run")
    return model, model_run


def _train(features_artifact, properties, root, name):
    model, model_run = _outputs(root, name)
    trainer_executor.Executor().Do({"features": [features_artifact]}, {"model": [model], "model_run": [model_run]},
                                   properties)
    return model, model_run


def _final_weights(model_run) -> dict:
    return fixtures.checkpoint_tensors(os.path.join(model_run.uri, "checkpoints", f"epoch-{EPOCHS:03d}"),
                                       weights_only=True)


@pytest.fixture(scope="module")
def no_dropout(features, tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    encoder = fixtures.make_tiny_tf2_encoder(str(root / "encoder"), hidden_dropout_prob=0.0,
                                             attention_probs_dropout_prob=0.0)
    reference = _train(features["features"], _properties(encoder, str(root / "resume_reference")), root,
                       "uninterrupted")
    return encoder, _final_weights(reference[1])


@pytest.mark.parametrize("kill_at", ["after_epoch", "backup_write", "progress_write"])
def test_killed_training_resumes_to_the_uninterrupted_model(features, no_dropout, kill_at, tmp_path):
    encoder, reference = no_dropout
    properties = _properties(encoder, str(tmp_path / "resume"))
    killed_model, killed_run = _outputs(tmp_path, "killed")
    script, args = tmp_path / "child.py", tmp_path / "args.json"
    script.write_text(_CHILD)
    args.write_text(json.dumps({
        "kill_at": kill_at, "properties": properties,
        "inputs": {"features": json_utils.dumps([features["features"]])},
        "outputs": {"model": json_utils.dumps([killed_model]), "model_run": json_utils.dumps([killed_run])}}))
    child = subprocess.run([sys.executable, str(script), str(args)], capture_output=True, text=True,
                           timeout=300, env=dict(os.environ, PYTHONPATH=fixtures.REPO_ROOT))
    assert child.returncode == -9, child.stderr[-3000:]
    assert "epoch 2/3 step" in child.stderr and "epoch 3/3" not in child.stderr
    assert not os.path.exists(os.path.join(killed_model.uri, "Format-Serving"))  # nothing half-made published

    model, model_run = _train(features["features"], properties, tmp_path, "rerun")
    summary = artifacts.read_json(os.path.join(model_run.uri, artifacts.TRAINING_SUMMARY_FILE))
    # Where it resumed: after epoch 2 when that epoch's backup was whole, else after epoch 1
    # (QaTrainer's progress log runs before BackupAndRestore, so a kill there loses the backup too).
    assert summary["first_epoch_run"] == {"after_epoch": 3, "backup_write": 2, "progress_write": 2}[kill_at]
    assert [h["epoch"] for h in summary["history"]] == [1, 2, 3]
    weights = _final_weights(model_run)
    assert weights.keys() == reference.keys() and len(weights) > 10
    # Bit for bit (as the README says): every weight exactly equal. (8.4e-5 apart when the resumed
    # run re-read epoch 1's batches.)
    differ = {k: float(np.max(np.abs(weights[k].astype(np.float64) - reference[k].astype(np.float64))))
              for k in sorted(weights) if not np.array_equal(weights[k], reference[k])}
    assert all(weights[k].dtype == reference[k].dtype for k in weights)
    assert not differ, (f"{len(differ)} of {len(weights)} resumed weights differ from the uninterrupted "
                        f"run (max |difference| each): {differ}")
    assert not os.listdir(str(tmp_path / "resume"))  # resume state dropped after success
