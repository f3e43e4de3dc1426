"""The container entrypoint of every task compiled for open-source Kubeflow Pipelines 2.x.

TFX's V2 entrypoint (``tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor``) is
written for Vertex AI Pipelines, whose launcher hands it every artifact with its declared type
and a ``gs://`` URI that TensorFlow can open. KFP's own driver and launcher hand over something
else, and each difference fails every task (kubeflow/pipelines at 7b70c7b, "HEAD" below; the
same code in the releases named):

1. Extra outputs. With log publishing on (the default since KFP 2.5), the driver adds an output
   ``executor-logs`` typed ``system.Artifact`` to every task (backend/src/v2/driver/driver.go:
   746-758, provisionOutputs; 2.5.0 driver.go:2031). The launcher writes the task's log there
   itself (launcher_v2.go:632 getLogWriter, 538 qualifyExecutorLogsURI). TFX parses every
   output and cannot import ``system.Artifact``. We drop every output the component does not
   declare.
2. Untyped inputs. Artifacts resolved from upstream tasks come from ML Metadata with
   ``type: {instanceSchema: ""}`` (metadata/client.go:1144 ``Schema: ""`` in
   GetOutputArtifactsByExecutionId, copied by ToRuntimeArtifact at client.go:245-259; the
   driver uses them in resolve.go:1009-1015). TFX's ``yaml.safe_load("")`` gives None and
   fails (tensorflow/tfx#7768). We take each input's type from the compiled component spec
   (TFX passes it as ``--json_serialized_inputs_spec_args``) where the schema is empty or absent.
3. Object-store URIs. Artifact URIs are ``gs://``, ``s3://`` or ``minio://`` under the pipeline
   root. The launcher downloads inputs to, and uploads outputs from, the local paths of
   LocalPathForURI (launcher_v2.go:1239-1253: ``gs://`` -> ``/gcs/``, ``minio://`` ->
   ``/minio/``, ``s3://`` -> ``/s3/``; a set ``customPath`` wins, 1255-1263; downloads
   927-1004, uploads 778-856). TensorFlow 2.21 has no s3 or minio file system, so TFX cannot
   open those URIs. We hand the executor the local paths, and report the original URIs back
   (the launcher takes an output's URI from our output metadata, mergeRuntimeArtifacts at
   1188-1206, then uploads from LocalPathForURI of that URI: a local path there would be
   recorded in ML Metadata and never uploaded).
4. Output metadata. We write it where ``outputs.outputFile`` says: ``/tmp/kfp_outputs/
   output_metadata.json`` up to KFP 2.14 (launcher_v2.go ``OutputMetadataFilepath``), and
   ``LocalPathForURI(task root)/output_metadata.json`` since 2.15 (driver.go:791-799). The
   launcher reads it with protojson (1208-1237): unknown fields fail, so only ExecutorOutput
   fields are written.

Also seen in what the launcher hands over, and harmless to TFX: inputs named by their ML
Metadata id (``name: "17"``), their custom properties as ``metadata`` with every number a
double (converter.go:181-224) and ``display_name`` / ``store_session_info`` added
(client.go:1234-1247).

These rules hold for KFP 2.0 through the commit above; what changed across releases (the
outputFile path, the ``executor-logs`` output) is read from the ExecutorInput, not assumed.
``tests/test_kfp_launcher.py`` ports the driver's and launcher's rules, with these line
references, and runs every task of the compiled YAML through this entrypoint.

Vertex AI Pipelines keeps TFX's entrypoint: only ``bertqa compile --target kfp`` names this one.
Usage (what the compiled spec runs): ``python -m bert_qa_pipeline.kubeflow.kfp_task_entrypoint
--bertqa_outputs_spec_args JSON <TFX's own arguments>``. Exit status: 0 done, 1 what the launcher
or the user handed over cannot be used (the message says what), otherwise the executor's failure.
"""
from __future__ import annotations

import copy
import json
import os
import sys
from typing import Dict, List, Optional, Tuple

from bert_qa import _env  # noqa: F401  (before TensorFlow)
from absl import app

from bert_qa.errors import InputError

