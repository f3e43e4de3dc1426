"""kubeflow/kfp_submit.py through the real kfp.Client against tests/fake_kfp_server.py.

The fake enforces the Kubeflow Pipelines API server's own rules (schema 2.1.0, container or
importer executors, declared and typed run parameters, schedule limits), so the compiled
``--target kfp`` YAML being accepted, and the Vertex output or a schema-2.0.0 spec being
refused, is evidence about the cluster, not about the fake.
"""
import json
import socket

import kfp
import kfp_server_api
import pytest
import yaml
from kfp.client import client as kfp_client_module

from bert_qa_pipeline.kubeflow import kfp_submit
from bert_qa_pipeline.kubeflow.kfp_submit import SubmitError, schedule_kfp, submit_kfp, to_kfp_cron
from bert_qa_pipeline.kubeflow.parameters import coerce_params, declared_parameters
from tests.fake_kfp_server import API, FakeKfpServer

RUNS, RECURRING_RUNS, EXPERIMENTS, HEALTHZ = (f"{API}/runs", f"{API}/recurringruns", f"{API}/experiments",
                                              f"{API}/healthz")
DECLARED = ["batch_size", "epochs", "input_patterns", "learning_rate", "max_f1_drop_vs_baseline",
            "max_quantized_f1_drop", "min_exact_match", "min_f1", "min_f1_gain_over_untrained"]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """The kfp YAML, the Vertex PipelineJob's pipelineSpec as YAML (resolver executors) and the
    kfp YAML with schemaVersion 2.0.0: compiled once (TensorFlow/TFX import ~15 s)."""
    from bert_qa_pipeline.kubeflow.compile import compile_pipeline
    from bert_qa_pipeline.pipeline import config as config_lib

    tmp = tmp_path_factory.mktemp("kfp_submit")
    kfp_yaml = compile_pipeline(config_lib.load_config(None, []), str(tmp / "p.yaml"), "s3://bucket/root",
                                "example.com/img:1", target="kfp")
    vertex_json = compile_pipeline(config_lib.load_config(None, []), str(tmp / "v.json"), "gs://bucket/root",
                                   "example.com/img:1", target="vertex")
    with open(vertex_json) as f:
        vertex_spec = json.load(f)["pipelineSpec"]
    vertex_yaml = tmp / "vertex_spec.yaml"
    vertex_yaml.write_text(yaml.safe_dump(vertex_spec))
    with open(kfp_yaml) as f:
        spec = yaml.safe_load(f)
    old = dict(spec, schemaVersion="2.0.0")
    old_yaml = tmp / "schema_2_0_0.yaml"
    old_yaml.write_text(yaml.safe_dump(old))
    return {"kfp": kfp_yaml, "spec": spec, "vertex_json": vertex_json, "vertex": str(vertex_yaml),
            "vertex_spec": vertex_spec, "old": str(old_yaml)}


