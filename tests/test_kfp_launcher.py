"""The compiled Kubeflow pipeline runs under KFP 2.x's own driver and launcher rules.

``tests/kfp_launcher.py`` plays KFP's driver and launcher, each rule ported from the Go sources
with file:line references. Here the pipeline compiled by ``bertqa compile --target kfp`` runs
task after task, each in a fresh process and a fresh "pod", on a ``minio://`` pipeline root (a
directory standing for the bucket, reached only through the launcher's downloads and uploads),
with the default encoder (packaged all-MiniLM-L6-v2), from SQuAD files to a .tflite published on
a real S3 API server (moto, on 127.0.0.1).

The second half shows that the emulation fails where KFP would: TFX's own V2 entrypoint, which
the compiled YAML named before, fails every task in the three ways tensorflow/tfx#7768 and the
launcher's sources predict.
"""
from __future__ import annotations

import hashlib
import json
import os

import pytest
import yaml

from tests import fixtures
from tests.kfp_launcher import EXECUTOR_LOGS, Launcher, LauncherFailure
from tests.pipeline_helpers import make_setup, pipeline_config

ORDER = ["SquadExampleGen", "FeatureWindowing", "QaTrainer", "TfliteExport", "QaEvaluator",
         "TflitePusher"]
PIPELINE_ROOT = "minio://mlpipeline/v2/artifacts"
BUCKET = "models"
PUSH_DESTINATION = f"s3://{BUCKET}/bert-qa"
TFX_COMMAND = ["python", "-m", "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    from bert_qa_pipeline.kubeflow.compile import compile_pipeline

    root = tmp_path_factory.mktemp("kfp")
    setup = make_setup(root)
    config = pipeline_config(setup, export={"variants": ["dynamic"]}, model={"encoder": ""},
                             train={"epochs": 2, "batch_size": 8})
    # check_root=False: the data files are on this machine, which plays the cluster.
    path = compile_pipeline(config, str(root / "pipeline.yaml"), PIPELINE_ROOT, "example.com/bert-qa:test",
                            target="kfp", push_destination=PUSH_DESTINATION, check_root=False)
    spec = list(yaml.safe_load_all(open(path)))[0]
    return spec, root


def _launcher(compiled, s3_server, name: str, **kwargs) -> Launcher:
    spec, root = compiled
    return Launcher(spec, spec["defaultPipelineRoot"], str(root / name), env=s3_server.env,
                    repo_root=fixtures.REPO_ROOT, parameters={"epochs": 1}, **kwargs)


@pytest.fixture(scope="module")
def kfp_run(compiled, s3_server):
    s3_server.create_bucket(BUCKET)
    launcher = _launcher(compiled, s3_server, "run")
    produced = {}
    for task in ORDER:
        produced[task] = launcher.run_task(task)
    return launcher, produced


def _metadata(record: dict) -> dict:
    return {k: list(v.values())[0] for k, v in record["custom_properties"].items()}


def test_all_six_tasks_run_under_kfps_driver_and_launcher(kfp_run):
    launcher, produced = kfp_run
    assert list(produced) == ORDER
    for task, outputs in produced.items():
        # Every output, executor-logs included, is recorded at the URI the driver provisioned under
        # the run's root on the object store, never at a pod's local path.
        assert EXECUTOR_LOGS in outputs, task
        for key, record in outputs.items():
            assert record["uri"].startswith(f"{launcher.root}/{task}/") and record["uri"].endswith("/" + key), record
    examples = _metadata(produced["SquadExampleGen"]["examples"])
    assert sorted(json.loads(examples["split_names"])) == ["eval", "train"]
    features = produced["FeatureWindowing"]["features"]
    assert _metadata(features)["num_features_train"] > 0 and _metadata(features)["encoder_uri"] == "default"
    # What the tasks wrote reached the store through the launcher's uploads, and only so.
    assert launcher.read_blob(features["uri"], "vocab.txt").startswith(b"[PAD]")
    model_uri = produced["QaTrainer"]["model"]["uri"]
    assert os.path.exists(os.path.join(launcher.blob_path(model_uri), "Format-Serving", "saved_model.pb"))
    summary = json.loads(launcher.read_blob(produced["QaTrainer"]["model_run"]["uri"], "training_summary.json"))
    assert summary["epochs"] == 1  # the run's parameter, not the compiled default (2)
    assert "model_dynamic.tflite" in os.listdir(launcher.blob_path(produced["TfliteExport"]["tflite_model"]["uri"]))
    blessing = _metadata(produced["QaEvaluator"]["blessing"])
    assert blessing["blessed"] == 1.0
    # The task's log went where KFP's UI links it (the launcher writes it, not the task).
    log = launcher.read_blob(produced["QaTrainer"][EXECUTOR_LOGS]["uri"]).decode()
    assert "Starting executor" in log and log == launcher.logs["QaTrainer"]


def test_the_pusher_publishes_to_s3_versioned_with_the_manifest_last(kfp_run, s3_server):
    launcher, produced = kfp_run
    pushed = _metadata(produced["TflitePusher"]["pushed_model"])
    assert pushed["pushed"] == 1.0 and pushed["pushed_destination"] == f"{PUSH_DESTINATION}/1"
    keys = s3_server.keys(BUCKET, "bert-qa/")
    assert {"bert-qa/1/model.tflite", "bert-qa/1/vocab.txt", "bert-qa/1/manifest.json",
            "bert-qa/1/report.md", "bert-qa/1/scores.json"} <= set(keys)
    manifest = json.loads(s3_server.read(BUCKET, "bert-qa/1/manifest.json"))
    model = s3_server.read(BUCKET, "bert-qa/1/model.tflite")
    assert manifest["sha256"] == hashlib.sha256(model).hexdigest() and manifest["version"] == 1
    exported = launcher.read_blob(produced["TfliteExport"]["tflite_model"]["uri"], "model_dynamic.tflite")
    assert model == exported


def test_latest_published_rescores_the_model_on_s3(kfp_run):
    """A second evaluation takes the newest model on S3 as its baseline and re-scores it: it is
    the pushed .tflite itself, so its scores equal that variant's, to the last digit."""
    launcher, produced = kfp_run
    again = launcher.run_task("QaEvaluator")
    scores = json.loads(launcher.read_blob(again["evaluation"]["uri"], "scores.json"))
    assert scores["baseline"]["uri"] == f"{PUSH_DESTINATION}/1"
    assert scores["baseline"]["f1"] == scores["scores"]["dynamic"]["f1"]
    assert scores["baseline"]["exact_match"] == scores["scores"]["dynamic"]["exact_match"]
    # Pushing the same bytes again publishes no second version.
    repushed = _metadata(launcher.run_task("TflitePusher")["pushed_model"])
    assert repushed["already_pushed"] == 1.0 and repushed["pushed_version"] == "1"


# ---- what KFP does to TFX's own entrypoint (the compiled YAML's command before) -------------------

CASES = {"executor-logs": "system.Artifact",  # driver.go:746-758
         "untyped-input": "'NoneType' object has no attribute 'get'",  # client.go:1144
         "object-store-uri": "File system scheme 'minio' not implemented"}  # TF has no minio file system


def test_tfxs_own_entrypoint_fails_under_kfp(compiled, kfp_run, s3_server):
    """Failures 1-3 of the Kubeflow issue, each as KFP produces it, with the command the compiled
    YAML named before (TFX's own entrypoint). The same tasks pass above with ours. The three
    cases run side by side (each is a process that mostly imports TensorFlow, then fails)."""
    from concurrent.futures import ThreadPoolExecutor

    def run(case):
        launcher = _launcher(compiled, s3_server, f"tfx-{case}", publish_logs=(case == "executor-logs"))
        launcher.mlmd, launcher.store = kfp_run[0].mlmd, kfp_run[0].store  # upstream outputs of the run above
        task = "FeatureWindowing" if case == "untyped-input" else "SquadExampleGen"
        try:
            launcher.run_task(task, command=TFX_COMMAND, args=_tfx_args(launcher.spec, task))
        except LauncherFailure as failure:
            return str(failure)
        return "task succeeded"

    with ThreadPoolExecutor(len(CASES)) as pool:
        failures = dict(zip(CASES, pool.map(run, CASES)))
    for case, expected in CASES.items():
        assert expected in failures[case], (case, failures[case][-3000:])


def _tfx_args(spec: dict, task: str) -> list:
    """The container args as TFX compiled them (ours add the component's outputs spec first)."""
    from bert_qa_pipeline.kubeflow import kfp_task_entrypoint as entrypoint

    label = spec["components"][spec["root"]["dag"]["tasks"][task]["componentRef"]["name"]]["executorLabel"]
    args = list(spec["deploymentSpec"]["executors"][label]["container"]["args"])
    assert args[0] == entrypoint.OUTPUTS_SPEC_FLAG
    return args[2:]