OUTPUTS_SPEC_FLAG = "--bertqa_outputs_spec_args"
INVOCATION_FLAG = "--json_serialized_invocation_args"
INPUTS_SPEC_FLAG = "--json_serialized_inputs_spec_args"
TFX_ENTRYPOINT_MODULE = "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"
THIS_MODULE = "bert_qa_pipeline.kubeflow.kfp_task_entrypoint"

# LocalPathForURI (launcher_v2.go:1239-1253). oci:// (model cars) is read-only and not ours.
LAUNCHER_MOUNTS = {"gs": "gcs", "minio": "minio", "s3": "s3"}
# Where the launcher's mounts live: "/" in a KFP pod. Tests that play the launcher on one machine
# point it at a directory of their own.
MOUNT_ROOT_ENV = "BERT_QA_KFP_MOUNT_ROOT"


class LauncherInputError(ValueError):
    """What KFP's launcher handed this task cannot be mapped onto TFX's executor contract."""


def local_path_for_uri(uri: str, mount_root: str = "/") -> str:
    """launcher_v2.go:1239 LocalPathForURI, under ``mount_root``."""
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    if scheme not in LAUNCHER_MOUNTS:
        raise LauncherInputError(
            f"URI {uri!r}: KFP's launcher mounts only gs://, s3:// and minio:// URIs "
            f"(LocalPathForURI); a task cannot read or write {scheme + '://' if scheme else 'a local path'} there")
    return os.path.join(mount_root, LAUNCHER_MOUNTS[scheme], uri.split("://", 1)[1])


def _flag_value(argv: List[str], flag: str) -> Tuple[Optional[int], Optional[str]]:
    """(index of the value, value) of ``flag VALUE`` or ``flag=VALUE`` in argv."""
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return i + 1, argv[i + 1]
        if arg.startswith(flag + "="):
            return i, arg[len(flag) + 1:]
    return None, None


def _set_flag(argv: List[str], flag: str, index: int, value: str) -> None:
    argv[index] = value if argv[index - 1] == flag else f"{flag}={value}"


def _load_json(text: Optional[str], what: str) -> dict:
    if text is None:
        raise LauncherInputError(f"{what} is missing from the task's arguments")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise LauncherInputError(f"{what} is not JSON ({err}); the task's command line was "
                                 f"not filled in by KFP's launcher (placeholder {{{{$}}}})") from None
    if not isinstance(value, dict):
        raise LauncherInputError(f"{what} is {type(value).__name__}, not a JSON object")
    return value


def _has_schema(kind: Optional[dict]) -> bool:
    return bool(kind) and bool((kind.get("instanceSchema") or "").strip() or kind.get("schemaTitle"))


def _map_artifact(artifact: dict, key: str, side: str, declared_type: Optional[dict], mount_root: str,
                  remote_of: Dict[str, str]) -> dict:
    artifact = copy.deepcopy(artifact)
    if not _has_schema(artifact.get("type")):
        if declared_type is None:
            raise LauncherInputError(f"{side} artifact {key!r} arrived without a type and the component "
                                     f"declares no {side} of that name")
        artifact["type"] = copy.deepcopy(declared_type)
    uri = artifact.get("uri", "")
    if not uri:
        raise LauncherInputError(f"{side} artifact {key!r} arrived without a URI")
    # retrieveArtifactPath (launcher_v2.go:1255-1263): a customPath is where the launcher put it.
    local = artifact.get("customPath") or local_path_for_uri(uri, mount_root)
    remote_of[local] = uri
    artifact["uri"] = local
    return artifact


