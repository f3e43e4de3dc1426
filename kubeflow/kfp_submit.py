"""Submits the compiled pipeline (``compile --target kfp``) to a Kubeflow Pipelines cluster.

One run (``submit_kfp``) or a cron schedule (``schedule_kfp``), both through the real
``kfp.Client`` against the cluster's v2beta1 API. Parameters are checked against the spec's
declared runtime parameters and typed here first: the API server refuses undeclared names and
strings for numbers ("requires type double or integer"), but only after the request is made
and with a less helpful message than the list of names the pipeline does declare.
"""
from __future__ import annotations

import contextlib
import datetime
import io
import json
import logging
import warnings
from typing import Iterator, Optional

from bert_qa_pipeline.kubeflow import cron as cron_rules
from bert_qa_pipeline.kubeflow.compiled_files import read_compiled
from bert_qa_pipeline.kubeflow.parameters import coerce_params, declared_parameters

logger = logging.getLogger(__name__)

# The Kubeflow Pipelines UI's routes (frontend/src/components/Router.tsx: RUN_DETAILS,
# RECURRING_RUN_DETAILS), behind the same address as the API when port-forwarded.
RUN_URL = "{host}/#/runs/details/{run_id}"
RECURRING_RUN_URL = "{host}/#/recurringrun/details/{recurring_run_id}"

# The API server refuses other values: "Max concurrency of a recurring run must be at least 1
# and at most 10" (backend/src/apiserver/server/api_converter.go, toModelJob).
MAX_CONCURRENCY_RANGE = (1, 10)



class SubmitError(RuntimeError):
    """The cluster refused the request or could not be reached; ``status`` is the HTTP status
    (None when unreachable) and ``server_message`` the API server's own message."""

    def __init__(self, message: str, status: Optional[int] = None, server_message: Optional[str] = None):
        super().__init__(message)
        self.status = status
        self.server_message = server_message


def load_pipeline_spec(spec_path: str) -> dict:
    """The PipelineSpec in ``spec_path``: the first YAML document, as ``kfp.Client`` reads it.

    Refuses the Vertex PipelineJob JSON early: ``kfp.Client`` only takes YAML packages, and
    that file's resolver tasks cannot run on Kubeflow Pipelines anyway.
    """
    # By its content, not its name: plain text called .json is not "the Vertex PipelineJob".
    return read_compiled(spec_path, "kfp")


def to_kfp_cron(expr: str) -> str:
    """A cron expression in the 6-field form Kubeflow's scheduler reads (seconds first).

    Kubeflow parses with robfig/cron v1, whose optional sixth field would make a user's
    5-field "30 2 * * *" mean "second 30 of minute 2 of every hour"; it becomes "0 30 2 * * *".
    """
    # robfig/cron v1.2.0's field rules too (kubeflow/cron.py): "61 25 * * *" is refused here.
    return cron_rules.kfp_cron(expr)


def _check_host(host: str) -> str:
    """The API address with its scheme: ``kfp.Client`` would otherwise assume https, which a
    ``kubectl port-forward`` (http) does not serve."""
    if not host.startswith(("http://", "https://")):
        raise ValueError(f"host {host!r} needs its scheme, e.g. http://localhost:8080 for a port-forward")
    return host.rstrip("/")


def _server_message(error) -> str:
    """The API server's own message out of a kfp_server_api.ApiException (grpc-gateway body)."""
    body = getattr(error, "body", None)
    if body:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        try:
            return str(json.loads(text).get("message", text))
        except (ValueError, AttributeError):
            return text
    return str(getattr(error, "reason", "") or error)


@contextlib.contextmanager
def _talking_to(host: str, action: str) -> Iterator[None]:
    """API failures as one SubmitError naming the cluster, the action and the server's message;
    kfp's own status lines (it prints links on stdout) go to the log, the caller prints ours."""
    import kfp_server_api  # lazy: kfp's client stack (seconds), only to talk to a cluster
    import urllib3

    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter):
            yield
    except kfp_server_api.ApiException as error:
        message = _server_message(error)
        raise SubmitError(f"Kubeflow Pipelines at {host} refused to {action} (HTTP {error.status}): {message}",
                          status=error.status, server_message=message) from error
    except urllib3.exceptions.HTTPError as error:
        raise SubmitError(f"cannot reach Kubeflow Pipelines at {host} to {action}: {error}") from error
    finally:
        if chatter.getvalue().strip():
            logger.info("kfp: %s", chatter.getvalue().strip())