@pytest.fixture(autouse=True)
def isolated_kfp(monkeypatch, tmp_path):
    """No ~/.config/kfp/context.json nor KF_PIPELINES_* from the machine running the tests."""
    monkeypatch.setattr(kfp_client_module.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "kfp" / "context.json"))
    for name in ("KF_PIPELINES_ENDPOINT", "KF_PIPELINES_UI_ENDPOINT", "KF_PIPELINES_DEFAULT_EXPERIMENT_NAME",
                 "KF_PIPELINES_OVERRIDE_EXPERIMENT_NAME", "KF_PIPELINES_IAP_OAUTH2_CLIENT_ID",
                 "KF_PIPELINES_APP_OAUTH2_CLIENT_ID", "KF_PIPELINES_APP_OAUTH2_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake():
    with FakeKfpServer() as server:
        yield server


def same_spec(sent: dict, compiled: dict) -> bool:
    """Equal as PipelineSpec messages: kfp.Client re-serialises the YAML through the proto,
    which drops fields at their default value (``enableCache: false`` becomes ``{}``)."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    return (json_format.ParseDict(sent, pipeline_spec_pb2.PipelineSpec())
            == json_format.ParseDict(compiled, pipeline_spec_pb2.PipelineSpec()))


def test_compiled_kfp_spec_submits_with_a_typed_override(compiled, fake):
    run_id, url = submit_kfp(compiled["kfp"], fake.url, {"batch_size": "8"}, experiment="bert-qa-test",
                             run_name="nightly-1")

    assert url == f"{fake.url}/#/runs/details/{run_id}"
    assert list(fake.runs) == [run_id]
    assert fake.calls() == [("GET", HEALTHZ), ("GET", EXPERIMENTS), ("POST", EXPERIMENTS), ("POST", RUNS)]
    (experiment,) = fake.experiments.values()
    assert experiment["display_name"] == "bert-qa-test"
    (body,) = fake.bodies("POST", RUNS)
    assert body["experiment_id"] == experiment["experiment_id"]
    assert body["display_name"] == "nightly-1"
    assert same_spec(body["pipeline_spec"], compiled["spec"])  # the compiled YAML, unchanged
    assert body["pipeline_spec"]["schemaVersion"] == "2.1.0"
    assert body["runtime_config"] == {"parameters": {"batch_size": 8}}
    assert type(body["runtime_config"]["parameters"]["batch_size"]) is int  # a JSON number, not "8"


def test_second_submit_reuses_the_experiment_and_passes_namespace_and_caching(compiled, fake):
    submit_kfp(compiled["kfp"], fake.url, {}, namespace="team-a")
    submit_kfp(compiled["kfp"], fake.url, {"learning_rate": 1e-4}, namespace="team-a", enable_caching=False)

    assert len(fake.bodies("POST", EXPERIMENTS)) == 1
    (experiment,) = fake.experiments.values()
    assert (experiment["display_name"], experiment["namespace"]) == ("bert-qa", "team-a")
    lists = [r for r in fake.requests if (r.method, r.path) == ("GET", EXPERIMENTS)]
    assert [r.query.get("namespace") for r in lists] == [["team-a"], ["team-a"]]
    assert ("GET", HEALTHZ) not in fake.calls()  # a given namespace needs no multi-user probe
    first, second = fake.bodies("POST", RUNS)
    assert first["experiment_id"] == second["experiment_id"] == experiment["experiment_id"]
    assert first["display_name"].startswith("bert-qa ")  # pipeline name + time when no run name
    assert first["runtime_config"] == {"parameters": {}}
    assert second["runtime_config"] == {"parameters": {"learning_rate": 1e-4}}
    compiled_tasks = compiled["spec"]["root"]["dag"]["tasks"]
    # Compiled: caching on, except SquadExampleGen (it must re-read its patterns every run).
    assert {name for name, t in compiled_tasks.items() if not t["cachingOptions"]["enableCache"]} == {"SquadExampleGen"}
    assert same_spec(first["pipeline_spec"], compiled["spec"])  # enable_caching=None keeps that
    sent_tasks = second["pipeline_spec"]["root"]["dag"]["tasks"]
    assert set(sent_tasks) == set(compiled_tasks)
    assert {t.get("cachingOptions", {}).get("enableCache", False) for t in sent_tasks.values()} == {False}


def test_schedule_sends_the_converted_cron_and_concurrency(compiled, fake):
    recurring_id, url = schedule_kfp(compiled["kfp"], fake.url, {"learning_rate": "0.0001", "epochs": 3},
                                     cron="30 2 * * *", max_concurrent=2)

    assert url == f"{fake.url}/#/recurringrun/details/{recurring_id}"
    assert list(fake.recurring_runs) == [recurring_id]
    (body,) = fake.bodies("POST", RECURRING_RUNS)
    assert body["trigger"] == {"cron_schedule": {"cron": "0 30 2 * * *"}}
    assert body["max_concurrency"] == 2
    assert body["display_name"] == "bert-qa-nightly"
    assert body["mode"] == "ENABLE"
    assert body["no_catchup"] is True
    assert same_spec(body["pipeline_spec"], compiled["spec"])
    assert body["runtime_config"] == {"parameters": {"learning_rate": 0.0001, "epochs": 3}}
    (experiment,) = fake.experiments.values()
    assert body["experiment_id"] == experiment["experiment_id"] and experiment["display_name"] == "bert-qa"
    assert fake.recurring_runs[recurring_id]["status"] == "ENABLED"


def test_second_schedule_with_the_same_name_is_refused(compiled, fake):
    first, _ = schedule_kfp(compiled["kfp"], fake.url, {}, cron="0 3 * * *")
    with pytest.raises(ValueError, match=f"already has a recurring run named 'bert-qa-nightly' \\(id {first}\\)"):
        schedule_kfp(compiled["kfp"], fake.url, {}, cron="0 4 * * *")
    other, _ = schedule_kfp(compiled["kfp"], fake.url, {}, cron="0 4 * * *", name="bert-qa-weekly")
    assert set(fake.recurring_runs) == {first, other}
    assert len(fake.bodies("POST", RECURRING_RUNS)) == 2


def test_vertex_output_is_rejected_by_the_server(compiled, fake):
    kinds = {name: next(iter(e)) for name, e in compiled["vertex_spec"]["deploymentSpec"]["executors"].items()}
    assert "resolver" in kinds.values()  # today's Vertex output, what Kubeflow cannot run

    with pytest.raises(SubmitError) as run_error:
        submit_kfp(compiled["vertex"], fake.url, {})
    with pytest.raises(SubmitError) as schedule_error:
        schedule_kfp(compiled["vertex"], fake.url, {}, cron="30 2 * * *")

    for error in (run_error.value, schedule_error.value):
        assert error.status == 500  # codes.Internal: the compiler's plain error (see the fake's docstring)
        assert ('executor(label="latest_blessed_model_resolver-model-blessing-resolver_executor"): '
                "non-container and non-importer executor not implemented") in error.server_message
    assert "Failed to create a new run" in run_error.value.server_message
    assert "Failed to create a recurring run" in schedule_error.value.server_message
    assert fake.runs == {} and fake.recurring_runs == {}
    assert len(fake.bodies("POST", RUNS)) == len(fake.bodies("POST", RECURRING_RUNS)) == 1  # it did reach the server


def test_schema_2_0_0_spec_is_rejected_by_the_server(compiled, fake):
    with pytest.raises(SubmitError) as error:
        submit_kfp(compiled["old"], fake.url, {"epochs": 1})

    assert error.value.status == 500  # NewInternalServerError around the template's InvalidInputError
    assert ("KFP only supports schema version 2.1.0, but the pipeline spec has version 2.0.0"
            in error.value.server_message)
    assert "HTTP 500" in str(error.value) and fake.url in str(error.value)
    (body,) = fake.bodies("POST", RUNS)
    assert body["pipeline_spec"]["schemaVersion"] == "2.0.0"
    assert fake.runs == {}


@pytest.mark.filterwarnings("ignore:This client only works with:FutureWarning")
def test_fake_enforces_declared_and_typed_parameters_like_the_server(compiled, fake):
    """kfp.Client alone (no kfp_submit validation): the server's rules, which kfp_submit's
    own checks exist to pre-empt."""
    client = kfp.Client(host=fake.url)

    def refusal(arguments):
        with pytest.raises(kfp_server_api.ApiException) as error:
            client.create_run_from_pipeline_package(compiled["kfp"], arguments=arguments, run_name="r")
        return error.value.status, json.loads(error.value.body)["message"]

    status, message = refusal({"epoch": 1})
    assert status == 400 and message.endswith("parameter(s) provided are not required by pipeline: epoch")
    status, message = refusal({"epochs": "1"})
    assert status == 400 and ("input parameter epochs requires type double or integer, but the parameter "
                              "value is not of number value type") in message
    status, message = refusal({"input_patterns": 3})
    assert status == 400 and "input parameter input_patterns requires type string" in message
    assert fake.runs == {}
    client.create_run_from_pipeline_package(compiled["kfp"], arguments={"epochs": 1}, run_name="r")
    assert len(fake.runs) == 1


@pytest.mark.filterwarnings("ignore:This client only works with:FutureWarning")
def test_fake_enforces_schedule_limits_like_the_server(compiled, fake):
    client = kfp.Client(host=fake.url)
    experiment_id = client.create_experiment("bert-qa").experiment_id
    for kwargs, expected in [
        ({"cron_expression": "0 0 2 * * *", "max_concurrency": 11},
         "Max concurrency of a recurring run must be at least 1 and at most 10. Received 11"),
        ({"cron_expression": "2 * *", "max_concurrency": 1}, "Expected 5 to 6 fields, found 3: 2 * *"),
    ]:
        with pytest.raises(kfp_server_api.ApiException) as error:
            client.create_recurring_run(experiment_id, "s", pipeline_package_path=compiled["kfp"], **kwargs)
        assert error.value.status == 400
        assert expected in json.loads(error.value.body)["message"]
    assert fake.recurring_runs == {}


@pytest.mark.parametrize("call", ["submit", "schedule"])
def test_unknown_parameter_is_refused_before_any_request(compiled, fake, call):
    with pytest.raises(ValueError) as error:
        if call == "submit":
            submit_kfp(compiled["kfp"], fake.url, {"epoch": "1"})
        else:
            schedule_kfp(compiled["kfp"], fake.url, {"epoch": "1"}, cron="30 2 * * *")
    message = str(error.value)
    assert "unknown pipeline parameter(s) epoch;" in message
    assert message.endswith("the pipeline declares: " + ", ".join(DECLARED))
    assert fake.requests == []


def test_invalid_schedule_arguments_are_refused_before_any_request(compiled, fake):
    with pytest.raises(ValueError, match="'30 2 \\* \\*' has 4 fields"):
        schedule_kfp(compiled["kfp"], fake.url, {}, cron="30 2 * *")
    for bad in (0, 11, True, "2"):
        with pytest.raises(ValueError, match="max_concurrent must be an integer from 1 to 10"):
            schedule_kfp(compiled["kfp"], fake.url, {}, cron="30 2 * * *", max_concurrent=bad)
    with pytest.raises(ValueError, match="is an integer"):
        schedule_kfp(compiled["kfp"], fake.url, {"batch_size": "sixteen"}, cron="30 2 * * *")
    assert fake.requests == []


def test_vertex_json_and_schemeless_host_are_refused_locally(compiled, fake):
    with pytest.raises(ValueError, match="Vertex PipelineJob of compile --target vertex"):
        submit_kfp(compiled["vertex_json"], fake.url, {})
    with pytest.raises(ValueError, match="needs its scheme"):
        submit_kfp(compiled["kfp"], fake.url.removeprefix("http://"), {})
    assert fake.requests == []


def test_unreachable_cluster_is_a_submit_error(compiled):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SubmitError, match=f"cannot reach Kubeflow Pipelines at http://127.0.0.1:{port}") as error:
        submit_kfp(compiled["kfp"], f"http://127.0.0.1:{port}", {})
    assert error.value.status is None


DECLARATIONS = {
    "epochs": {"parameterType": "NUMBER_INTEGER", "defaultValue": 2, "isOptional": True},
    "learning_rate": {"parameterType": "NUMBER_DOUBLE", "defaultValue": 1.5e-4, "isOptional": True},
    "input_patterns": {"parameterType": "STRING", "defaultValue": "{}", "isOptional": True},
    "dry_run": {"parameterType": "BOOLEAN", "defaultValue": False, "isOptional": True},
    "tags": {"parameterType": "LIST", "defaultValue": [], "isOptional": True},
}


@pytest.mark.parametrize("name, given, expected", [
    ("epochs", "3", 3), ("epochs", " 3 ", 3), ("epochs", 3, 3), ("epochs", 3.0, 3),
    ("learning_rate", "0.5", 0.5), ("learning_rate", "1e-4", 1e-4), ("learning_rate", 1, 1.0),
    ("input_patterns", '{"train": ["gs://b/t.json"]}', '{"train": ["gs://b/t.json"]}'),
    ("dry_run", "true", True), ("dry_run", "False", False), ("tags", '["a", "b"]', ["a", "b"]),
])
def test_command_line_strings_become_the_declared_types(name, given, expected):
    typed = coerce_params({name: given}, DECLARATIONS)
    assert typed == {name: expected}
    assert type(typed[name]) is type(expected)


@pytest.mark.parametrize("name, given", [
    ("epochs", "3.5"), ("epochs", 2.5), ("epochs", "three"), ("epochs", True), ("epochs", ""),
    ("learning_rate", "fast"), ("learning_rate", "nan"), ("learning_rate", float("inf")), ("learning_rate", False),
    ("input_patterns", 3), ("dry_run", "yes"), ("tags", '{"a": 1}'),
])
def test_values_that_do_not_fit_the_declared_type_are_refused(name, given):
    with pytest.raises(ValueError, match=f"pipeline parameter {name} is "):
        coerce_params({name: given}, DECLARATIONS)


def test_parameters_without_default_must_be_given():
    declared = dict(DECLARATIONS, data_root={"parameterType": "STRING"})
    with pytest.raises(ValueError, match="data_root have no default"):
        coerce_params({"epochs": 1}, declared)
    assert coerce_params({"data_root": "gs://b"}, declared) == {"data_root": "gs://b"}


def test_declared_parameters_are_read_from_the_compiled_spec(compiled):
    declared = declared_parameters(kfp_submit.load_pipeline_spec(compiled["kfp"]))
    assert sorted(declared) == DECLARED
    assert declared["batch_size"]["parameterType"] == "NUMBER_INTEGER"
    assert declared["epochs"]["parameterType"] == "NUMBER_DOUBLE"  # a fraction of a pass is allowed
    coerced = coerce_params({"batch_size": "8", "epochs": "1.5", "min_f1": "20"}, declared)
    assert coerced == {"batch_size": 8, "epochs": 1.5, "min_f1": 20.0}
    assert type(coerced["batch_size"]) is int


@pytest.mark.parametrize("expr, expected", [
    ("30 2 * * *", "0 30 2 * * *"),
    ("*/15 * * * 1-5", "0 */15 * * * 1-5"),
    ("  0   3 * * SUN ", "0 0 3 * * SUN"),
    ("0 30 2 * * *", "0 30 2 * * *"),
    ("15 0 9 ? * 2-6", "15 0 9 ? * 2-6"),
])
def test_to_kfp_cron(expr, expected):
    assert to_kfp_cron(expr) == expected


@pytest.mark.parametrize("expr", ["", "   ", "30 2 * *", "0 0 30 2 * * 2030", "@daily", "every night"])
def test_to_kfp_cron_refuses_other_forms_naming_the_expression(expr):
    with pytest.raises(ValueError) as error:
        to_kfp_cron(expr)
    assert f"cron expression {expr!r}" in str(error.value)


def test_cli_submit_and_schedule_on_kubeflow(compiled, fake, capsys):
    """`bertqa submit` / `schedule --target kfp` end to end against the fake API server."""
    from bert_qa_cli.main import main

    common = ["--target", "kfp", "--compiled", compiled["kfp"], "--host", fake.url, "--param", "epochs=1"]
    assert main(["submit", *common, "--run-name", "manual", "--experiment", "cli"]) == 0
    out = capsys.readouterr().out
    assert f"{fake.url}/#/runs/details/" in out
    (body,) = fake.bodies("POST", RUNS)
    assert body["runtime_config"] == {"parameters": {"epochs": 1}} and body["display_name"] == "manual"
    assert main(["schedule", *common, "--cron", "30 2 * * *", "--name", "nightly"]) == 0
    assert f"{fake.url}/#/recurringrun/details/" in capsys.readouterr().out
    # The server's refusal is exit 1 with its message; a missing --host is exit 2 (usage) before any request.
    spec_2_0 = ["--target", "kfp", "--compiled", compiled["old"], "--host", fake.url]
    assert main(["submit", *spec_2_0]) == 1
    assert "2.1.0" in capsys.readouterr().err
    before = len(fake.requests)
    assert main(["submit", "--target", "kfp", "--compiled", compiled["kfp"], "--param", "epochs=1"]) == 2
    assert "--target kfp needs --host" in capsys.readouterr().err
    assert len(fake.requests) == before
