"""A fake Vertex AI REST endpoint on 127.0.0.1 for the real ``aiplatform`` client (no network).

Answers what ``PipelineJob.submit`` and ``PipelineJob.create_schedule`` send (``POST
.../pipelineJobs``, ``POST .../schedules``) and records every request body, so tests can read
what would reach Google: service account, network, labels, parameter values, cron.

It refuses, at request time, what the service refuses on these fields, with the answer the
service gives (HTTP 400, a ``google.rpc.Status`` JSON body: code 400, status
INVALID_ARGUMENT, a ``google.rpc.BadRequest`` detail naming each field), so the real client
raises ``google.api_core.exceptions.BadRequest``. The rules, each named in ``RULES`` so a test
can switch one off (``fake.enforced.discard(name)``) and show that its refusal depends on it:

- ``pipeline_job_id``: the id in ``?pipelineJobId=`` (when given);
- ``gcs_output_directory``: the pipeline root must be a ``gs://`` URI;
- ``declared_parameters``: every value names a declared runtime parameter;
- ``required_parameters``: every required parameter is given;
- ``parameter_types``: every value has its declared ``parameterType``;
- ``cron``: a schedule's cron is a 5-field unix cron, optionally ``TZ=``/``CRON_TZ=`` prefixed.

Sources: googleapis/googleapis@f8291d2b google/cloud/aiplatform/v1/{pipeline_job,
pipeline_service,schedule}.proto and the REST reference built from them
(https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.pipelineJobs);
the runtime-parameter rules are those of the PipelineSpec IR the job carries
(kubeflow/pipelines@7b70c7b9 api/v2alpha1/pipeline_spec.proto), whose open-source backend
applies them the same way (backend/src/v2/driver/resolve.go). Vertex's own validator is not
public: where it is stricter or looser than these documents, this fake does not know.
"""
from __future__ import annotations

import http.server
import json
import re
import threading
import urllib.parse
import zoneinfo
from typing import List, Optional, Tuple

RULES = ("pipeline_job_id", "gcs_output_directory", "declared_parameters", "required_parameters",
         "parameter_types", "cron")

Violation = Tuple[str, str]  # (field path as the service names it, description)


