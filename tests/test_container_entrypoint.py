"""Every component runs from the container entrypoint the compiled Kubeflow V2 / Vertex spec names.

Compiles the pipeline with KubeflowV2DagRunner, then plays the part of the Vertex AI launcher on
this machine: for each task in dependency order it builds the ExecutorInput JSON from the compiled
task (constant parameters, upstream output artifacts, fresh output URIs), runs the container's own
``command + args`` with ``{{$}}`` replaced by it, in a separate process, and feeds the artifacts the
task reports in its executor_output.json to the tasks downstream. The blessed-model resolver is a
Vertex service-side query, not a container: on a first run it finds nothing, so the evaluator gets
no baseline, as there. Nothing here imports the executors in this process.

The pipeline is compiled with the default encoder (``model.encoder: ""``, recorded as
``"default"``), as ``bertqa compile`` writes it: every step that builds a spec, in its own
process, must resolve that record to the same packaged all-MiniLM-L6-v2 (seq_len 64 keeps it
fast).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests import fixtures
from tests.fake_vertex_server import artifact_matches
from tests.pipeline_helpers import make_setup, pipeline_config

ORDER = ["SquadExampleGen", "FeatureWindowing", "QaTrainer", "TfliteExport", "QaEvaluator",
         "TflitePusher"]
TASK_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    from bert_qa_pipeline.kubeflow.compile import compile_pipeline

    setup = make_setup(tmp_path_factory.mktemp("vertex"))
    root = setup["root"]
    # Compiled with 2 epochs; the "submission" below overrides the epochs runtime parameter to 1.
    config = pipeline_config(setup, export={"variants": ["dynamic"]}, model={"encoder": ""},
                             train={"epochs": 2, "batch_size": 8})
    path = compile_pipeline(config, str(root / "pipeline.json"), str(root / "pipeline_root"),
                            "example.com/bert-qa:test", check_root=False)  # a local root: we are the launcher
    return json.load(open(path))["pipelineSpec"], root


SUBMITTED_PARAMETERS = {"epochs": 1}  # what `PipelineJob(parameter_values=...)` would send


def pipeline_parameter(spec: dict, name: str):
    """A runtime parameter's value: the submission's, else the compiled default."""
    declared = spec["root"]["inputDefinitions"]["parameters"][name]
    return SUBMITTED_PARAMETERS.get(name, declared["defaultValue"])


def executor_input(spec: dict, task_name: str, produced: dict, root) -> dict:
    task = spec["root"]["dag"]["tasks"][task_name]
    component = spec["components"][task["componentRef"]["name"]]
    # Schema 2.1: constants are plain JSON values (runtimeValue.constant), runtime parameters
    # are componentInputParameter references; both reach the container as
    # ExecutorInput.inputs.parameterValues, as the Vertex/KFP launchers hand them.
    assert spec["schemaVersion"] == "2.1.0"
    parameters = {name: (value["runtimeValue"]["constant"] if "runtimeValue" in value
                         else pipeline_parameter(spec, value["componentInputParameter"]))
                  for name, value in task["inputs"].get("parameters", {}).items()}
    artifacts = {}
    for name, value in task["inputs"].get("artifacts", {}).items():
        source = value["taskOutputArtifact"]
        found = produced.get(source["producerTask"], {}).get(source["outputArtifactKey"])
        if found:  # the resolver's outputs stay empty on a first run
            artifacts[name] = {"artifacts": found}
    outputs = {}
    for name, definition in component["outputDefinitions"]["artifacts"].items():
        uri = str(root / "pipeline_root" / task_name / name)
        outputs[name] = {"artifacts": [{"name": f"{task_name}-{name}", "uri": uri,
                                        "type": definition["artifactType"], "metadata": {}}]}
    output_file = str(root / "pipeline_root" / task_name / "executor_output.json")
    return {"inputs": {"parameterValues": parameters, "artifacts": artifacts},
            "outputs": {"artifacts": outputs, "outputFile": output_file}}


def run_task(spec: dict, task_name: str, produced: dict, root) -> dict:
    task = spec["root"]["dag"]["tasks"][task_name]
    component = spec["components"][task["componentRef"]["name"]]
    container = spec["deploymentSpec"]["executors"][component["executorLabel"]]["container"]
    invocation = executor_input(spec, task_name, produced, root)
    argv = container["command"] + [json.dumps(invocation) if a == "{{$}}" else a
                                   for a in container["args"]]
    assert argv[0] == "python"
    argv[0] = sys.executable  # the image's python is this environment
    env = dict(os.environ, PYTHONPATH=fixtures.REPO_ROOT)  # the image's working directory
    env.pop("TF_USE_LEGACY_KERAS", None)  # the entrypoint path must set it itself (via bert_qa._env)
    proc = subprocess.run(argv, env=env, cwd=fixtures.REPO_ROOT, capture_output=True, text=True,
                          timeout=TASK_TIMEOUT_S)
    assert proc.returncode == 0, f"{task_name} exited {proc.returncode}:\n{proc.stderr[-5000:]}"
    output = json.load(open(invocation["outputs"]["outputFile"]))
    reported = {}
    for name, value in output["artifacts"].items():
        declared = component["outputDefinitions"]["artifacts"][name]["artifactType"]
        reported[name] = [{**a, "type": declared} for a in value["artifacts"]]
    return reported


def as_vertex(artifact: dict) -> dict:
    """An artifact as Vertex ML Metadata stores it: its type's schema title as ``schemaTitle``."""
    import yaml

    kind = artifact["type"]
    title = kind.get("schemaTitle") or yaml.safe_load(kind["instanceSchema"])["title"]
    return {**artifact, "schemaTitle": title}


