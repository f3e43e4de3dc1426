"""A fake Kubeflow Pipelines API server (v2beta1 REST) that the real ``kfp.Client`` talks to.

It serves exactly what ``kfp.Client`` (kfp 2.16) calls for ``kubeflow/kfp_submit.py``:

  GET  /apis/v2beta1/healthz          Client() when no namespace is set (multi_user probe)
  GET  /apis/v2beta1/experiments      create_experiment -> get_experiment(experiment_name=...)
  POST /apis/v2beta1/experiments      create_experiment when that found none
  POST /apis/v2beta1/runs             create_run_from_pipeline_package -> run_pipeline
  GET  /apis/v2beta1/recurringruns    list_recurring_runs (schedule_kfp's duplicate-name check)
  POST /apis/v2beta1/recurringruns    create_recurring_run (pipeline_package_path: spec inline)

Every request is recorded (method, path, query, JSON body). Anything else answers 404 like
grpc-gateway's unknown route, so a client change that calls something new shows up.

Rules are the API server's, read from github.com/kubeflow/pipelines at commit
7b70c7b95f6832772efd6fd0029a4024491a0f44 (paths below are in that tree), applied in the
server's order, with its messages and its error chains (pkg/errors "outer: inner"):

* schemaVersion must be "2.1.0": backend/src/apiserver/template/v2_template.go:234-235
  ``KFP only supports schema version 2.1.0, but the pipeline spec has version %s``.
* every executor reached from the root DAG is a container or an importer:
  backend/src/v2/compiler/visitor.go:134 ``executor(label=%q): non-container and
  non-importer executor not implemented`` (run by argocompiler.Compile when the run or
  schedule is created: v2_template.go:405 / :159).
* run parameters are declared inputs of the pipeline, with values of the declared type, and
  those without default are given: v2_template.go:449-538 (validatePipelineJobInputs).
* schedules: max_concurrency 1..10 and a cron robfig/cron v1 parses (5 or 6 fields):
  backend/src/apiserver/server/api_converter.go:2085-2093.

HTTP status, as the real server answers (this differs from a naive "all 400"): parameter,
cron and concurrency errors are InvalidArgument -> 400. A bad schemaVersion on POST /runs
or /recurringruns is wrapped by ``util.NewInternalServerError`` (resource_manager.go:636 and
:1486) and a non-container executor is a plain Go error that ``util.ToGRPCError``
(backend/src/common/util/error.go:375-390) turns into codes.Internal: both are 500 from
grpc-gateway. The body is grpc-gateway's {"code", "message", "details"}; the real server
appends a Go stack trace to "Internal error: ..." messages, the fake does not.

Not modelled: auth, multi-user namespaces, pipeline uploads/versions (answered 501), paging,
filters other than display_name EQUALS, cron field ranges, run execution.
"""
from __future__ import annotations

import datetime
import http.server
import json
import re
import threading
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Optional

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

API = "/apis/v2beta1"
SCHEMA_VERSION_2_1_0 = "2.1.0"  # backend/src/apiserver/template/template.go:51

# gRPC codes and grpc-gateway's HTTP mapping (runtime.HTTPStatusFromCode).
INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, UNIMPLEMENTED, INTERNAL = 3, 5, 6, 12, 13
HTTP_STATUS = {INVALID_ARGUMENT: 400, NOT_FOUND: 404, ALREADY_EXISTS: 409, UNIMPLEMENTED: 501, INTERNAL: 500}

# Field names of the v2beta1 messages (backend/api/v2beta1/{run,recurring_run,experiment}.proto).
# The gateway unmarshals with DiscardUnknown=false (backend/src/apiserver/common/utils.go:161-165),
# so an unknown field is a 400.
RUN_FIELDS = {"experiment_id", "run_id", "display_name", "storage_state", "description", "pipeline_version_id",
              "pipeline_spec", "pipeline_version_reference", "runtime_config", "service_account", "created_at",
              "scheduled_at", "finished_at", "state", "error", "run_details", "recurring_run_id",
              "state_history", "plugins_input", "plugins_output"}