class FakeVertex:
    def __init__(self):
        self.requests: List[Tuple[str, str, dict]] = []
        self.enforced = set(RULES)  # a test may discard one to show what it refuses
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _reply(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _refuse(self, violations: List[Violation]):
                # google.rpc.Status as the REST surface returns it (https://cloud.google.com/apis/
                # design/errors#http_mapping): INVALID_ARGUMENT is HTTP 400; the field-level reasons
                # in a google.rpc.BadRequest detail, as Vertex reports "Invalid value at
                # 'pipeline_job....'" errors.
                return self._reply(400, {"error": {
                    "code": 400, "status": "INVALID_ARGUMENT",
                    "message": "; ".join(f"{field}: {text}" for field, text in violations),
                    "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                                 "fieldViolations": [{"field": field, "description": text}
                                                     for field, text in violations]}]}})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                fake.requests.append(("POST", self.path, body))
                path, _, query = self.path.partition("?")
                parent = path[len("/v1/"):].rsplit("/", 1)[0]
                if path.endswith("/pipelineJobs"):
                    job_id = (urllib.parse.parse_qs(query).get("pipelineJobId") or [""])[0]
                    violations = fake.job_id_violations(job_id) + fake.job_violations(body, "pipeline_job")
                    if violations:
                        return self._refuse(violations)
                    job_id = job_id or f"fake-{len(fake.requests)}"
                    return self._reply(200, {**body, "name": f"{parent}/pipelineJobs/{job_id}",
                                             "state": "PIPELINE_STATE_PENDING"})
                if path.endswith("/schedules"):
                    job = body.get("createPipelineJobRequest", {}).get("pipelineJob", {})
                    violations = (fake.cron_violations(body)
                                  + fake.job_violations(job, "schedule.create_pipeline_job_request.pipeline_job"))
                    if violations:
                        return self._refuse(violations)
                    return self._reply(200, {**body, "name": f"{parent}/schedules/{len(fake.requests)}",
                                             "state": "ACTIVE"})
                return self._reply(404, {"error": {"code": 404, "message": f"no fake for {path}"}})

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def bodies(self, kind: str) -> List[dict]:
        return [body for _, path, body in self.requests if path.split("?", 1)[0].endswith("/" + kind)]

    def close(self):
        self._server.shutdown()

    # -- the rules ------------------------------------------------------------------------------

    def job_id_violations(self, job_id: str) -> List[Violation]:
        # CreatePipelineJobRequest.pipeline_job_id, googleapis google/cloud/aiplatform/v1/
        # pipeline_service.proto:353-359 (REST: the pipelineJobId query parameter of
        # projects.locations.pipelineJobs.create): "should be less than 128 characters, and
        # valid characters are /[a-z][0-9]-/" -- lower-case letters, digits, '-', at most 127.
        # A leading '-' is refused too (the first character as [a-z0-9]; the documents list
        # characters only, and the aiplatform client refuses a leading '-' itself).
        if "pipeline_job_id" not in self.enforced or not job_id:
            return []
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,126}", job_id):
            return [("pipeline_job_id", f"{job_id!r} is not a valid PipelineJob id: use less than 128 "
                                        f"characters among a-z, 0-9 and '-' (not first)")]
        return []

    def job_violations(self, job: dict, prefix: str) -> List[Violation]:
        runtime = job.get("runtimeConfig", {})
        violations: List[Violation] = []
        if "gcs_output_directory" in self.enforced:
            # PipelineJob.RuntimeConfig.gcs_output_directory, pipeline_job.proto:76-83:
            # "Required. A path in a Cloud Storage bucket" (the service answers a non-gs:// root
            # with "Invalid Cloud Storage URI for gcs_output_directory", as reported in
            # GoogleCloudPlatform/vertex-ai-samples#424).
            root = runtime.get("gcsOutputDirectory", "")
            if not re.fullmatch(r"gs://[a-z0-9][a-z0-9._-]{1,221}[a-z0-9](/.*)?", root or ""):
                violations.append((f"{prefix}.runtime_config.gcs_output_directory",
                                   f"Invalid Cloud Storage URI for gcs_output_directory: {root!r} "
                                   f"(a gs://BUCKET/PATH is required)"))
        declared = job.get("pipelineSpec", {}).get("root", {}).get("inputDefinitions", {}).get("parameters", {})
        values = runtime.get("parameterValues", {})
        if "declared_parameters" in self.enforced:
            # RuntimeConfig.parameter_values, pipeline_job.proto:85-92: "passed into
            # PipelineJob.pipeline_spec to replace the placeholders" -- a name the spec does not
            # declare has no placeholder.
            unknown = sorted(set(values) - set(declared))
            if unknown:
                violations.append((f"{prefix}.runtime_config.parameter_values",
                                   f"parameters {unknown} are not declared by the pipeline"))
        if "required_parameters" in self.enforced:
            # ComponentInputsSpec.ParameterSpec.is_optional, kubeflow/pipelines
            # api/v2alpha1/pipeline_spec.proto:212-221: "If required, the parameter should either
            # have a default value, or have to be able to resolve to a concrete value at runtime"
            # -- for the root's inputs, a runtime value (backend/src/v2/driver/resolve.go:187-193:
            # "neither value nor default value provided for non-optional parameter").
            for name, spec in sorted(declared.items()):
                if name not in values and "defaultValue" not in spec and not spec.get("isOptional"):
                    violations.append((f"{prefix}.runtime_config.parameter_values",
                                       f"required parameter {name!r} ({spec.get('parameterType')}) "
                                       f"has no value and no default"))
        if "parameter_types" in self.enforced:
            for name, value in sorted(values.items()):
                if name in declared:
                    problem = _type_problem(value, declared[name].get("parameterType") or declared[name].get("type"))
                    if problem:
                        violations.append((f"{prefix}.runtime_config.parameter_values[{name!r}]",
                                           f"parameter {name!r}: {problem}"))
        return violations

    def cron_violations(self, schedule: dict) -> List[Violation]:
        # Schedule.cron, googleapis google/cloud/aiplatform/v1/schedule.proto:69-78: required
        # (the time_specification oneof), "Cron schedule (https://en.wikipedia.org/wiki/Cron)",
        # optionally prefixed "CRON_TZ=${IANA_TIME_ZONE}" or "TZ=${IANA_TIME_ZONE}", the zone
        # "a valid string from IANA time zone database"; the unix-cron fields of
        # https://cloud.google.com/vertex-ai/docs/pipelines/schedule-pipeline-run.
        if "cron" not in self.enforced:
            return []
        problem = cron_problem(schedule.get("cron"))
        return [("schedule.cron", problem)] if problem else []


# -- parameter types: ParameterType.ParameterTypeEnum, kubeflow/pipelines
# api/v2alpha1/pipeline_spec.proto:420-448, checked against the google.protobuf.Value kind the
# way backend/src/v2/driver/resolve.go:202-252 does ("input parameter %q type mismatch").

_SAFE_INTEGER = 2 ** 53 - 1  # pipeline_spec.proto:432-435: "within the range of JavaScript safe integers"


