"""Our KFP task entrypoint, rule by rule, and the locations compile refuses for a cluster.

The whole pipeline through KFP's driver and launcher is tests/test_kfp_launcher.py; here each
rule of ``kubeflow/kfp_task_entrypoint.py`` is held on its own, including what it refuses, and
how: a message and exit 1, never a traceback.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bert_qa_pipeline.kubeflow import kfp_task_entrypoint as entrypoint
from tests import fixtures

EXAMPLES = {"instanceSchema": "title: tfx.Examples\ntype: object\n"}
MODEL = {"instanceSchema": "title: tfx.Model\ntype: object\n"}
INPUTS_SPEC = {"artifacts": {"features": {"artifactType": EXAMPLES}}}
OUTPUTS_SPEC = {"artifacts": {"model": {"artifactType": MODEL}}}
ROOT = "minio://mlpipeline/v2/artifacts/p/run/QaTrainer/uuid"


def _input(**artifact) -> dict:
    """As KFP's driver resolves an upstream artifact (client.go:1144: empty instance schema)."""
    return {"name": "17", "uri": "s3://bucket/p/run/FeatureWindowing/u/features",
            "type": {"instanceSchema": ""}, "metadata": {"num_features_train": 12.0, "display_name": "features"},
            **artifact}


def _executor_input(inputs=None, outputs=None, output_file=f"/minio/{ROOT[8:]}/output_metadata.json") -> dict:
    outputs = outputs if outputs is not None else {
        "model": {"artifacts": [{"name": "model", "uri": f"{ROOT}/model", "type": MODEL}]},
        "executor-logs": {"artifacts": [{"name": "executor-logs", "uri": f"{ROOT}/executor-logs",
                                         "type": {"schemaTitle": "system.Artifact"}}]}}
    return {"inputs": {"parameterValues": {"seq_len": 64},
                       "artifacts": inputs if inputs is not None else {"features": {"artifacts": [_input()]}}},
            "outputs": {"artifacts": outputs, "outputFile": output_file}}


def test_kfp_handover_becomes_tfxs():
    adapted, remote_of = entrypoint.adapt_executor_input(_executor_input(), INPUTS_SPEC, OUTPUTS_SPEC)
    # executor-logs is the launcher's own output (driver.go:746-758): TFX never sees it.
    assert set(adapted["outputs"]["artifacts"]) == {"model"}
    (features,) = adapted["inputs"]["artifacts"]["features"]["artifacts"]
    assert features["type"] == EXAMPLES  # from the compiled spec (tfx#7768)
    assert features["uri"] == "/s3/bucket/p/run/FeatureWindowing/u/features"  # LocalPathForURI
    assert features["name"] == "17" and features["metadata"]["num_features_train"] == 12.0
    (model,) = adapted["outputs"]["artifacts"]["model"]["artifacts"]
    assert model["uri"] == "/minio/mlpipeline/v2/artifacts/p/run/QaTrainer/uuid/model"
    assert remote_of == {features["uri"]: "s3://bucket/p/run/FeatureWindowing/u/features",
                         model["uri"]: f"{ROOT}/model"}
    assert adapted["inputs"]["parameterValues"] == {"seq_len": 64}
    assert adapted["outputs"]["outputFile"] == f"/minio/{ROOT[8:]}/output_metadata.json"


def test_every_mount_and_the_older_output_file():
    for uri, local in (("gs://b/k", "/gcs/b/k"), ("s3://b/k", "/s3/b/k"), ("minio://b/k", "/minio/b/k")):
        assert entrypoint.local_path_for_uri(uri) == local
    # KFP 2.0-2.14 write every task's output metadata to one fixed file (launcher_v2.go:526).
    adapted, _ = entrypoint.adapt_executor_input(
        _executor_input(output_file="/tmp/kfp_outputs/output_metadata.json"), INPUTS_SPEC, OUTPUTS_SPEC)
    assert adapted["outputs"]["outputFile"] == "/tmp/kfp_outputs/output_metadata.json"
    # A mount root stands for "/" in tests that play the pod.
    adapted, _ = entrypoint.adapt_executor_input(_executor_input(), INPUTS_SPEC, OUTPUTS_SPEC, "/pod")
    assert adapted["outputs"]["artifacts"]["model"]["artifacts"][0]["uri"].startswith("/pod/minio/")
    assert adapted["outputs"]["outputFile"].startswith("/pod/minio/")