RECURRING_RUN_FIELDS = {"recurring_run_id", "display_name", "description", "pipeline_version_id", "pipeline_spec",
                        "pipeline_version_reference", "runtime_config", "service_account", "max_concurrency",
                        "trigger", "mode", "created_at", "updated_at", "status", "error", "no_catchup",
                        "namespace", "experiment_id", "plugins_input"}
EXPERIMENT_FIELDS = {"experiment_id", "display_name", "description", "created_at", "namespace", "storage_state",
                     "last_run_created_at"}
RUNTIME_CONFIG_FIELDS = {"parameters", "pipeline_root"}
TRIGGER_FIELDS = {"cron_schedule", "periodic_schedule"}
CRON_SCHEDULE_FIELDS = {"start_time", "end_time", "cron"}

# robfig/cron v1.2.0 (go.mod:42) parse: Second | Minute | Hour | Dom | Month | DowOptional | Descriptor.
CRON_DESCRIPTORS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


class GoError(Exception):
    """An error as the Go server builds it: ``internal`` is the pkg/errors chain, which
    ``UserError.GRPCStatus`` sends as the message (error.go:295); ``user`` False is a plain
    Go error, sent as "Internal error: ..." with codes.Internal (error.go:386)."""

    def __init__(self, internal: str, external: str, code: int, user: bool = True):
        super().__init__(internal)
        self.internal, self.external, self.code, self.user = internal, external, code, user

    def wrap(self, message: str) -> "GoError":  # util.Wrap / errors.Wrap keep the code
        return GoError(f"{message}: {self.internal}", self.external, self.code, self.user)

    def to_status(self) -> tuple[int, dict]:
        message = self.internal if self.user else f"Internal error: {self.internal}"
        external = self.external if self.user else message
        return HTTP_STATUS[self.code], {
            "code": self.code, "message": message,
            "details": [{"@type": "type.googleapis.com/google.rpc.Status", "code": self.code, "message": external}]}


def invalid_input(message: str) -> GoError:  # util.NewInvalidInputError
    return GoError(f"Invalid input error: {message}", message, INVALID_ARGUMENT)


def invalid_spec(message: str) -> GoError:  # util.NewInvalidInputErrorWithDetails(ErrorInvalidPipelineSpec, ...)
    return GoError(f"InvalidInputError: {message}: pipeline spec is invalid", message, INVALID_ARGUMENT)


def internal_server(error: GoError, message: str) -> GoError:  # util.NewInternalServerError
    return GoError(f"InternalServerError: {message}: {error.internal}", "Internal Server Error", INTERNAL)


def plain(message: str) -> GoError:  # fmt.Errorf: not a UserError
    return GoError(message, message, INTERNAL, user=False)


def fake_only(message: str, code: int = UNIMPLEMENTED) -> GoError:
    return GoError(f"fake KFP server: {message}", f"fake KFP server: {message}", code)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict
    body: Any


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_fields(obj: Any, allowed: set, what: str) -> None:
    if obj is None:
        return
    if not isinstance(obj, dict):
        raise GoError(f"proto: syntax error: {what} is not an object", "bad request", INVALID_ARGUMENT)
    for key in obj:
        camel_to_snake = re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()
        if key not in allowed and camel_to_snake not in allowed:  # protojson takes both spellings
            raise GoError(f'proto: unknown field "{key}"', f'proto: unknown field "{key}"', INVALID_ARGUMENT)


def _get(obj: dict, snake: str, default: Any = None) -> Any:
    """A field in either spelling protojson accepts (proto name or lowerCamel JSON name)."""
    if snake in obj:
        return obj[snake]
    camel = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), snake)
    return obj.get(camel, default)


