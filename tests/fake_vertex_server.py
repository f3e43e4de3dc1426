"""A fake Vertex AI REST endpoint on 127.0.0.1 for the real ``aiplatform`` client (no network).

Answers what ``PipelineJob.submit`` and ``PipelineJob.create_schedule`` send (``POST
.../pipelineJobs``, ``POST .../schedules``) and records every request body, so tests can read
what would reach Google: service account, network, labels, parameter values, cron. It checks
what the service checks on these fields: parameter values must be declared runtime parameters
of the pipeline spec (else 400 INVALID_ARGUMENT).
"""
from __future__ import annotations

import http.server
import json
import threading
from typing import List, Tuple


class FakeVertex:
    def __init__(self):
        self.requests: List[Tuple[str, str, dict]] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _reply(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                fake.requests.append(("POST", self.path, body))
                path = self.path.split("?", 1)[0]
                parent = path[len("/v1/"):].rsplit("/", 1)[0]
                if path.endswith("/pipelineJobs"):
                    problem = _undeclared(body)
                    if problem:
                        return self._reply(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": problem}})
                    job_id = self.path.split("pipelineJobId=", 1)[1].split("&", 1)[0]
                    return self._reply(200, {**body, "name": f"{parent}/pipelineJobs/{job_id}",
                                             "state": "PIPELINE_STATE_PENDING"})
                if path.endswith("/schedules"):
                    problem = _undeclared(body.get("createPipelineJobRequest", {}).get("pipelineJob", {}))
                    if problem:
                        return self._reply(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": problem}})
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


def _undeclared(job: dict) -> str:
    declared = job.get("pipelineSpec", {}).get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    unknown = sorted(set(job.get("runtimeConfig", {}).get("parameterValues", {})) - set(declared))
    return f"parameters {unknown} are not declared by the pipeline" if unknown else ""


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