def test_a_declared_type_or_custom_path_is_kept():
    typed = _input(type=MODEL, customPath="/kfp-workspace/.artifacts/x")
    adapted, remote_of = entrypoint.adapt_executor_input(
        _executor_input(inputs={"features": {"artifacts": [typed]}}), INPUTS_SPEC, OUTPUTS_SPEC)
    (features,) = adapted["inputs"]["artifacts"]["features"]["artifacts"]
    assert features["type"] == MODEL  # a schema that is there is the launcher's word
    assert features["uri"] == "/kfp-workspace/.artifacts/x"  # retrieveArtifactPath: customPath wins


@pytest.mark.parametrize("case, message", [
    ("undeclared untyped input", "input artifact 'other' arrived without a type and the component declares"),
    ("unknown scheme", "KFP's launcher mounts only gs://, s3:// and minio:// URIs"),
    ("missing output", r"no output artifact for \['model'\]"),
    ("no output file", "names no outputs.outputFile"),
    ("no uri", "input artifact 'features' arrived without a URI"),
])
def test_what_cannot_be_mapped_is_refused_with_its_reason(case, message):
    executor_input = {
        "undeclared untyped input": _executor_input(inputs={"other": {"artifacts": [_input()]}}),
        "unknown scheme": _executor_input(inputs={"features": {"artifacts": [_input(uri="hdfs://nn/x")]}}),
        "missing output": _executor_input(outputs={}),
        "no output file": _executor_input(output_file=""),
        "no uri": _executor_input(inputs={"features": {"artifacts": [_input(uri="")]}}),
    }[case]
    with pytest.raises(entrypoint.LauncherInputError, match=message):
        entrypoint.adapt_executor_input(executor_input, INPUTS_SPEC, OUTPUTS_SPEC)


def test_output_metadata_names_the_original_uris(tmp_path):
    """The launcher records, and uploads from LocalPathForURI of, the URI we report
    (mergeRuntimeArtifacts, launcher_v2.go:1188-1206): it must be the object-store URI."""
    path = tmp_path / "output_metadata.json"
    path.write_text(json.dumps({"artifacts": {"model": {"artifacts": [
        {"name": "model", "uri": "/minio/b/k/model", "metadata": {"seq_len": 64.0}}]}}}))
    entrypoint.restore_output_uris(str(path), {"/minio/b/k/model": "minio://b/k/model"})
    written = json.loads(path.read_text())
    assert written["artifacts"]["model"]["artifacts"][0] == {
        "name": "model", "uri": "minio://b/k/model", "metadata": {"seq_len": 64.0}}


def _run_entrypoint(args, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", entrypoint.THIS_MODULE, *args], capture_output=True, text=True,
                          timeout=300, cwd=fixtures.REPO_ROOT,
                          env=dict(os.environ, PYTHONPATH=fixtures.REPO_ROOT, **env))


@pytest.mark.parametrize("case, message", [
    ("placeholder not filled", "is not JSON"),
    ("unknown scheme", "a task cannot read or write hdfs://"),
    ("no outputs spec", "--bertqa_outputs_spec_args is missing"),
])
def test_the_entrypoint_exits_1_with_a_message_not_a_traceback(case, message):
    invocation = {"placeholder not filled": "{{$}}",
                  "unknown scheme": json.dumps(_executor_input(
                      inputs={"features": {"artifacts": [_input(uri="hdfs://nn/x")]}})),
                  "no outputs spec": json.dumps(_executor_input())}[case]
    args = ([] if case == "no outputs spec" else [entrypoint.OUTPUTS_SPEC_FLAG, json.dumps(OUTPUTS_SPEC)]) + [
        "--executor_class_path", "bert_qa_pipeline.components.qa_trainer.executor.Executor",
        entrypoint.INVOCATION_FLAG, invocation, entrypoint.INPUTS_SPEC_FLAG, json.dumps(INPUTS_SPEC)]
    proc = _run_entrypoint(args)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-3000:]


