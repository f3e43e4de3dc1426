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
    with pytest.raises(ValueError, match="epochs is an integer; got 'three'"):
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


def test_cli_submit_and_schedule(compiled, vertex, capsys, monkeypatch):
    """`bertqa submit` / `schedule --target vertex` end to end (the fake stands in for Google)."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    from bert_qa_cli.main import main

    def no_credentials(*args, **kwargs):
        raise DefaultCredentialsError("not found")

    monkeypatch.setattr(google.auth, "default", no_credentials)
    base = ["--target", "vertex", "--compiled", compiled, "--project", "p", "--api-endpoint", vertex.endpoint]
    assert main(["submit", *base]) == 2
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
    # Bad input: a clear message and exit 2, no traceback, no request.
    assert main(["submit", "--target", "vertex", "--compiled", compiled, "--param", "epochs=3"]) == 2
    assert "--target vertex needs --project" in capsys.readouterr().err
    assert main(["submit", *common[:-2], "--param", "epoch=3"]) == 2
    assert "unknown pipeline parameter" in capsys.readouterr().err
    assert len(vertex.requests) == 2