def _type_problem(value, parameter_type: Optional[str]) -> str:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if value is None:  # resolve.go:223-228 "got null for input parameter"
        return "got null"
    if parameter_type == "NUMBER_INTEGER":
        # An integer "stored in the `number_field`, which is of type `double`": a whole number.
        if not number or not float(value).is_integer():
            return f"type mismatch: expect NUMBER_INTEGER, got {value!r}"
        if abs(value) > _SAFE_INTEGER:
            return f"NUMBER_INTEGER {value!r} is outside the JavaScript safe integer range"
        return ""
    if parameter_type == "NUMBER_DOUBLE":
        return "" if number else f"type mismatch: expect NUMBER_DOUBLE, got {value!r}"
    wanted = {"STRING": str, "BOOLEAN": bool, "LIST": list, "STRUCT": dict}.get(parameter_type or "")
    if wanted is not None and not isinstance(value, wanted):
        return f"type mismatch: expect {parameter_type}, got {value!r}"
    return ""


# -- cron: the five unix-cron fields (https://en.wikipedia.org/wiki/Cron#CRON_expression, the
# page Schedule.cron points to): minute 0-59, hour 0-23, day of month 1-31, month 1-12 or
# JAN-DEC, day of week 0-6 or SUN-SAT (7 also Sunday); each field a comma list of `*`, N, N-M,
# each with an optional /STEP (STEP >= 1). The non-standard extensions on that page (@daily, L,
# W, #, ?) and a sixth (seconds) field are refused.

_CRON_FIELDS = (("minute", 0, 59, ()), ("hour", 0, 23, ()), ("day of month", 1, 31, ()),
                ("month", 1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT",
                                  "NOV", "DEC")),
                ("day of week", 0, 7, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")))


def _cron_value(text: str, low: int, names: tuple) -> Optional[int]:
    if text.upper() in names:
        return names.index(text.upper()) + low
    return int(text) if text.isdigit() else None


def cron_problem(cron) -> str:
    """Why Vertex would refuse this Schedule.cron ('' when it would not)."""
    if not isinstance(cron, str) or not cron.strip():
        return "cron is required"
    fields = cron.split()
    if fields[0].startswith(("TZ=", "CRON_TZ=")):
        zone = fields.pop(0).split("=", 1)[1]
        if zone not in zoneinfo.available_timezones():
            return f"{zone!r} is not an IANA time zone"
    if len(fields) != 5:
        return f"a cron has 5 fields (minute hour day-of-month month day-of-week), got {len(fields)} in {cron!r}"
    for text, (name, low, high, names) in zip(fields, _CRON_FIELDS):
        for item in text.split(","):
            span, slash, step = item.partition("/")
            if slash and not (step.isdigit() and int(step) >= 1):
                return f"bad step in {name} field {text!r}"
            if span == "*":
                continue
            first, dash, last = span.partition("-")
            start, end = _cron_value(first, low, names), _cron_value(last if dash else first, low, names)
            if start is None or end is None:
                return f"{name} field {text!r} is not a number, range or list"
            if not (low <= start <= high and low <= end <= high):
                return f"{name} field {text!r} is outside {low}-{high}"
            if start > end:
                return f"{name} field {text!r} is a backwards range"
    return ""


# -- Vertex ML Metadata artifact filters (what a compiled resolver task queries) ----------------
# The subset of AIP-160 that Vertex documents for ListArtifacts and TFX's compiler emits:
# clauses joined by AND, each ``field=value`` with field schema_title, state, name or
# ``metadata.<key>.string_value|number_value``. Anything else is refused, so a filter this
# matcher does not understand fails the test instead of passing it.

def _clause_value(text: str):
    text = text.strip()
    if text.startswith('"'):
        return json.loads(text)
    if text == "LIVE":
        return "LIVE"
    return float(text)


def artifact_matches(query: str, artifact: dict) -> bool:
    """Whether a Vertex artifact (``schemaTitle``, ``state``, ``name``, ``metadata``) matches."""
    for clause in query.split(" AND "):
        field, sep, value = clause.partition("=")
        if not sep:
            raise ValueError(f"unsupported filter clause {clause!r}")
        field, value = field.strip(), _clause_value(value)
        if field == "schema_title":
            actual = artifact["schemaTitle"]
        elif field in ("state", "name"):
            actual = artifact.get(field, "LIVE" if field == "state" else None)
        elif field.startswith("metadata.") and field.count(".") == 2:
            _, key, kind = field.split(".")
            if kind not in ("string_value", "number_value"):
                raise ValueError(f"unsupported metadata value kind in {clause!r}")
            actual = artifact.get("metadata", {}).get(key)
            if kind == "number_value" and not isinstance(actual, (int, float)):
                return False
            if kind == "string_value" and not isinstance(actual, str):
                return False
        else:
            raise ValueError(f"unsupported filter field in {clause!r}")
        if actual != value:
            return False
    return True
