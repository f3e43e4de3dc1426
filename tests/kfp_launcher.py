"""Kubeflow Pipelines 2.x's driver and launcher, played on this machine, rule by rule.

Each rule is ported from kubeflow/pipelines' Go sources at commit 7b70c7b ("HEAD"), cited by
file and line (paths under backend/src/v2/). What a KFP API-server fake never shows is here:
what a task's container actually receives and what becomes of what it writes.

* An "object store" is a directory: ``<store>/<scheme>/<bucket>/<key>`` holds the blob of
  ``<scheme>://<bucket>/<key>``.
* A "pod" is a fresh directory per task, standing for the container's file system root: the
  launcher's mounts ``/gcs/``, ``/s3/``, ``/minio/`` live under it, and the task's process gets
  it as ``BERT_QA_KFP_MOUNT_ROOT`` (the entrypoint's stand-in for "/"). Nothing survives from
  one task to the next but the store and the ML Metadata records.
* "ML Metadata" is a list of recorded artifacts with MLMD-typed custom properties.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from typing import Dict, List, Optional

from google.protobuf import json_format

# driver/driver.go:746-758: the log output every task gets when log publishing is on (default).
EXECUTOR_LOGS = "executor-logs"
# component/launcher_v2.go:526 (HEAD; 2.0-2.14 use it for every task): the fallback output file.
LEGACY_OUTPUT_FILE = "/tmp/kfp_outputs/output_metadata.json"
# component/launcher_v2.go:1239-1253 LocalPathForURI.
MOUNTS = {"gs": "gcs", "minio": "minio", "s3": "s3"}


def local_path_for_uri(uri: str) -> Optional[str]:
    """launcher_v2.go:1239-1253; None where the Go code returns its error."""
    scheme, _, rest = uri.partition("://")
    if not _ or scheme not in MOUNTS:
        return None
    return f"/{MOUNTS[scheme]}/{rest}"


def generate_output_uri(root: str, *paths: str) -> str:
    """metadata/client.go:391-406 GenerateOutputURI (query string dropped)."""
    root = root.split("?", 1)[0]
    return f"{root.rstrip('/')}/{'/'.join(p.strip('/') for p in paths)}"


def struct_value_to_mlmd(value):
    """metadata/converter.go:137-178 StructValueToMLMDValue: what an output's metadata becomes."""
    if isinstance(value, bool):
        return {"int_value": int(value)}
    if isinstance(value, str):
        return {"string_value": value}
    if isinstance(value, (int, float)):
        return {"double_value": float(value)}
    if isinstance(value, list):
        return {"struct_value": {"list": value}}
    if isinstance(value, dict):
        return {"struct_value": {"struct": value}}
    # converter.go:174-176 "TODO: support null": the launcher fails to record the artifact.
    raise LauncherFailure(f"unknown/unsupported value type for metadata value {value!r}")


def mlmd_to_metadata_value(value: dict):
    """metadata/converter.go:195-215 toRuntimeArtifact: every number comes back a double."""
    (kind, v), = value.items()
    if kind in ("int_value", "double_value"):
        return float(v)
    return v


class LauncherFailure(RuntimeError):
    """What fails the task in KFP's driver or launcher (not in the user's container)."""


