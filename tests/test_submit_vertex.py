"""`bertqa submit` / `schedule` on Vertex: the real aiplatform client against a fake REST endpoint."""
from __future__ import annotations

import pytest

from tests.fake_vertex_server import FakeVertex


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    from bert_qa_pipeline.kubeflow.compile import compile_pipeline
    from bert_qa_pipeline.pipeline import config as config_lib

    path = str(tmp_path_factory.mktemp("vertex") / "pipeline.json")
    return compile_pipeline(config_lib.load_config(None, []), path, "gs://bucket/bert-qa", "example.com/img:1")


@pytest.fixture
def vertex(monkeypatch):
    from google.cloud.aiplatform import pipeline_jobs

    buckets = []
    # aiplatform creates the pipeline root's bucket when missing; record instead of calling GCS.
    monkeypatch.setattr(pipeline_jobs.gcs_utils, "create_gcs_bucket_for_pipeline_artifacts_if_it_does_not_exist",
                        lambda **kwargs: buckets.append(kwargs))
    fake = FakeVertex()
    fake.buckets = buckets
    yield fake
    fake.close()


def _credentials():
    from google.auth.credentials import AnonymousCredentials

    return AnonymousCredentials()


def test_submit_sends_identity_labels_and_typed_parameters(compiled, vertex):
    from bert_qa_pipeline.kubeflow.vertex_submit import submit_vertex

    name, url = submit_vertex(
        compiled, "my-project", "europe-west4", {"epochs": "3", "min_f1": "40"},
        service_account="runner@my-project.iam.gserviceaccount.com",
        network="projects/123/global/networks/vpc", labels={"team": "qa"}, enable_caching=False,
        api_endpoint=vertex.endpoint, credentials=_credentials())
    assert name.startswith("projects/my-project/locations/europe-west4/pipelineJobs/")
    assert url.startswith("https://console.cloud.google.com/vertex-ai/locations/europe-west4/pipelines/runs/")
    [body] = vertex.bodies("pipelineJobs")
    assert body["serviceAccount"] == "runner@my-project.iam.gserviceaccount.com"
    assert body["network"] == "projects/123/global/networks/vpc"
    assert body["labels"]["team"] == "qa"
    values = body["runtimeConfig"]["parameterValues"]
    assert (values["epochs"], values["min_f1"], values["batch_size"]) == (3, 40, 16)  # typed, defaults kept
    assert body["runtimeConfig"]["gcsOutputDirectory"] == "gs://bucket/bert-qa"
    assert body["pipelineSpec"]["schemaVersion"] == "2.1.0"
    tasks = body["pipelineSpec"]["root"]["dag"]["tasks"]
    assert all(t["cachingOptions"].get("enableCache", False) is False for t in tasks.values())  # --no-cache
    assert [b["output_artifacts_gcs_dir"] for b in vertex.buckets] == ["gs://bucket/bert-qa"]


def test_schedule_passes_identity_again_and_the_cron(compiled, vertex):
    from bert_qa_pipeline.kubeflow.vertex_submit import schedule_vertex

    name, url = schedule_vertex(
        compiled, "my-project", "us-central1", "30 2 * * *", {"epochs": 1}, max_concurrent=2,
        schedule_name="nightly", service_account="runner@my-project.iam.gserviceaccount.com",
        network="projects/123/global/networks/vpc", api_endpoint=vertex.endpoint, credentials=_credentials())
    assert name.startswith("projects/my-project/locations/us-central1/schedules/") and "schedules/" in url
    [body] = vertex.bodies("schedules")
    assert (body["displayName"], body["cron"], int(body["maxConcurrentRunCount"])) == ("nightly", "30 2 * * *", 2)
    job = body["createPipelineJobRequest"]["pipelineJob"]
    assert job["serviceAccount"] == "runner@my-project.iam.gserviceaccount.com"
    assert job["network"] == "projects/123/global/networks/vpc"
    assert job["runtimeConfig"]["parameterValues"]["epochs"] == 1