def test_an_input_error_in_the_executor_exits_1_without_a_traceback(tmp_path):
    """The user's data at fault inside the executor: the message, not the stack."""
    missing = str(tmp_path / "no-such-file.json")
    invocation = {"inputs": {"parameterValues": {
        "input_patterns": json.dumps({"train": [missing], "eval": [missing]}), "multi_answer": "first"}},
        "outputs": {"artifacts": {"examples": {"artifacts": [{"name": "examples", "uri": "minio://b/r/examples",
                                                               "type": EXAMPLES}]}},
                    "outputFile": "/minio/b/r/output_metadata.json"}}
    args = [entrypoint.OUTPUTS_SPEC_FLAG, json.dumps({"artifacts": {"examples": {"artifactType": EXAMPLES}}}),
            "--executor_class_path", "bert_qa_pipeline.components.squad_example_gen.executor.Executor",
            entrypoint.INVOCATION_FLAG, json.dumps(invocation),
            entrypoint.INPUTS_SPEC_FLAG, json.dumps({"parameters": {"input_patterns": {"parameterType": "STRING"},
                                                                    "multi_answer": {"parameterType": "STRING"}}})]
    proc = _run_entrypoint(args, BERT_QA_KFP_MOUNT_ROOT=str(tmp_path / "pod"))
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "no-such-file.json" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert not os.path.exists(tmp_path / "pod" / "minio" / "b" / "r" / "output_metadata.json")


# ---- compile: locations a cluster's tasks could not use -------------------------------------------

def _cluster_config():
    from bert_qa_pipeline.pipeline import config as config_lib

    return config_lib.load_config(None, [{"data": {
        "train": [os.path.join(fixtures.REPO_ROOT, "data", "new_wiki_train.json")],
        "eval": ["gs://bucket/data/eval.json"]}}])


@pytest.mark.parametrize("target, root, destination, change, message", [
    ("kfp", "http://host/root", None, {}, r"launcher mounts only gs://, s3:// and minio://"),
    ("kfp", "gs:///root", None, {}, "names no bucket"),
    ("kfp", "/local/root", None, {}, "cannot read the local path"),
    ("vertex", "s3://b/root", None, {}, "not a gs:// URI"),
    ("kfp", "minio://mlpipeline/root", None, {}, r"minio:// is Kubeflow's internal name .* AWS_ENDPOINT_URL"),
    ("kfp", "s3://b/root", "/local/pushed", {}, "cannot write a local path"),
    ("vertex", "gs://b/root", "hdfs://nn/pushed", {}, r"scheme 'hdfs://' is not supported"),
    ("kfp", "s3://b/root", None, {"train": ["/home/me/train.json"]}, r"data.train: .* a path on this machine"),
    ("kfp", "s3://b/root", None, {"eval": ["s3://b/eval.json"]}, r"data.eval: .* no s3:// file system"),
    ("vertex", "gs://b/root", None, {"eval": ["gs:///eval.json"]}, r"data.eval: .* names no bucket"),
    ("vertex", "gs://b/root", None, {"encoder": os.path.join(fixtures.REPO_ROOT, "no-encoder")},
     r"model.encoder: '/pipeline/no-encoder' would be .* which does not exist"),
])
def test_compile_refuses_locations_the_cluster_cannot_use(target, root, destination, change, message, tmp_path):
    from bert_qa_pipeline.kubeflow.compile import CompileError, compile_pipeline

    config = _cluster_config()
    for key, value in change.items():
        if key == "encoder":
            config.model.encoder = value
        else:
            setattr(config.data, key, value)
    with pytest.raises(CompileError, match=message):
        compile_pipeline(config, str(tmp_path / "p"), root, "img:1", push_destination=destination, target=target)
    assert not os.path.exists(tmp_path / "p")


def test_compile_accepts_what_the_cluster_can_use(tmp_path):
    from bert_qa_pipeline.kubeflow.compile import compile_pipeline

    config = _cluster_config()
    config.model.encoder = "https://tfhub.dev/tensorflow/bert_en_uncased_L-2_H-128_A-2/2"
    for target, root, destination in (("kfp", "minio://mlpipeline/root", "s3://models/bert-qa"),
                                      ("kfp", "s3://b/root", None), ("vertex", "gs://b/root", "s3://m/p")):
        assert os.path.exists(compile_pipeline(config, str(tmp_path / target), root, "img:1",
                                               push_destination=destination, target=target))


def test_compile_refuses_an_empty_image(tmp_path):
    from bert_qa_pipeline.kubeflow.compile import CompileError, compile_pipeline

    with pytest.raises(CompileError, match="--image is empty"):
        compile_pipeline(_cluster_config(), str(tmp_path / "p"), "gs://b/r", " ")
