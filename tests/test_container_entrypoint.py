"""Every component runs from the container entrypoint the compiled Kubeflow V2 / Vertex spec names.

Compiles the pipeline with KubeflowV2DagRunner, then plays the part of the Vertex AI launcher on
this machine: for each task in dependency order it builds the ExecutorInput JSON from the compiled
task (constant parameters, upstream output artifacts, fresh output URIs), runs the container's own
``command + args`` with ``{{$}}`` replaced by it, in a separate process, and feeds the artifacts the
task reports in its executor_output.json to the tasks downstream. The blessed-model resolver is a
Vertex service-side query, not a container: on a first run it finds nothing, so the evaluator gets
no baseline, as there. Nothing here imports the executors in this process.

The encoder is the session's tiny one (2 layers, hidden 32). That the default encoder's record
(``"default"``) resolves to the packaged all-MiniLM-L6-v2 in every task's own process is held by
``test_kfp_launcher.py``, whose six tasks run it; the real encoder at seq 64 learns too slowly on
two cores (8 epochs, 229 s) for the gate below.

The evaluator gates with the product's thresholds (``EvaluationConfig()``'s), not wide-open ones:
the model must reach the minimum EM and F1, beat the untrained model by 5 F1 points, and the
dynamic .tflite may lose at most 3 points. So that a short training clears them,
the eval split is the training questions (memorisation, not generalisation: benchmarks measure
that) and the submission raises the epochs and the learning rate (measured with the library on
the same questions: 10 epochs F1 22, 30 epochs EM 37 / F1 51, untrained F1 14). A second
submission with ``min_f1`` one point above the model's F1 is not blessed, and its pusher
publishes nothing.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import pytest

from tests import fixtures
from tests.fake_vertex_server import artifact_matches
from tests.pipeline_helpers import make_setup, pipeline_config
from bert_qa_pipeline.pipeline import config as config_lib

ORDER = ["SquadExampleGen", "FeatureWindowing", "QaTrainer", "TfliteExport", "QaEvaluator",
         "TflitePusher"]
TASK_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    from bert_qa_pipeline.kubeflow.compile import compile_pipeline

    setup = make_setup(tmp_path_factory.mktemp("vertex"))
    root = setup["root"]
    # Compiled with 1 epoch and the product's thresholds; the "submission" below overrides the
    # epochs and learning-rate runtime parameters. Eval = the training questions (docstring).
    eval_copy = shutil.copy(setup["train"], root / "eval_is_train.json")  # one file cannot be both splits
    # Served at the training length: the tiny encoder is randomly initialised, so its positions
    # past 64 never trained, and at 384 its .tflite scored F1 12 against the SavedModel's 61 (the
    # quantized check refused it, as it should).
    config = pipeline_config(setup, export={"variants": ["dynamic"], "serving_seq_len": 64},
                             data={"eval": [str(eval_copy)]}, train={"epochs": 1, "batch_size": 8},
                             evaluation=PRODUCT_THRESHOLDS)
    path = compile_pipeline(config, str(root / "pipeline.json"), str(root / "pipeline_root"),
                            "example.com/bert-qa:test", check_root=False)  # a local root: we are the launcher
    return json.load(open(path))["pipelineSpec"], root


PRODUCT_THRESHOLDS = dataclasses.asdict(config_lib.EvaluationConfig())
# What `PipelineJob(parameter_values=...)` would send: enough passes over the 30 questions for
# the model to clear PRODUCT_THRESHOLDS on them (docstring).
EPOCHS, LEARNING_RATE = 30, 1e-3
SUBMITTED_PARAMETERS = {"epochs": EPOCHS, "learning_rate": LEARNING_RATE}


def pipeline_parameter(spec: dict, name: str, submitted: dict):
    """A runtime parameter's value: the submission's, else the compiled default."""
    declared = spec["root"]["inputDefinitions"]["parameters"][name]
    return submitted.get(name, declared["defaultValue"])


def executor_input(spec: dict, task_name: str, produced: dict, root, submitted: dict, run: str) -> dict:
    task = spec["root"]["dag"]["tasks"][task_name]
    component = spec["components"][task["componentRef"]["name"]]
    # Schema 2.1: constants are plain JSON values (runtimeValue.constant), runtime parameters
    # are componentInputParameter references; both reach the container as
    # ExecutorInput.inputs.parameterValues, as the Vertex/KFP launchers hand them.
    assert spec["schemaVersion"] == "2.1.0"
    parameters = {name: (value["runtimeValue"]["constant"] if "runtimeValue" in value
                         else pipeline_parameter(spec, value["componentInputParameter"], submitted))
                  for name, value in task["inputs"].get("parameters", {}).items()}
    artifacts = {}
    for name, value in task["inputs"].get("artifacts", {}).items():
        source = value["taskOutputArtifact"]
        found = produced.get(source["producerTask"], {}).get(source["outputArtifactKey"])
        if found:  # the resolver's outputs stay empty on a first run
            artifacts[name] = {"artifacts": found}
    outputs = {}
    for name, definition in component["outputDefinitions"]["artifacts"].items():
        uri = str(root / run / task_name / name)
        outputs[name] = {"artifacts": [{"name": f"{task_name}-{name}", "uri": uri,
                                        "type": definition["artifactType"], "metadata": {}}]}
    output_file = str(root / run / task_name / "executor_output.json")
    return {"inputs": {"parameterValues": parameters, "artifacts": artifacts},
            "outputs": {"artifacts": outputs, "outputFile": output_file}}


def run_task(spec: dict, task_name: str, produced: dict, root, submitted: dict = SUBMITTED_PARAMETERS,
             run: str = "pipeline_root") -> dict:
    """One task in its own process; its outputs go to fresh URIs under ``root/run``."""
    task = spec["root"]["dag"]["tasks"][task_name]
    component = spec["components"][task["componentRef"]["name"]]
    container = spec["deploymentSpec"]["executors"][component["executorLabel"]]["container"]
    invocation = executor_input(spec, task_name, produced, root, submitted, run)
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


@pytest.fixture(scope="module")
def produced(compiled):
    """The six tasks of one submission, in order: task -> its reported output artifacts."""
    spec, root = compiled
    assert set(ORDER) <= set(spec["root"]["dag"]["tasks"])
    outputs = {}
    for task_name in ORDER:
        outputs[task_name] = run_task(spec, task_name, outputs, root)
    return outputs


def test_every_component_runs_from_its_container_entrypoint(compiled, produced):
    spec, root = compiled

    examples = produced["SquadExampleGen"]["examples"][0]
    assert sorted(json.loads(examples["metadata"]["split_names"])) == ["eval", "train"]
    features = produced["FeatureWindowing"]["features"][0]
    assert features["metadata"]["num_features_train"] > 0
    # The submitted runtime parameter won over the compiled default.
    run_dir = produced["QaTrainer"]["model_run"][0]["uri"]
    assert json.load(open(os.path.join(run_dir, "training_summary.json")))["epochs"] == EPOCHS
    serving = os.path.join(produced["QaTrainer"]["model"][0]["uri"], "Format-Serving")
    record = json.load(open(os.path.join(serving, "assets.extra", "bert_qa_export.json")))
    assert record["seq_len"] == 64 and record["args"]["learning_rate"] == LEARNING_RATE  # the submitted rate
    blessing = produced["QaEvaluator"]["blessing"][0]
    assert blessing["metadata"]["blessed"] == 1, blessing["metadata"]["blessing_message"]
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
    # Every check ran against the product's threshold (none wide open) and passed.
    checks = {c["name"]: c for c in scores["checks"]}
    assert checks["exact_match >= minimum"]["threshold"] == PRODUCT_THRESHOLDS["min_exact_match"]
    assert checks["f1 >= minimum"]["threshold"] == PRODUCT_THRESHOLDS["min_f1"]
    assert checks["f1 vs untrained model"]["threshold"] == pytest.approx(
        scores["untrained"]["f1"] + PRODUCT_THRESHOLDS["min_f1_gain_over_untrained"])
    assert checks["quantized f1 vs float"]["threshold"] == pytest.approx(
        scores["scores"]["saved_model"]["f1"] - PRODUCT_THRESHOLDS["max_quantized_f1_drop"])
    assert all(c["passed"] for c in checks.values()) and len(checks) == 5
    pushed = produced["TflitePusher"]["pushed_model"][0]
    assert pushed["metadata"]["pushed"] == 1
    destination = pushed["metadata"]["pushed_destination"]
    assert destination.startswith(str(root / "pipeline_root" / "pushed"))
    assert any(name.endswith(".tflite") for name in os.listdir(destination))


def test_a_model_below_a_threshold_is_not_blessed_and_not_pushed(compiled, produced):
    """The same model, evaluated for a submission whose min_f1 is one point above its F1: not
    blessed, the F1 check alone failing, and its pusher publishes nothing."""
    spec, root = compiled
    f1 = produced["QaEvaluator"]["blessing"][0]["metadata"]["f1"]
    submitted = {**SUBMITTED_PARAMETERS, "min_f1": f1 + 1.0}
    pushed_dir = str(root / "pipeline_root" / "pushed")
    before = sorted(os.listdir(pushed_dir))
    again = dict(produced)
    again["QaEvaluator"] = run_task(spec, "QaEvaluator", produced, root, submitted, run="stricter")
    blessing = again["QaEvaluator"]["blessing"][0]
    assert blessing["metadata"]["blessed"] == 0
    assert json.loads(blessing["metadata"]["failed_checks"]) == ["f1 >= minimum"]
    assert os.path.exists(os.path.join(blessing["uri"], "NOT_BLESSED"))
    assert not os.path.exists(os.path.join(blessing["uri"], "BLESSED"))
    pushed = run_task(spec, "TflitePusher", again, root, submitted, run="stricter")["pushed_model"][0]
    assert pushed["metadata"]["pushed"] == 0 and pushed["metadata"]["pushed_destination"] == ""
    assert sorted(os.listdir(pushed_dir)) == before