def test_bad_parameters_and_cron_are_refused_before_any_request(compiled, vertex):
    from bert_qa_pipeline.kubeflow.vertex_submit import schedule_vertex, submit_vertex

    with pytest.raises(ValueError, match=r"unknown pipeline parameter\(s\) epoch; the pipeline declares"):
        submit_vertex(compiled, "p", "us-central1", {"epoch": "3"}, api_endpoint=vertex.endpoint,
                      credentials=_credentials())
    with pytest.raises(ValueError, match="batch_size is an integer; got '3.5'"):
        submit_vertex(compiled, "p", "us-central1", {"batch_size": "3.5"}, api_endpoint=vertex.endpoint,
                      credentials=_credentials())
    # epochs takes a fraction of a pass (1.5): a number, not an integer.
    with pytest.raises(ValueError, match="epochs is a finite number; got 'three'"):
        submit_vertex(compiled, "p", "us-central1", {"epochs": "three"}, api_endpoint=vertex.endpoint,
                      credentials=_credentials())
    with pytest.raises(ValueError, match="5-field cron"):
        schedule_vertex(compiled, "p", "us-central1", "0 30 2 * * *", api_endpoint=vertex.endpoint,
                        credentials=_credentials())
    assert vertex.requests == []


def test_the_fake_refuses_undeclared_parameters(compiled, vertex):
    """The fake is not a yes-machine: a body with an undeclared parameter gets INVALID_ARGUMENT."""
    import json
    import urllib.error
    import urllib.request

    job = json.load(open(compiled))
    job["runtimeConfig"]["parameterValues"] = {"nope": 1}
    request = urllib.request.Request(f"{vertex.endpoint}/v1/projects/p/locations/l/pipelineJobs?pipelineJobId=x",
                                     data=json.dumps(job).encode(), method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request)
    assert err.value.code == 400
    status = json.load(err.value)["error"]  # google.rpc.Status, as the service answers
    assert (status["code"], status["status"]) == (400, "INVALID_ARGUMENT")
    [violation] = status["details"][0]["fieldViolations"]
    assert violation["field"] == "pipeline_job.runtime_config.parameter_values"
    assert "['nope'] are not declared" in violation["description"]
    vertex.enforced.discard("declared_parameters")  # the refusal is that rule's
    assert urllib.request.urlopen(request).status == 200