def resolver_queries(spec: dict):
    """The compiled latest-blessed-model resolver's two queries: blessing, then model."""
    queries = {}
    for name, executor in spec["deploymentSpec"]["executors"].items():
        for key, query in executor.get("resolver", {}).get("outputArtifactQueries", {}).items():
            queries[key] = query["filter"]
    return queries["model_blessing"], queries["model"]


def test_every_component_runs_from_its_container_entrypoint(compiled):
    spec, root = compiled
    assert set(ORDER) <= set(spec["root"]["dag"]["tasks"])
    produced = {}
    for task_name in ORDER:
        produced[task_name] = run_task(spec, task_name, produced, root)

    examples = produced["SquadExampleGen"]["examples"][0]
    assert sorted(json.loads(examples["metadata"]["split_names"])) == ["eval", "train"]
    features = produced["FeatureWindowing"]["features"][0]
    assert features["metadata"]["num_features_train"] > 0
    # The submitted runtime parameter won over the compiled default.
    run_dir = produced["QaTrainer"]["model_run"][0]["uri"]
    assert json.load(open(os.path.join(run_dir, "training_summary.json")))["epochs"] == 1
    # The features and the model record the encoder as "default", never this machine's cache path.
    assert features["metadata"]["encoder_uri"] == "default"
    serving = os.path.join(produced["QaTrainer"]["model"][0]["uri"], "Format-Serving")
    record = json.load(open(os.path.join(serving, "assets.extra", "bert_qa_export.json")))
    assert record["args"]["uri"] == "default" and record["seq_len"] == 64
    blessing = produced["QaEvaluator"]["blessing"][0]
    assert blessing["metadata"]["blessed"] == 1
    # TFX's V2 entrypoint rewrote the model id to the runtime artifact name, which is what the
    # latest-blessed-model resolver matches on Vertex (refactor_model_blessing).
    assert blessing["metadata"]["current_model_id"] == produced["QaTrainer"]["model"][0]["name"]
    # The next run's resolver tasks, as the Vertex service evaluates their queries: the blessing
    # query finds this blessing (and not another pipeline's), the model query then finds this model.
    blessing_query, model_query = resolver_queries(spec)
    assert artifact_matches(blessing_query, as_vertex(blessing))
    other_pipeline = {**blessing, "metadata": {**blessing["metadata"], "pipeline_name": "someone-else"}}
    assert not artifact_matches(blessing_query, as_vertex(other_pipeline))
    not_blessed = {**blessing, "metadata": {**blessing["metadata"], "blessed": 0}}
    assert not artifact_matches(blessing_query, as_vertex(not_blessed))
    model_query = model_query.replace("{{$.inputs.artifacts['input'].metadata['current_model_id']}}",
                                      blessing["metadata"]["current_model_id"])
    assert artifact_matches(model_query, as_vertex(produced["QaTrainer"]["model"][0]))
    assert not artifact_matches(model_query, as_vertex(produced["TfliteExport"]["tflite_model"][0]))
    assert os.path.exists(os.path.join(blessing["uri"], "BLESSED"))
    evaluation = produced["QaEvaluator"]["evaluation"][0]["uri"]
    assert os.path.exists(os.path.join(evaluation, "report.md"))
    # The untrained reference was built from that record in QaEvaluator's own process.
    scores = json.load(open(os.path.join(evaluation, "scores.json")))
    assert set(scores["untrained"]) == {"exact_match", "f1"}
    pushed = produced["TflitePusher"]["pushed_model"][0]
    assert pushed["metadata"]["pushed"] == 1
    destination = pushed["metadata"]["pushed_destination"]
    assert destination.startswith(str(root / "pipeline_root" / "pushed"))
    assert any(name.endswith(".tflite") for name in os.listdir(destination))