def parse_template(struct: Any) -> pipeline_spec_pb2.PipelineSpec:
    """template.New on the run's pipeline_spec (template.go:159-171, v2_template.go:199-269)."""
    if isinstance(struct, dict) and "pipeline_spec" in struct:  # kfp sends {pipeline_spec, platform_spec}
        struct = struct["pipeline_spec"]
    spec = pipeline_spec_pb2.PipelineSpec()
    try:
        json_format.ParseDict(struct, spec)  # protojson.Unmarshal, unknown fields refused
    except (json_format.ParseError, TypeError, AttributeError):
        raise invalid_spec("unknown template format")
    if not spec.pipeline_info.name or not spec.HasField("root"):  # isPipelineSpec (template.go)
        raise invalid_spec("unknown template format")
    # v2_template.go:234-235
    if spec.schema_version != SCHEMA_VERSION_2_1_0:
        raise invalid_spec(f"KFP only supports schema version 2.1.0, but the pipeline spec has version "
                           f"{spec.schema_version}")
    return spec


def validate_inputs(spec: pipeline_spec_pb2.PipelineSpec, parameters: Optional[dict]) -> None:
    """validatePipelineJobInputs, backend/src/apiserver/template/v2_template.go:449-538."""
    declared = dict(spec.root.input_definitions.parameters)
    types = pipeline_spec_pb2.ParameterType
    if parameters is None:
        if declared:
            raise invalid_input("pipeline requiring input has no parameter(s) provided. Need parameter(s): "
                                + ", ".join(declared))
        return
    for name in sorted(declared):
        param = declared[name]
        if name not in parameters:
            if not param.is_optional and not param.HasField("default_value"):
                raise invalid_input(f"parameter {name} is not optional, yet has neither default value "
                                    f"nor user provided value")
            continue
        value, kind = parameters[name], param.parameter_type
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        checks = {
            types.NUMBER_DOUBLE: (is_number, "double or integer", "is not of number value type"),
            types.NUMBER_INTEGER: (is_number, "double or integer", "is not of number value type"),
            types.STRING: (isinstance(value, str), "string", "input parameter is not of string value type"),
            types.BOOLEAN: (isinstance(value, bool), "bool", "input parameter is not of bool value type"),
            types.LIST: (isinstance(value, list), "list", "input parameter is not of list value type"),
            types.STRUCT: (isinstance(value, dict), "struct", "input parameter is not of struct value type"),
        }
        if kind == types.PARAMETER_TYPE_ENUM_UNSPECIFIED:
            raise invalid_input(f"input parameter {name} has unspecified type")
        if kind not in checks:
            raise invalid_input(f"input parameter {name} requires type unknown")
        ok, type_name, tail = checks[kind]
        if not ok:
            middle = "but the parameter value" if kind in (types.NUMBER_DOUBLE, types.NUMBER_INTEGER) else "but the"
            raise invalid_input(f"input parameter {name} requires type {type_name}, {middle} {tail}")
    extra = [name for name in parameters if name not in declared]
    if extra:
        raise invalid_input("parameter(s) provided are not required by pipeline: " + ", ".join(extra))


def compile_executors(spec: pipeline_spec_pb2.PipelineSpec) -> None:
    """The executor check of the v2 compiler's DFS (backend/src/v2/compiler/visitor.go:89-174):
    from the root DAG, tasks in sorted order, each component once; an executor that is neither
    a container nor an importer stops the compilation."""
    deploy = pipeline_spec_pb2.PipelineDeploymentConfig()
    json_format.ParseDict(json_format.MessageToDict(spec.deployment_spec), deploy, ignore_unknown_fields=True)
    visited: set = set()

    def dfs(name: str, component) -> None:
        if name in visited:
            return
        visited.add(name)

        def component_error(message: str) -> GoError:
            return plain(f"error processing component name={json.dumps(name)}: {message}")

        label = component.executor_label
        if label:
            if label not in deploy.executors:
                raise component_error(f"executor(label={json.dumps(label)}) not found in deployment config")
            if deploy.executors[label].WhichOneof("spec") in ("container", "importer"):
                return
            raise component_error(f"executor(label={json.dumps(label)}): non-container and non-importer "
                                  f"executor not implemented")
        if not component.HasField("dag"):
            raise component_error("unknown component implementation")
        for key in sorted(component.dag.tasks):
            ref = component.dag.tasks[key].component_ref.name
            if ref not in spec.components:
                raise component_error(f"cannot find component ref name={json.dumps(ref)}")
            dfs(ref, spec.components[ref])

    dfs("root", spec.root)


