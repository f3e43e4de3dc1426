"""Submitting and scheduling the compiled pipeline on Vertex AI Pipelines (``aiplatform``).

Thin over ``aiplatform.PipelineJob``: the job JSON from ``bertqa compile --target vertex``,
parameters checked against it first, and the run-as identity passed explicitly to schedules
too (a schedule does not inherit the submitting job's service account or network).
"""
from __future__ import annotations

from typing import Callable, Dict, Mapping, Optional, Tuple, TypeVar

from bert_qa_pipeline.kubeflow import parameters as pipeline_parameters
from bert_qa_pipeline.kubeflow.compiled_files import read_compiled

_T = TypeVar("_T")


class VertexRefused(RuntimeError):
    """Vertex AI refused the request (e.g. 400 INVALID_ARGUMENT: a cron hour of 25, a parameter
    of the wrong type) or could not be reached: the service's reason, for `bertqa` to print
    and exit 1 on (a RuntimeError, like kfp_submit.SubmitError)."""


def _send(what: str, call: Callable[[], _T]) -> _T:
    import requests  # lazy: the Google Cloud client stack (seconds), only to send a request
    from google.api_core import exceptions as api_exceptions

    try:
        return call()
    except api_exceptions.GoogleAPICallError as err:
        code = int(err.code) if err.code is not None else "?"
        raise VertexRefused(f"Vertex AI refused the request to {what} ({code}): {err.message}") from err
    except requests.exceptions.RequestException as err:  # the REST transport's connection errors
        raise VertexRefused(f"could not reach Vertex AI to {what}: {err}") from err


def _job(spec_path: str, project: str, region: str, params: Mapping[str, object],
         labels: Optional[Dict[str, str]], enable_caching: Optional[bool], display_name: Optional[str],
         api_endpoint: Optional[str], credentials):
    import google.auth  # lazy: the Google Cloud client stack (seconds), only to submit
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import aiplatform

    # The file and the parameters first: a typo is refused before any credential lookup.
    spec = read_compiled(spec_path, "vertex")
    typed = pipeline_parameters.coerce_params(dict(params), pipeline_parameters.declared_parameters(spec))
    if credentials is None:
        try:
            credentials, _ = google.auth.default()
        except DefaultCredentialsError as err:
            raise ValueError(f"no Google Cloud credentials on this machine ({err}); run "
                             f"`gcloud auth application-default login` or set "
                             f"GOOGLE_APPLICATION_CREDENTIALS") from err
    init = {"project": project, "location": region}
    if api_endpoint:  # a private or test endpoint
        init.update(api_endpoint=api_endpoint, api_transport="rest")
    if credentials is not None:
        init["credentials"] = credentials
    aiplatform.init(**init)
    return aiplatform.PipelineJob(
        display_name=display_name or spec.get("pipelineInfo", {}).get("name", "bert-qa"),
        template_path=spec_path, parameter_values=typed, enable_caching=enable_caching,
        labels=dict(labels or {}), project=project, location=region, credentials=credentials)


def submit_vertex(spec_path: str, project: str, region: str, params: Mapping[str, object] = (),
                  service_account: Optional[str] = None, network: Optional[str] = None,
                  labels: Optional[Dict[str, str]] = None, enable_caching: Optional[bool] = None,
                  experiment: Optional[str] = None, display_name: Optional[str] = None,
                  api_endpoint: Optional[str] = None, credentials=None) -> Tuple[str, str]:
    """Starts one run; returns (PipelineJob resource name, console URL)."""
    job = _job(spec_path, project, region, dict(params), labels, enable_caching, display_name,
               api_endpoint, credentials)
    _send("start the run", lambda: job.submit(service_account=service_account, network=network,
                                              experiment=experiment))
    return job.resource_name, job._dashboard_uri()


def schedule_vertex(spec_path: str, project: str, region: str, cron: str,
                    params: Mapping[str, object] = (), max_concurrent: int = 1,
                    schedule_name: str = "bert-qa-schedule", service_account: Optional[str] = None,
                    network: Optional[str] = None, labels: Optional[Dict[str, str]] = None,
                    enable_caching: Optional[bool] = None, display_name: Optional[str] = None,
                    api_endpoint: Optional[str] = None, credentials=None) -> Tuple[str, str]:
    """A recurring run (Vertex cron: 5 fields, optionally "TZ=Europe/Paris 0 2 * * *");
    returns (Schedule resource name, console URL)."""
    if len(cron.split()) not in (5, 6) or (len(cron.split()) == 6 and not cron.startswith(("TZ=", "CRON_TZ="))):
        raise ValueError(f"Vertex schedules take a 5-field cron (optionally prefixed TZ=...), not {cron!r}")
    job = _job(spec_path, project, region, dict(params), labels, enable_caching, display_name,
               api_endpoint, credentials)
    schedule = _send("create the schedule", lambda: job.create_schedule(
        display_name=schedule_name, cron=cron, max_concurrent_run_count=max_concurrent,
        service_account=service_account, network=network))
    name = schedule.resource_name
    url = (f"https://console.cloud.google.com/vertex-ai/locations/{region}/pipelines/schedules/"
           f"{name.rsplit('/', 1)[-1]}?project={project}")
    return name, url