def test_cli_submit_and_schedule(compiled, vertex, capsys, monkeypatch):
    """`bertqa submit` / `schedule --target vertex` end to end (the fake stands in for Google)."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    from bert_qa_cli.main import main

    def no_credentials(*args, **kwargs):
        raise DefaultCredentialsError("not found")

    monkeypatch.setattr(google.auth, "default", no_credentials)
    base = ["--target", "vertex", "--compiled", compiled, "--project", "p", "--api-endpoint", vertex.endpoint]
    assert main(["submit", *base]) == 1  # bad input (bert_qa_cli.exit_codes): the machine's setup
    assert "no Google Cloud credentials" in capsys.readouterr().err
    # As if `gcloud auth application-default login` had been run.
    monkeypatch.setattr(google.auth, "default", lambda *args, **kwargs: (_credentials(), "my-project"))
    common = ["--target", "vertex", "--compiled", compiled, "--project", "my-project", "--region", "us-central1",
              "--api-endpoint", vertex.endpoint, "--service-account", "sa@my-project.iam.gserviceaccount.com",
              "--labels", "team=qa,env=prod", "--param", "epochs=4"]
    assert main(["submit", *common, "--no-cache", "--run-name", "manual"]) == 0
    out = capsys.readouterr().out
    assert "Submitted run projects/my-project/locations/us-central1/pipelineJobs/" in out
    assert main(["schedule", *common, "--cron", "0 3 * * 1", "--name", "weekly"]) == 0
    assert "Created schedule projects/my-project/locations/us-central1/schedules/" in capsys.readouterr().out
    [job] = vertex.bodies("pipelineJobs")
    [schedule] = vertex.bodies("schedules")
    assert job["displayName"] == "manual" and job["labels"]["env"] == "prod"
    assert job["runtimeConfig"]["parameterValues"]["epochs"] == 4
    assert schedule["cron"] == "0 3 * * 1" and schedule["displayName"] == "weekly"
    # A missing flag: exit 2 (usage); bad input: exit 1; a clear message, no traceback, no request.
    assert main(["submit", "--target", "vertex", "--compiled", compiled, "--param", "epochs=3"]) == 2
    assert "--target vertex needs --project" in capsys.readouterr().err
    assert main(["submit", *common[:-2], "--param", "epoch=3"]) == 1
    assert "unknown pipeline parameter" in capsys.readouterr().err
    assert len(vertex.requests) == 2


# -- the fake refuses what Vertex refuses, rule by rule -----------------------------------------
# Each test sends a request breaking one rule through the real aiplatform client (which checks
# none of these itself; for job ids it checks a looser pattern, noted below), asserts the fake's
# 400 INVALID_ARGUMENT reaches the caller as google.api_core's BadRequest, then switches that
# rule off (``vertex.enforced.discard``) and shows the same request accepted: the refusal comes
# from that rule, so the test fails without it.

def _client_job(compiled, **kwargs):
    """A PipelineJob made by the aiplatform client alone, bypassing our own checks
    (``parameters.coerce_params``), so the request is what the client sends."""
    from google.cloud import aiplatform

    return aiplatform.PipelineJob(display_name="bert-qa", template_path=compiled, project="p",
                                  location="us-central1", credentials=_credentials(), **kwargs)


def _init(vertex):
    from google.cloud import aiplatform

    aiplatform.init(project="p", location="us-central1", api_endpoint=vertex.endpoint, api_transport="rest",
                    credentials=_credentials())


def _refused_by_rule_only(vertex, rule, send, match):
    """``send()`` is refused with a 400 naming ``match``, and accepted once ``rule`` is off."""
    from google.api_core.exceptions import BadRequest

    with pytest.raises(BadRequest, match=match) as err:
        send()
    assert err.value.code == 400
    sent = len(vertex.requests)
    vertex.enforced.discard(rule)
    send()
    assert len(vertex.requests) == sent + 1
    vertex.enforced.add(rule)


def test_the_fake_refuses_values_of_the_wrong_type(compiled, vertex):
    _init(vertex)
    for name, value, match in [
            ("batch_size", 2.5, r"'batch_size': type mismatch: expect NUMBER_INTEGER, got 2.5"),
            ("batch_size", True, "expect NUMBER_INTEGER, got True"),
            ("batch_size", 2 ** 53, "outside the JavaScript safe integer range"),
            ("min_f1", "40", "expect NUMBER_DOUBLE, got '40'"),
            ("epochs", "1.5", "expect NUMBER_DOUBLE, got '1.5'"),
            ("input_patterns", 3, "expect STRING, got 3"),
            ("input_patterns", ["a"], r"expect STRING, got \['a'\]")]:
        _refused_by_rule_only(vertex, "parameter_types",
                              lambda: _client_job(compiled, parameter_values={name: value}).submit(), match)
    # Whole numbers are integers (a protobuf Value holds a double); ints are doubles.
    _client_job(compiled, parameter_values={"batch_size": 3, "min_f1": 40, "epochs": 1.5}).submit()
    assert vertex.bodies("pipelineJobs")[-1]["runtimeConfig"]["parameterValues"]["batch_size"] == 3


def test_the_fake_refuses_a_missing_required_parameter(compiled, vertex, tmp_path):
    import json

    job = json.load(open(compiled))
    declared = job["pipelineSpec"]["root"]["inputDefinitions"]["parameters"]["batch_size"]
    del declared["defaultValue"], declared["isOptional"]  # a required parameter
    del job["runtimeConfig"]["parameterValues"]["batch_size"]
    required = str(tmp_path / "required.json")
    json.dump(job, open(required, "w"))
    _init(vertex)
    _refused_by_rule_only(vertex, "required_parameters", lambda: _client_job(required).submit(),
                          r"required parameter 'batch_size' \(NUMBER_INTEGER\) has no value and no default")
    _client_job(required, parameter_values={"batch_size": 2}).submit()  # given: accepted


def test_the_fake_refuses_a_pipeline_root_outside_cloud_storage(compiled, vertex):
    _init(vertex)
    for root in ("/tmp/bert-qa", "s3://bucket/bert-qa", "gs:/bucket", "gs://"):
        _refused_by_rule_only(vertex, "gcs_output_directory",
                              lambda: _client_job(compiled, pipeline_root=root).submit(),
                              "Invalid Cloud Storage URI for gcs_output_directory")
    _client_job(compiled, pipeline_root="gs://other-bucket/runs").submit()


def test_the_fake_refuses_a_malformed_pipeline_job_id(compiled, vertex):
    """The client's own check is ``^[a-z][-a-z0-9]{0,127}$`` case-insensitive, so upper case
    and a 128-character id pass it and reach the service, which refuses them."""
    _init(vertex)
    for job_id in ("Nightly-Run", "a" * 128):
        _refused_by_rule_only(vertex, "pipeline_job_id", lambda: _client_job(compiled, job_id=job_id).submit(),
                              "not a valid PipelineJob id")
    job = _client_job(compiled, job_id="a" * 127)
    job.submit()
    assert job.resource_name.endswith("/pipelineJobs/" + "a" * 127)


def test_the_fake_refuses_a_malformed_cron(compiled, vertex):
    """Through schedule_vertex: its own check counts fields only, so these reach the service."""
    from bert_qa_pipeline.kubeflow.vertex_submit import schedule_vertex

    def schedule(cron):
        return schedule_vertex(compiled, "p", "us-central1", cron, api_endpoint=vertex.endpoint,
                               credentials=_credentials())

    for cron, match in [("0 25 * * *", "hour field '25' is outside 0-23"),
                        ("60 2 * * *", "minute field '60' is outside 0-59"),
                        ("0 2 0 * *", "day of month field '0' is outside 1-31"),
                        ("0 2 * 13 *", "month field '13' is outside 1-12"),
                        ("0 2 * * 8", "day of week field '8' is outside 0-7"),
                        ("*/0 * * * *", r"bad step in minute field '\*/0'"),
                        ("0 2 5-1 * *", "backwards range"),
                        ("0 2 L * *", "is not a number, range or list"),
                        ("TZ=Mars/Olympus 0 2 * * *", "'Mars/Olympus' is not an IANA time zone"),
                        ("CRON_TZ=Europe/Paris 0 30 2 * *", "hour field '30' is outside 0-23")]:
        with pytest.raises(RuntimeError, match=match):
            schedule(cron)
    for cron in ("TZ=Europe/Paris 0 2 * * *", "CRON_TZ=America/New_York 1 * * * *",
                 "*/15 9-17 * JAN-MAR mon-fri", "0 0 1,15 * 7", "5/10 * * * *"):
        schedule(cron)
    vertex.enforced.discard("cron")
    name, _ = schedule("0 25 * * *")
    assert vertex.bodies("schedules")[-1]["cron"] == "0 25 * * *" and "/schedules/" in name


def test_a_refusal_by_vertex_exits_1_with_its_reason(compiled, vertex, capsys, monkeypatch):
    """`bertqa schedule` with a cron only the service refuses: exit 1 and Vertex's reason, no traceback."""
    import google.auth

    from bert_qa_cli.main import main
    from bert_qa_pipeline.kubeflow import cron

    monkeypatch.setattr(google.auth, "default", lambda *args, **kwargs: (_credentials(), "p"))
    # `bertqa schedule` refuses an hour of 25 itself (tests/test_cli_errors.py); here only the service does.
    monkeypatch.setattr(cron, "vertex_cron", lambda expr: expr)
    base = ["--target", "vertex", "--compiled", compiled, "--project", "p", "--api-endpoint", vertex.endpoint]
    assert main(["schedule", *base, "--cron", "0 25 * * *"]) == 1
    err = capsys.readouterr().err
    assert "bertqa schedule: error: Vertex AI refused the request" in err and "hour field '25' is outside 0-23" in err
    assert "Traceback" not in err
    assert len(vertex.bodies("schedules")) == 1
    # No service at the endpoint: exit 1, "could not reach", no traceback.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    assert main(["submit", "--target", "vertex", "--compiled", compiled, "--project", "p",
                 "--api-endpoint", closed]) == 1
    err = capsys.readouterr().err
    assert "bertqa submit: error: could not reach Vertex AI to start the run" in err and "Traceback" not in err