class Launcher:
    """Runs compiled tasks as KFP 2.x does, one fresh process and one fresh "pod" per task."""

    def __init__(self, spec: dict, pipeline_root: str, workdir: str, run_id: str = "run-1",
                 publish_logs: bool = True, env: Optional[dict] = None, parameters: Optional[dict] = None,
                 python: str = sys.executable, repo_root: str = "", timeout_s: int = 600):
        self.spec, self.workdir, self.publish_logs = spec, workdir, publish_logs
        self.store = os.path.join(workdir, "store")
        # metadata/client.go:420: the tasks' root is <pipeline root>/<pipeline name>/<run id>.
        self.root = generate_output_uri(pipeline_root, spec["pipelineInfo"]["name"], run_id)
        self.env, self.parameters = dict(env or {}), dict(parameters or {})
        self.python, self.repo_root, self.timeout_s = python, repo_root, timeout_s
        self.mlmd: List[dict] = []
        self.logs: Dict[str, str] = {}

    # ---- the object store -------------------------------------------------------------------
    def blob_path(self, uri: str) -> str:
        scheme, _, rest = uri.partition("://")
        return os.path.join(self.store, scheme, rest)

    def read_blob(self, uri: str, name: str = "") -> bytes:
        path = os.path.join(self.blob_path(uri), name) if name else self.blob_path(uri)
        with open(path, "rb") as f:
            return f.read()

    # ---- the driver ---------------------------------------------------------------------------
    def component(self, task_name: str) -> dict:
        task = self.spec["root"]["dag"]["tasks"][task_name]
        return self.spec["components"][task["componentRef"]["name"]]

    def _parameter_values(self, task_name: str) -> dict:
        task = self.spec["root"]["dag"]["tasks"][task_name]
        declared = self.spec["root"].get("inputDefinitions", {}).get("parameters", {})
        values = {}
        for name, value in task["inputs"].get("parameters", {}).items():
            if "runtimeValue" in value:
                values[name] = value["runtimeValue"]["constant"]
            else:
                source = value["componentInputParameter"]
                if source in self.parameters:
                    values[name] = self.parameters[source]
                elif "defaultValue" in declared.get(source, {}):
                    values[name] = declared[source]["defaultValue"]
                else:
                    raise LauncherFailure(f"pipeline parameter {source!r} has no value")
        # launcher_v2.go:1310 addDefaultParams: the component's own defaults where none was given.
        for name, definition in self.component(task_name).get("inputDefinitions", {}).get("parameters", {}).items():
            if name not in values and "defaultValue" in definition:
                values[name] = definition["defaultValue"]
        return values

    def _resolved_inputs(self, task_name: str) -> dict:
        """driver/resolve.go:1009-1015 collectContainerOutput -> metadata/client.go:1113-1147
        GetOutputArtifactsByExecutionId (``Schema: ""``) -> client.go:245-259 ToRuntimeArtifact."""
        task = self.spec["root"]["dag"]["tasks"][task_name]
        artifacts = {}
        for name, value in task["inputs"].get("artifacts", {}).items():
            source = value["taskOutputArtifact"]
            found = [a for a in self.mlmd if a["producer"] == source["producerTask"]
                     and a["output_key"] == source["outputArtifactKey"]]
            if not found:
                raise LauncherFailure(f"{task_name}: no artifact {source} in ML Metadata")
            artifact = found[-1]
            artifacts[name] = {"artifacts": [{
                "name": str(artifact["id"]),  # converter.go:187: the MLMD id
                "uri": artifact["uri"],
                "type": {"instanceSchema": ""},  # client.go:1144
                "metadata": {k: mlmd_to_metadata_value(v) for k, v in artifact["custom_properties"].items()},
            }]}
        return artifacts

    def executor_input(self, task_name: str) -> dict:
        """driver/driver.go:733-801 provisionOutputs, and the resolved inputs."""
        outputs_spec = self.component(task_name).get("outputDefinitions", {}).get("artifacts", {})
        artifacts = dict(outputs_spec)
        if self.publish_logs:  # driver.go:746-758
            artifacts[EXECUTOR_LOGS] = {"artifactType": {"schemaTitle": "system.Artifact"}}
        task_root = generate_output_uri(self.root, task_name, str(uuid.uuid4()))  # driver.go:767
        outputs = {name: {"artifacts": [{
            "name": name,  # driver.go:775
            "uri": generate_output_uri(task_root, name),  # driver.go:778
            "type": spec["artifactType"],
            **({"metadata": spec["metadata"]} if spec.get("metadata") else {}),
        }]} for name, spec in artifacts.items()}
        local_root = local_path_for_uri(task_root)  # driver.go:791-799
        if local_root is None:  # the legacy file is outside any pod directory: not played here
            raise LauncherFailure(f"pipeline root {self.root!r}: no launcher mount (LocalPathForURI)")
        output_file = f"{local_root}/output_metadata.json"
        return {"inputs": {"parameterValues": self._parameter_values(task_name),
                           "artifacts": self._resolved_inputs(task_name)},
                "outputs": {"artifacts": outputs, "outputFile": output_file}}

    # ---- the launcher -------------------------------------------------------------------------
    def _in_pod(self, pod: str, path: str) -> str:
        return os.path.join(pod, path.lstrip("/"))

    def _copy(self, source: str, destination: str) -> None:
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        if os.path.isdir(source):
            shutil.copytree(source, destination, dirs_exist_ok=True)
        else:
            shutil.copy2(source, destination)

    def _download_inputs(self, executor_input: dict, pod: str) -> None:
        """launcher_v2.go:927-1004 downloadArtifacts."""
        for listed in executor_input["inputs"]["artifacts"].values():
            for artifact in listed["artifacts"]:
                local = artifact.get("customPath") or local_path_for_uri(artifact["uri"])
                if local is None:
                    continue  # launcher_v2.go:958-962: unrecognized scheme, not downloaded
                blob = self.blob_path(artifact["uri"])
                if not os.path.exists(blob):
                    raise LauncherFailure(f"failed to download input artifact from {artifact['uri']}")
                self._copy(blob, self._in_pod(pod, local))

    def _prepare_output_folders(self, executor_input: dict, pod: str) -> None:
        """launcher_v2.go:1280-1306: the parent of each output's local path (not the path)."""
        for name, listed in executor_input["outputs"]["artifacts"].items():
            for artifact in listed["artifacts"]:
                local = artifact.get("customPath") or local_path_for_uri(artifact["uri"])
                if local is None:
                    raise LauncherFailure(f"failed to generate local storage path for output artifact {name!r}")
                os.makedirs(os.path.dirname(self._in_pod(pod, local)), exist_ok=True)

    def _executor_output(self, path: str) -> dict:
        """launcher_v2.go:1208-1237 getExecutorOutputFile: absent is empty; protojson is strict."""
        from kfp.pipeline_spec import pipeline_spec_pb2

        if not os.path.exists(path):
            return {"artifacts": {}, "parameterValues": {}}
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            message = json_format.Parse(text, pipeline_spec_pb2.ExecutorOutput())  # no unknown fields
        except json_format.ParseError as err:
            raise LauncherFailure(f"failed to unmarshall ExecutorOutput in file {path!r}: {err}") from None
        return json_format.MessageToDict(message)

    def _upload_and_record(self, task_name: str, executor_input: dict, executor_output: dict, pod: str) -> dict:
        """launcher_v2.go:778-856 uploadOutputArtifacts, with 1188-1206 mergeRuntimeArtifacts and
        metadata/client.go:1204-1265 RecordArtifact (converter.go:110-135 toMLMDArtifact)."""
        recorded = {}
        for name, listed in executor_input["outputs"]["artifacts"].items():
            for artifact in listed["artifacts"]:
                artifact = json.loads(json.dumps(artifact))
                if name != EXECUTOR_LOGS:  # launcher_v2.go:803-808
                    reported = executor_output.get("artifacts", {}).get(name, {}).get("artifacts", [])
                    if reported:
                        src = reported[0]
                        if src.get("uri"):
                            artifact["uri"] = src["uri"]
                        if src.get("metadata") is not None:
                            artifact["metadata"] = {**artifact.get("metadata", {}), **src["metadata"]}
                        if src.get("customPath"):
                            artifact["customPath"] = src["customPath"]
                local = artifact.get("customPath") or local_path_for_uri(artifact["uri"])
                if local is None:
                    pass  # launcher_v2.go:812-818: "Skipping uploading to remote storage", still recorded
                else:
                    source = self._in_pod(pod, local)
                    if os.path.exists(source):
                        self._copy(source, self.blob_path(artifact["uri"]))
                    elif name == EXECUTOR_LOGS:
                        continue  # launcher_v2.go:826-832
                kind = artifact["type"]
                schema = kind.get("instanceSchema") if "instanceSchema" in kind else f"title: {kind['schemaTitle']}"
                import yaml

                title = (yaml.safe_load(schema) or {}).get("title", "")
                if not title:  # client.go:1195-1202 SchemaToArtifactType: glog.Fatal
                    raise LauncherFailure(f"output {name!r}: no title in its artifact schema")
                properties = {k: struct_value_to_mlmd(v) for k, v in artifact.get("metadata", {}).items()
                              if k != "_kfp_workspace"}
                properties.setdefault("display_name", {"string_value": name})  # client.go:1234-1237
                properties.setdefault("store_session_info", {"string_value": json.dumps(
                    {"Provider": artifact["uri"].split("://")[0], "Params": {}})})  # client.go:1241-1247
                record = {"id": len(self.mlmd) + 1, "producer": task_name, "output_key": name,
                          "type": title, "uri": artifact["uri"], "custom_properties": properties}
                self.mlmd.append(record)
                recorded[name] = record
        return recorded

    def run_task(self, task_name: str, command: Optional[List[str]] = None,
                 args: Optional[List[str]] = None) -> dict:
        """One task: driver, launcher, the container's command in a fresh process and pod.

        Returns the recorded outputs (MLMD records by output key); raises LauncherFailure with
        the container's log when the container exits non-zero, as the task would fail.
        """
        executor_input = self.executor_input(task_name)
        pod = os.path.join(self.workdir, "pods", f"{task_name}-{uuid.uuid4().hex[:6]}")
        os.makedirs(pod)
        self._download_inputs(executor_input, pod)
        self._prepare_output_folders(executor_input, pod)
        label = self.component(task_name)["executorLabel"]
        container = self.spec["deploymentSpec"]["executors"][label]["container"]
        # launcher_v2.go:1051-1075 compileCmdAndArgs: {{$}} is the whole ExecutorInput.
        argv = list(command or container["command"]) + [
            json.dumps(executor_input) if a == "{{$}}" else a for a in (args or container["args"])]
        if argv[0] != "python":
            raise LauncherFailure(f"{task_name}: command {argv[0]!r} is not the image's python")
        argv[0] = self.python
        env = {k: v for k, v in os.environ.items() if k not in ("TF_USE_LEGACY_KERAS", "TF_NUM_INTEROP_THREADS",
                                                              "BERT_QA_SET_TF_NUM_INTEROP_THREADS")}
        env.update({e["name"]: e["value"] for e in container.get("env", [])})  # driver.go:293
        env.update(self.env, BERT_QA_KFP_MOUNT_ROOT=pod, PYTHONPATH=self.repo_root)
        output_file = executor_input["outputs"]["outputFile"]
        proc = subprocess.run(argv, env=env, cwd=self.repo_root or None, capture_output=True, text=True,
                              timeout=self.timeout_s)
        log = proc.stdout + proc.stderr
        self.logs[task_name] = log
        if self.publish_logs:  # launcher_v2.go:632-655: the log goes to executor-logs' local path
            logs_uri = executor_input["outputs"]["artifacts"][EXECUTOR_LOGS]["artifacts"][0]["uri"]
            path = self._in_pod(pod, local_path_for_uri(logs_uri))
            with open(path, "w", encoding="utf-8") as f:
                f.write(log)
        if proc.returncode != 0:
            # launcher_v2.go:445-456: only executor-logs is uploaded and recorded on failure.
            raise LauncherFailure(f"{task_name} exited {proc.returncode}:\n{log[-6000:]}")
        executor_output = self._executor_output(self._in_pod(pod, output_file))
        return self._upload_and_record(task_name, executor_input, executor_output, pod)