def check_cron(cron: str) -> None:
    """robfig/cron v1.2.0 ``cron.Parse`` as toModelJob calls it (api_converter.go:2088-2092):
    descriptors or 5-6 fields (seconds first, day-of-week optional). Field ranges unchecked."""
    def refuse(error: str) -> GoError:
        return invalid_input(f"Schedule cron is not a supported format(https://godoc.org/github.com/robfig/cron). "
                             f"Error: {error}")
    if cron.startswith("@"):
        if cron in CRON_DESCRIPTORS or cron.startswith("@every "):
            return
        raise refuse(f"Unrecognized descriptor: {cron}")
    count = len(cron.split())
    if count == 0:
        raise refuse("Empty spec string")
    if not 5 <= count <= 6:
        raise refuse(f"Expected 5 to 6 fields, found {count}: {cron}")


def _parse_filter(query: dict) -> Callable[[dict], bool]:
    raw = query.get("filter", [""])[0]
    if not raw:
        return lambda obj: True
    try:
        predicates = json.loads(raw).get("predicates", [])
    except (ValueError, AttributeError):
        raise invalid_input(f"failed to parse valid filter from {raw!r}")
    tests = []
    for predicate in predicates:
        operation, key = predicate.get("operation"), predicate.get("key")
        value = _get(predicate, "string_value")
        if operation not in (1, "EQUALS") or key not in ("display_name", "name") or value is None:
            raise fake_only(f"filter predicate {predicate} is not modelled (display_name EQUALS only)")
        tests.append(lambda obj, value=value: obj.get("display_name") == value)
    return lambda obj: all(test(obj) for test in tests)