def _client(host: str, namespace: Optional[str]):
    """``kfp.Client`` for ``host``; the namespace is passed only when given, so a namespace set
    with ``kfp`` before (its context file) still applies otherwise."""
    import kfp  # lazy: kfp (seconds), only to talk to a cluster

    kwargs = {"host": host}
    if namespace:
        kwargs["namespace"] = namespace
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="This client only works with", category=FutureWarning)
        return kfp.Client(**kwargs)


def _prepare(spec_path: str, host: str, params: dict) -> tuple[dict, str, dict]:
    spec = load_pipeline_spec(spec_path)
    arguments = coerce_params(dict(params or {}), declared_parameters(spec))
    return spec, _check_host(host), arguments


def submit_kfp(spec_path: str, host: str, params: dict, experiment: str = "bert-qa",
               namespace: str | None = None, run_name: str | None = None,
               enable_caching: bool | None = None) -> tuple[str, str]:
    """Starts one run of the compiled pipeline; returns (run id, the run's page in the KFP UI).

    The experiment is created when missing. ``enable_caching`` None keeps the compiled
    per-task caching; True/False overrides it for every task. Parameters are validated
    before any request is made.
    """
    spec, host, arguments = _prepare(spec_path, host, params)
    pipeline_name = spec.get("pipelineInfo", {}).get("name", "pipeline")
    run_name = run_name or f"{pipeline_name} {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H-%M-%S}"
    with _talking_to(host, f"start run {run_name!r}"):
        client = _client(host, namespace)
        result = client.create_run_from_pipeline_package(
            spec_path, arguments=arguments, run_name=run_name, experiment_name=experiment,
            namespace=namespace, enable_caching=enable_caching)
    return result.run_id, RUN_URL.format(host=host, run_id=result.run_id)


def schedule_kfp(spec_path: str, host: str, params: dict, cron: str, experiment: str = "bert-qa",
                 namespace: str | None = None, name: str = "bert-qa-nightly", max_concurrent: int = 1,
                 enable_caching: bool | None = None) -> tuple[str, str]:
    """Creates a recurring run of the compiled pipeline on ``cron`` (5 or 6 fields); returns
    (recurring run id, its page in the KFP UI).

    The spec is sent inline, so the schedule keeps running this exact spec. Missed runs are not
    replayed (no_catchup): a nightly training paused for a week resumes with one run, not
    seven. A second schedule with the same name in the experiment is refused, since both
    would run every night.
    """
    kfp_cron = to_kfp_cron(cron)
    low, high = MAX_CONCURRENCY_RANGE
    if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or not low <= max_concurrent <= high:
        raise ValueError(f"max_concurrent must be an integer from {low} to {high} "
                         f"(the Kubeflow Pipelines API's limit), not {max_concurrent!r}")
    if not name or not name.strip():
        raise ValueError("the schedule needs a name")
    _, host, arguments = _prepare(spec_path, host, params)
    with _talking_to(host, f"create schedule {name!r}"):
        client = _client(host, namespace)
        experiment_id = client.create_experiment(name=experiment, namespace=namespace).experiment_id
        same_name = json.dumps({"predicates": [
            {"operation": "EQUALS", "key": "display_name", "stringValue": name}]})
        existing = client.list_recurring_runs(experiment_id=experiment_id, filter=same_name).recurring_runs or []
        if existing:
            raise ValueError(f"experiment {experiment!r} already has a recurring run named {name!r} "
                             f"(id {existing[0].recurring_run_id}); delete it or choose another name")
        recurring = client.create_recurring_run(
            experiment_id=experiment_id, job_name=name, cron_expression=kfp_cron,
            max_concurrency=max_concurrent, no_catchup=True, params=arguments,
            pipeline_package_path=spec_path, enable_caching=enable_caching)
    return recurring.recurring_run_id, RECURRING_RUN_URL.format(host=host, recurring_run_id=recurring.recurring_run_id)