def adapt_executor_input(executor_input: dict, inputs_spec: dict, outputs_spec: dict,
                         mount_root: str = "/") -> Tuple[dict, Dict[str, str]]:
    """KFP's ExecutorInput -> the one TFX's entrypoint expects, and {local path: original URI}."""
    adapted = copy.deepcopy(executor_input)
    remote_of: Dict[str, str] = {}
    declared_in = inputs_spec.get("artifacts", {})
    declared_out = outputs_spec.get("artifacts", {})
    inputs = adapted.setdefault("inputs", {}).get("artifacts", {}) or {}
    for key, listed in inputs.items():
        declared = declared_in.get(key, {}).get("artifactType")
        listed["artifacts"] = [_map_artifact(a, key, "input", declared, mount_root, remote_of)
                               for a in listed.get("artifacts", [])]
    outputs = adapted.setdefault("outputs", {})
    kept = {}
    for key, listed in (outputs.get("artifacts") or {}).items():
        if key not in declared_out:
            continue  # executor-logs and whatever else the launcher manages itself
        declared = declared_out[key].get("artifactType")
        kept[key] = {"artifacts": [_map_artifact(a, key, "output", declared, mount_root, remote_of)
                                   for a in listed.get("artifacts", [])]}
    missing = sorted(set(declared_out) - set(kept))
    if missing:
        raise LauncherInputError(f"the launcher provisioned no output artifact for {missing}, "
                                 f"which the component declares")
    outputs["artifacts"] = kept
    if not outputs.get("outputFile"):
        raise LauncherInputError("the ExecutorInput names no outputs.outputFile")
    # A local path already; rebased only where a test's mount root stands for "/".
    outputs["outputFile"] = os.path.join(mount_root, outputs["outputFile"].lstrip("/"))
    return adapted, remote_of


def restore_output_uris(output_file: str, remote_of: Dict[str, str]) -> None:
    """Our output metadata names the original URIs: the launcher records and uploads those."""
    if not os.path.exists(output_file):
        return
    with open(output_file, encoding="utf-8") as f:
        output = json.load(f)
    for listed in output.get("artifacts", {}).values():
        for artifact in listed.get("artifacts", []):
            uri = artifact.get("uri", "")
            if uri in remote_of:
                artifact["uri"] = remote_of[uri]
    staging = output_file + ".tmp"
    with open(staging, "w", encoding="utf-8") as f:
        json.dump(output, f)
    os.replace(staging, output_file)


def prepare_outputs(adapted: dict) -> None:
    """What the launcher prepares (prepareOutputFolders, launcher_v2.go:1280-1306): the parent
    of each output's local path, not the path itself; and the output file's directory."""
    for listed in adapted["outputs"]["artifacts"].values():
        for artifact in listed["artifacts"]:
            os.makedirs(os.path.dirname(artifact["uri"].rstrip("/")), exist_ok=True)
    os.makedirs(os.path.dirname(adapted["outputs"]["outputFile"]) or ".", exist_ok=True)


def _fail(message: str) -> "NoReturn":  # noqa: F821
    print(f"bert-qa KFP task: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def main(argv: Optional[List[str]] = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        spec_index, outputs_text = _flag_value(argv, OUTPUTS_SPEC_FLAG)
        outputs_spec = _load_json(outputs_text, OUTPUTS_SPEC_FLAG)
        del argv[spec_index - (1 if argv[spec_index - 1] == OUTPUTS_SPEC_FLAG else 0):spec_index + 1]
        invocation_index, invocation_text = _flag_value(argv, INVOCATION_FLAG)
        executor_input = _load_json(invocation_text, f"{INVOCATION_FLAG} (the ExecutorInput)")
        _, inputs_text = _flag_value(argv, INPUTS_SPEC_FLAG)
        inputs_spec = _load_json(inputs_text, INPUTS_SPEC_FLAG) if inputs_text is not None else {}
        adapted, remote_of = adapt_executor_input(
            executor_input, inputs_spec, outputs_spec, os.environ.get(MOUNT_ROOT_ENV, "/"))
        prepare_outputs(adapted)
    except LauncherInputError as err:
        _fail(str(err))
    _set_flag(argv, INVOCATION_FLAG, invocation_index, json.dumps(adapted))

    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor as tfx_entrypoint  # lazy: TFX

    def run(parsed) -> None:
        try:
            tfx_entrypoint.main(parsed)
        except InputError as err:  # the user's data or settings: a message, not a traceback
            _fail(str(err))
        restore_output_uris(adapted["outputs"]["outputFile"], remote_of)

    app.run(run, argv=[sys.argv[0]] + argv, flags_parser=tfx_entrypoint._parse_flags)


if __name__ == "__main__":
    main()