class FakeKfpServer:
    """The fake on 127.0.0.1 at a free port; ``with FakeKfpServer() as fake: fake.url``."""

    def __init__(self, multi_user: bool = False):
        self.multi_user = multi_user
        self.requests: list[Recorded] = []
        self.experiments: dict[str, dict] = {}
        self.runs: dict[str, dict] = {}
        self.recurring_runs: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._server: Optional[http.server.ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._routes = [
            ("GET", re.compile(rf"{API}/healthz"), self._healthz),
            ("GET", re.compile(rf"{API}/experiments"), self._list_experiments),
            ("POST", re.compile(rf"{API}/experiments"), self._create_experiment),
            ("POST", re.compile(rf"{API}/runs"), self._create_run),
            ("GET", re.compile(rf"{API}/recurringruns"), self._list_recurring_runs),
            ("POST", re.compile(rf"{API}/recurringruns"), self._create_recurring_run),
            ("POST", re.compile(rf"{API}/pipelines/upload(_version)?"), self._not_modelled),
        ]

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeKfpServer":
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-kfp", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None

    def __enter__(self) -> "FakeKfpServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- inspection --------------------------------------------------------------------------
    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests]

    def bodies(self, method: str, path: str) -> list:
        return [r.body for r in self.requests if r.method == method and r.path == path]

    # -- dispatch ----------------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, body: Any) -> tuple[int, dict]:
        parsed = urllib.parse.urlsplit(raw_path)
        query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        with self._lock:
            self.requests.append(Recorded(method, parsed.path, query, body))
            for route_method, pattern, action in self._routes:
                if route_method == method and pattern.fullmatch(parsed.path):
                    try:
                        return 200, action(query, body)
                    except GoError as error:
                        return error.to_status()
        return 404, {"code": NOT_FOUND, "message": "Not Found", "details": []}

    # -- endpoints ---------------------------------------------------------------------------
    def _healthz(self, query, body) -> dict:
        return {"multi_user": self.multi_user, "pipeline_store": "database"}

    def _not_modelled(self, query, body) -> dict:
        raise fake_only("pipeline uploads are not modelled; kfp_submit sends the spec inline")

    def _list_experiments(self, query, body) -> dict:
        keep = _parse_filter(query)
        namespace = query.get("namespace", [""])[0]
        found = [e for e in self.experiments.values()
                 if keep(e) and (not namespace or e.get("namespace", "") == namespace)]
        return {"experiments": found, "total_size": len(found)} if found else {}

    def _create_experiment(self, query, body) -> dict:
        _check_fields(body, EXPERIMENT_FIELDS, "experiment")
        body = body or {}
        name, namespace = _get(body, "display_name", ""), body.get("namespace", "") or ""
        if not name:  # api_converter.go toModelExperiment
            raise internal_server(invalid_input("Experiment must have a non-empty name"),
                                  "Failed to convert API experiment to model experiment").wrap(
                "[ExperimentServer]: Failed to create a experiment due to conversion error")
        if any(e["display_name"] == name and e.get("namespace", "") == namespace for e in self.experiments.values()):
            # The experiments table's unique (Name, Namespace) index; message is the fake's wording.
            raise fake_only(f"experiment {name!r} already exists in namespace {namespace!r}", ALREADY_EXISTS)
        experiment = {"experiment_id": str(uuid.uuid4()), "display_name": name, "namespace": namespace,
                      "description": body.get("description") or "", "created_at": _now(),
                      "storage_state": "AVAILABLE"}
        self.experiments[experiment["experiment_id"]] = experiment
        return experiment

    def _experiment(self, experiment_id: str, wrap: str) -> None:
        if not experiment_id:
            raise fake_only("runs without experiment_id (the server's default experiment) are not modelled",
                            INVALID_ARGUMENT)
        if experiment_id not in self.experiments:
            raise GoError(f"ResourceNotFoundError: Experiment {experiment_id} not found",
                          f"Experiment {experiment_id} not found", NOT_FOUND).wrap(wrap)

    @staticmethod
    def _fetch_template(obj: dict) -> pipeline_spec_pb2.PipelineSpec:
        """ResourceManager.fetchTemplateFromPipelineSpec (resource_manager.go:2165-2205) for an
        inline spec; its callers wrap what it raises as an internal server error."""
        if _get(obj, "pipeline_version_reference") or _get(obj, "pipeline_version_id"):
            raise fake_only("pipeline versions are not modelled; send pipeline_spec inline")
        source = _get(obj, "pipeline_spec")
        if not source:
            raise invalid_input("Failed to fetch a template with an empty pipeline spec manifest")
        try:
            return parse_template(source)
        except GoError as error:
            raise error.wrap("Failed to fetch a template with an invalid pipeline spec manifest")

    def _create_run(self, query, body) -> dict:
        """RunServer.CreateRun (run_server.go:514-540) -> createRun (:138-160) ->
        ResourceManager.CreateRun (resource_manager.go:620-667) -> V2Spec.RunWorkflow."""
        outer = "Failed to create a new run"
        _check_fields(body, RUN_FIELDS, "run")
        run = body or {}
        runtime_config = _get(run, "runtime_config") or {}
        _check_fields(runtime_config, RUNTIME_CONFIG_FIELDS, "runtime_config")
        if not _get(run, "display_name"):
            raise invalid_input("The run name is empty. Please specify a valid name").wrap(
                "Failed to create a run due to invalid name").wrap(outer)
        self._experiment(_get(run, "experiment_id", ""),
                         f"{outer}: Failed to create a run due to invalid experimentId and namespace combination")
        try:
            spec = self._fetch_template(run)
        except GoError as error:
            if error.code == UNIMPLEMENTED:
                raise
            raise internal_server(error, "Failed to create a run due to error fetching manifest").wrap(outer)
        try:
            validate_inputs(spec, _get(runtime_config, "parameters"))
        except GoError as error:
            raise error.wrap("invalid pipeline job inputs").wrap("Failed to generate the ExecutionSpec").wrap(outer)
        try:
            compile_executors(spec)
        except GoError as error:
            raise error.wrap("Failed to compile job").wrap("Failed to generate the ExecutionSpec").wrap(outer)
        stored = dict(run, run_id=str(uuid.uuid4()), state="PENDING", storage_state="AVAILABLE",
                      created_at=_now())
        self.runs[stored["run_id"]] = stored
        return stored

    def _list_recurring_runs(self, query, body) -> dict:
        keep = _parse_filter(query)
        experiment_id = query.get("experiment_id", [""])[0]
        found = [r for r in self.recurring_runs.values()
                 if keep(r) and (not experiment_id or r.get("experiment_id") == experiment_id)]
        # The proto field is literally ``recurringRuns`` (backend/api/v2beta1/recurring_run.proto,
        # ListRecurringRunsResponse), so that is its JSON name even with UseProtoNames.
        return {"recurringRuns": found, "total_size": len(found)} if found else {}

    def _create_recurring_run(self, query, body) -> dict:
        """JobServer.CreateRecurringRun (job_server.go:320-340): toModelJob (api_converter.go)
        -> createJob (:97-120) -> ResourceManager.CreateJob (resource_manager.go:1462-1501)."""
        outer = "Failed to create a recurring run"
        _check_fields(body, RECURRING_RUN_FIELDS, "recurring_run")
        job = body or {}
        runtime_config = _get(job, "runtime_config") or {}
        _check_fields(runtime_config, RUNTIME_CONFIG_FIELDS, "runtime_config")
        trigger = _get(job, "trigger") or {}
        _check_fields(trigger, TRIGGER_FIELDS, "trigger")
        cron_schedule = _get(trigger, "cron_schedule")
        _check_fields(cron_schedule, CRON_SCHEDULE_FIELDS, "cron_schedule")
        conversion = f"{outer} due to conversion error"
        if not _get(job, "display_name"):
            raise internal_server(invalid_input("Recurring run's name cannot be empty"),
                                  "Failed to convert a API recurring run to its internal representation").wrap(conversion)
        max_concurrency = int(_get(job, "max_concurrency", 0) or 0)  # int64: JSON number or string
        if not 1 <= max_concurrency <= 10:
            raise invalid_input(f"Max concurrency of a recurring run must be at least 1 and at most 10. "
                                f"Received {max_concurrency}").wrap(conversion)
        if cron_schedule is not None:
            try:
                check_cron(str(_get(cron_schedule, "cron", "")))
            except GoError as error:
                raise error.wrap(conversion)
        self._experiment(_get(job, "experiment_id", ""),
                         f"{outer}: Failed to create a recurring run due to invalid experimentId and namespace "
                         f"combination")
        try:
            spec = self._fetch_template(job)
        except GoError as error:
            if error.code == UNIMPLEMENTED:
                raise
            raise internal_server(error, "Failed to create a recurring run with an invalid pipeline spec "
                                         "manifest").wrap(outer)
        during = "Failed to create a recurring run during scheduled workflow creation"
        try:
            validate_inputs(spec, _get(runtime_config, "parameters"))
        except GoError as error:
            raise error.wrap("invalid pipeline job inputs").wrap(during).wrap(outer)
        try:
            compile_executors(spec)
        except GoError as error:
            raise error.wrap("Failed to compile job").wrap(during).wrap(outer)
        enabled = _get(job, "mode", "MODE_UNSPECIFIED") in ("ENABLE", 1)
        stored = dict(job, recurring_run_id=str(uuid.uuid4()), status="ENABLED" if enabled else "DISABLED",
                      created_at=_now(), updated_at=_now())
        self.recurring_runs[stored["recurring_run_id"]] = stored
        return stored


class _Handler(http.server.BaseHTTPRequestHandler):
    fake: FakeKfpServer
    protocol_version = "HTTP/1.1"

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError as error:
            status, payload = 400, {"code": INVALID_ARGUMENT, "message": f"proto: syntax error: {error}",
                                    "details": []}
        else:
            status, payload = self.fake.handle(method, self.path, body)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def log_message(self, format: str, *args) -> None:  # requests are recorded, not printed
        pass
