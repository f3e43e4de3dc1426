"""QaTrainer resume after a kill, the blessing rules, and TflitePusher's versioned atomic push."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap

import pytest

from tests import fixtures
from tests.train_push_helpers import DOC_STRIDE, QUERY_LEN, SEQ_LEN, fake_blessing, fake_export, push
from bert_qa import _env  # noqa: F401
import tensorflow as tf
from tfx.types import standard_artifacts
from tfx.utils import json_utils

from bert_qa_pipeline.components import artifacts
from bert_qa_pipeline.components.qa_evaluator.blessing import Thresholds, decide
from bert_qa_pipeline.components.qa_trainer import executor as trainer_executor
from bert_qa_pipeline.components.tflite_pusher import executor as pusher_executor

# `features` (windowed training features of a few real articles, for a tiny encoder) is a module
# fixture of tests/conftest.py: test_trainer_faults.py trains on it too.


def _trainer_properties(encoder: str, checkpoint_root: str, epochs: int) -> dict:
    spec_args = {"uri": encoder, "distribution_strategy": "off"}  # windowing: from the features
    return {"spec": "BertQaSpec", "spec_args": json.dumps(spec_args), "epochs": epochs, "batch_size": 8,
            "steps_per_epoch": 0, "shuffle": 1, "seed": 7, "train_split": "train",
            "checkpoint_root": checkpoint_root}


def _outputs(root, name):
    model, model_run = standard_artifacts.Model(), standard_artifacts.ModelRun()
    model.uri, model_run.uri = str(root / name / "model"), str(root / name / "model_run")
    return model, model_run


# The child process trains with one more callback, appended after the spec's own (so after
# BackupAndRestore and ModelCheckpoint have saved the epoch): it SIGKILLs its own process.
_KILLED_TRAINER = textwrap.dedent("""
    import json, os, signal, sys
    from bert_qa import _env
    import tf_keras
    from tfx.utils import json_utils
    from bert_qa import spec as spec_module
    from bert_qa_pipeline.components.qa_trainer import executor
    from bert_qa_pipeline.pipeline import runner

    args = json.load(open(sys.argv[1]))

    class KillAfterEpoch(tf_keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == args["kill_after_epoch"]:
                os.kill(os.getpid(), signal.SIGKILL)

    original = spec_module.BertQaSpec._training_callbacks
    spec_module.BertQaSpec._training_callbacks = lambda self: original(self) + [KillAfterEpoch()]
    inputs = {k: json_utils.loads(v) for k, v in args["inputs"].items()}
    outputs = {k: json_utils.loads(v) for k, v in args["outputs"].items()}
    with runner.progress_on_stderr():  # the trainer's progress lines, as a local run shows them
        executor.Executor().Do(inputs, outputs, args["properties"])
""")


def test_trainer_resumes_after_kill(features, tmp_path):
    properties = _trainer_properties(features["encoder"], str(tmp_path / "resume"), epochs=3)
    killed_model, killed_run = _outputs(tmp_path, "killed")
    script = tmp_path / "killed_trainer.py"
    script.write_text(_KILLED_TRAINER)
    args = tmp_path / "args.json"
    args.write_text(json.dumps({
        "kill_after_epoch": 2, "properties": properties,
        "inputs": {"features": json_utils.dumps([features["features"]])},
        "outputs": {"model": json_utils.dumps([killed_model]), "model_run": json_utils.dumps([killed_run])}}))
    env = dict(os.environ, PYTHONPATH=fixtures.REPO_ROOT)
    child = subprocess.run([sys.executable, str(script), str(args)], env=env, capture_output=True,
                           text=True, timeout=300)
    assert child.returncode == -9, child.stderr[-3000:]  # SIGKILL, not a clean exit
    assert "epoch 2/3 step" in child.stderr and "epoch 3/3" not in child.stderr
    assert not os.path.exists(os.path.join(killed_model.uri, "Format-Serving"))

    # The re-run (a new execution with new output URIs, same inputs and parameters) resumes.
    model, model_run = _outputs(tmp_path, "rerun")
    trainer_executor.Executor().Do({"features": [features["features"]]},
                                   {"model": [model], "model_run": [model_run]}, properties)
    summary = artifacts.read_json(os.path.join(model_run.uri, "training_summary.json"))
    assert summary["first_epoch_run"] == 3
    assert [h["epoch"] for h in summary["history"]] == [1, 2, 3]
    assert [h["run_started_at_epoch"] for h in summary["history"]] == [1, 1, 3]
    assert model.get_int_custom_property("first_epoch_run") == 3
    assert {"epoch-001.index", "epoch-002.index", "epoch-003.index"} <= set(
        os.listdir(os.path.join(model_run.uri, "checkpoints")))
    assert tf.io.gfile.glob(os.path.join(model_run.uri, "tensorboard", "train", "events.out.tfevents.*"))
    assert not os.listdir(str(tmp_path / "resume"))  # resume state dropped after success
    # Accounting and the serving model.
    f = features["features"]
    assert model.get_int_custom_property("num_questions_trained_on") == f.get_int_custom_property("num_examples_train")
    assert model.get_int_custom_property("num_features") == f.get_int_custom_property("num_features_train")
    loaded = tf.saved_model.load(os.path.join(model.uri, "Format-Serving"))
    ones = tf.ones([2, SEQ_LEN], tf.int32)
    out = loaded.signatures["serving_default"](input_word_ids=ones, input_mask=ones, input_type_ids=ones * 0)
    assert out["start_logits"].shape == (2, SEQ_LEN) and out["end_logits"].shape == (2, SEQ_LEN)
    # The library's record travels inside the SavedModel: windowing from the features, the spec.
    from bert_qa.export import saved_model_info, spec_of_saved_model

    info = saved_model_info(os.path.join(model.uri, "Format-Serving"))
    assert (info["seq_len"], info["query_len"], info["doc_stride"], info["do_lower_case"]) == (
        SEQ_LEN, QUERY_LEN, DOC_STRIDE, True)
    assert info["spec"] == "BertQaSpec" and info["args"]["uri"] == features["encoder"]
    assert open(info["vocab_file"]).read() == open(os.path.join(f.uri, "vocab.txt")).read()
    rebuilt = spec_of_saved_model(os.path.join(model.uri, "Format-Serving"))
    assert (rebuilt.seq_len, rebuilt.query_len, rebuilt.doc_stride) == (SEQ_LEN, QUERY_LEN, DOC_STRIDE)
    assert not os.path.exists(os.path.join(model.uri, "spec.json"))

    # So `bertqa export` needs only the pipeline's model directory (no --vocab, no windowing).
    from bert_qa_cli.main import main as cli
    from bert_qa.export import read_metadata

    exported = tmp_path / "cli_export"
    assert cli(["export", "--saved-model", os.path.join(model.uri, "Format-Serving"),
                "--output-dir", str(exported), "--quantization", "dynamic,dynamic_unsplit"]) == 0
    meta = read_metadata(str(exported / "model_dynamic.tflite"))
    assert (meta.options["query_len"], meta.options["doc_stride"]) == (QUERY_LEN, DOC_STRIDE)
    assert meta.vocab_bytes == open(info["vocab_file"], "rb").read()
    # The outlier split can be turned off from the command line: its file says so.
    assert read_metadata(str(exported / "model_dynamic_unsplit.tflite")).options["quantization"] == "dynamic_unsplit"
    assert meta.options["quantization"] == "dynamic"


def test_trainer_refuses_windowing_in_spec_args(features, tmp_path):
    properties = _trainer_properties(features["encoder"], str(tmp_path / "resume"), epochs=1)
    properties["spec_args"] = json.dumps({"uri": features["encoder"], "seq_len": 128})
    model, model_run = _outputs(tmp_path, "refused")
    with pytest.raises(ValueError, match=r"\['seq_len'\]: windowing parameters travel with the features"):
        trainer_executor.Executor().Do({"features": [features["features"]]},
                                       {"model": [model], "model_run": [model_run]}, properties)


def test_blessing_rules():
    t = Thresholds(min_exact_match=20, min_f1=30, max_f1_drop_vs_baseline=1.0, max_quantized_f1_drop=2.0)
    good = {"saved_model": {"exact_match": 25.0, "f1": 40.0}, "dynamic": {"exact_match": 24.0, "f1": 38.5}}
    assert all(c.passed for c in decide(good, "saved_model", "dynamic", None, t))
    assert all(c.passed for c in decide(good, "saved_model", "dynamic", 40.9, t))

    def failed(metrics, baseline):
        return [c.name for c in decide(metrics, "saved_model", "dynamic", baseline, t) if not c.passed]

    assert failed(good, 41.5) == ["f1 vs latest blessed model"]
    assert failed({**good, "saved_model": {"exact_match": 19.0, "f1": 40.0}}, None) == ["exact_match >= minimum"]
    assert failed({**good, "saved_model": {"exact_match": 25.0, "f1": 29.0},
                   "dynamic": {"exact_match": 25.0, "f1": 29.0}}, None) == ["f1 >= minimum"]
    assert failed({**good, "dynamic": {"exact_match": 20.0, "f1": 37.9}}, None) == ["quantized f1 vs float"]
    assert failed({"saved_model": good["saved_model"]}, None) == ["quantized f1 vs float"]  # not evaluated
    # Training must beat the same architecture randomly initialised by the configured margin.
    t_gain = Thresholds(min_f1_gain_over_untrained=5.0)
    checks = decide(good, "saved_model", None, None, t_gain, untrained_f1=34.0)
    assert [c.name for c in checks if not c.passed] == []
    checks = decide(good, "saved_model", None, None, t_gain, untrained_f1=36.0)
    assert [c.name for c in checks if not c.passed] == ["f1 vs untrained model"]


def test_pusher_versions_refusal_and_no_overwrite(tmp_path, monkeypatch):
    destination = str(tmp_path / "dest")
    first = push(fake_export(tmp_path, "m1", b"model-one"), fake_blessing(tmp_path, "b1", True),
                 destination, tmp_path, "p1")
    assert first.get_int_custom_property("pushed") == 1
    assert first.get_string_custom_property("pushed_version") == "1"
    assert open(os.path.join(destination, "1", "model.tflite"), "rb").read() == b"model-one"
    manifest = json.load(open(os.path.join(destination, "1", "manifest.json")))
    assert manifest["version"] == 1 and manifest["files"] == ["model.tflite", "vocab.txt"]

    # Not blessed: nothing is pushed.
    refused = push(fake_export(tmp_path, "m2", b"model-two"), fake_blessing(tmp_path, "b2", False),
                   destination, tmp_path, "p2")
    assert refused.get_int_custom_property("pushed") == 0
    assert os.listdir(destination) == ["1"]

    # The same bytes again: no duplicate version.
    again = push(fake_export(tmp_path, "m1b", b"model-one"), fake_blessing(tmp_path, "b1b", True),
                 destination, tmp_path, "p1b")
    assert again.get_string_custom_property("pushed_version") == "1"
    assert again.get_int_custom_property("already_pushed") == 1

    # A concurrent pusher published version 2 after we listed the versions: we must not
    # overwrite it, and take version 3 instead.
    listed = pusher_executor.existing_versions

    def stale_then_real(dest, calls=[]):
        calls.append(1)
        if len(calls) == 2:  # the first look inside publish() sees the stale list
            os.makedirs(os.path.join(dest, "2"))
            with open(os.path.join(dest, "2", "model.tflite"), "wb") as f:
                f.write(b"someone-else")
            return [1]
        return listed(dest)

    monkeypatch.setattr(pusher_executor, "existing_versions", stale_then_real)
    third = push(fake_export(tmp_path, "m3", b"model-three"), fake_blessing(tmp_path, "b3", True),
                 destination, tmp_path, "p3")
    monkeypatch.undo()
    assert third.get_string_custom_property("pushed_version") == "3"
    assert open(os.path.join(destination, "2", "model.tflite"), "rb").read() == b"someone-else"
    assert open(os.path.join(destination, "3", "model.tflite"), "rb").read() == b"model-three"
    assert sorted(os.listdir(destination)) == ["1", "2", "3"]  # no staging directory left


def test_pusher_failure_leaves_no_partial_version(tmp_path, monkeypatch):
    destination = str(tmp_path / "dest")
    real_copy = tf.io.gfile.copy
    copies = []

    def failing_copy(src, dst, overwrite=False):
        copies.append(dst)
        if len(copies) == 2:
            raise OSError("disk full (simulated)")
        return real_copy(src, dst, overwrite)

    monkeypatch.setattr(tf.io.gfile, "copy", failing_copy)
    with pytest.raises(OSError, match="simulated"):
        push(fake_export(tmp_path, "m", b"model"), fake_blessing(tmp_path, "b", True), destination, tmp_path, "p")
    monkeypatch.undo()
    assert os.path.dirname(copies[0]).startswith(os.path.join(destination, ".staging-"))
    assert os.listdir(destination) == []  # neither a version nor the staging directory


def test_a_truncated_progress_file_does_not_block_resume(tmp_path, caplog):
    """progress.json is written whole or not at all; one truncated by other means is not fatal."""
    state = tmp_path / "state"
    state.mkdir()
    artifacts.write_json(str(state / "progress.json"), {"history": [{"epoch": 1}]})
    assert [p.name for p in state.iterdir()] == ["progress.json"]  # no staging file left behind
    assert trainer_executor.ProgressLogger(10, 3, str(state)).history == [{"epoch": 1}]
    (state / "progress.json").write_text('{"history": [{"epo')  # as a kill mid-write used to leave it
    assert trainer_executor.ProgressLogger(10, 3, str(state)).history == []
    assert "is unreadable" in caplog.text


def test_secret_beam_options_are_hidden_in_logs():
    from bert_qa_pipeline.components.feature_windowing.executor import redacted

    assert redacted(["--runner=DataflowRunner", "--s3_secret_access_key=abc", "--hdfs_password", "pw",
                     "--project=p"]) == ["--runner=DataflowRunner", "--s3_secret_access_key=***",
                                         "--hdfs_password", "***", "--project=p"]


def test_one_device_warns_that_resume_is_off(caplog):
    import logging

    from bert_qa import BertQaSpec

    spec = BertQaSpec(uri="/unused", distribution_strategy="one_device")
    with caplog.at_level(logging.WARNING, logger="bert_qa.spec"):
        callbacks = spec._training_callbacks()
    assert "cannot resume" in caplog.text
    assert not any(type(c).__name__ == "BackupAndRestore" for c in callbacks)


def test_blessing_ids_are_what_tfx_v2_entrypoint_can_rename():
    """TFX's V2 entrypoint renames every recorded model id to a runtime artifact name; a
    published-file baseline (no MLMD id) must not record one, or the entrypoint fails."""
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as v2

    model = standard_artifacts.Model()
    model.uri, model.id = "/m", 11
    names = {11: "projects/p/locations/l/metadataStores/default/artifacts/m"}
    for baseline_id, recorded in ((None, False), (12, True)):
        blessing = standard_artifacts.ModelBlessing()
        blessing.uri = tempfile.mkdtemp()
        artifacts.write_blessing(blessing, True, model, {})
        artifacts.set_blessing_baseline(blessing, "/pushed/1", baseline_id)
        assert blessing.has_custom_property("baseline_model_id") is recorded
        if recorded:
            names[12] = "projects/p/locations/l/metadataStores/default/artifacts/b"
        v2.refactor_model_blessing(blessing, names)  # what the container entrypoint does
        assert blessing.get_string_custom_property("current_model_id") == names[11]
