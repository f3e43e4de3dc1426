"""Compiles the pipeline for Vertex AI Pipelines or Kubeflow Pipelines with TFX's KubeflowV2DagRunner.

The DAG is the one ``bertqa run`` executes (``pipeline.pipeline.create_pipeline``); only the
locations change: the pipeline root and push destination become cluster URIs, and data
paths inside this repository become paths inside the image (``kubeflow/Dockerfile`` copies
the repository to ``/pipeline``). The default encoder is resolved inside the container
(the image converts and caches it at build time). On Kubeflow Pipelines, whose backend runs
container and importer tasks only, the baseline is the newest published model instead of
TFX's MLMD resolver. Nothing is submitted.
"""
from __future__ import annotations

import copy
import dataclasses
import glob
import json
import os
import tempfile
from typing import Optional

import yaml

from bert_qa import _env  # noqa: F401
from bert_qa.errors import InputError
from bert_qa_pipeline.components import keys
from bert_qa_pipeline.components.custom_job import is_tpu_pool
from bert_qa_pipeline.kubeflow import kfp_task_entrypoint as entrypoint
from bert_qa_pipeline.kubeflow import resources as step_resources
from bert_qa_pipeline.pipeline.config import REPO_ROOT, PipelineConfig
from bert_qa_pipeline.pipeline.errors import CompileError

CONTAINER_REPO_ROOT = "/pipeline"


def to_container_path(path: str, repo_root: str = REPO_ROOT, container_root: str = CONTAINER_REPO_ROOT) -> str:
    """Paths inside this repository -> the same file inside the image; others unchanged."""
    if "://" in path:
        return path
    absolute = os.path.abspath(path)
    if absolute == repo_root or absolute.startswith(repo_root + os.sep):
        return container_root + absolute[len(repo_root):]
    return path


def container_config(config: PipelineConfig) -> PipelineConfig:
    config = copy.deepcopy(config)
    data = config.data
    data.train = [to_container_path(p) for p in data.train]
    data.eval = [to_container_path(p) for p in data.eval]
    data.patterns = [to_container_path(p) for p in data.patterns]
    if config.model.encoder:
        config.model.encoder = to_container_path(config.model.encoder)
    return config


def fill_custom_job_image(config: PipelineConfig, image: str, gpu_image: Optional[str] = None,
                          tpu_image: Optional[str] = None) -> None:
    """``train.vertex_custom_job.image`` "" -> the pipeline's image (its GPU / TPU variant when
    the worker pools have such accelerators and one was given): the CustomJob's containers run
    QaTrainer's executor from the same code."""
    job = config.train.vertex_custom_job
    if not job.enabled or job.image:
        return
    pools = [dataclasses.asdict(p) for p in job.worker_pools]
    if any(is_tpu_pool(p) for p in pools):
        if not tpu_image:
            raise CompileError("train.vertex_custom_job.worker_pools has a TPU pool, but no --tpu-image was "
                               "given and train.vertex_custom_job.image is empty: the CPU image has no libtpu "
                               "(kubeflow/Dockerfile, TPU image)")
        job.image = tpu_image
    elif any(p["accelerator_count"] for p in pools):
        if not gpu_image:
            raise CompileError("train.vertex_custom_job.worker_pools has GPUs, but no --gpu-image was given and "
                               "train.vertex_custom_job.image is empty: the CPU image has no CUDA libraries "
                               "(docker build --target gpu)")
        job.image = gpu_image
    else:
        job.image = image


TARGETS = ("vertex", "kfp")
# Kubeflow Pipelines runs only these executor kinds (backend/src/v2/compiler/visitor.go:
# "non-container and non-importer executor not implemented"); Vertex also runs TFX resolvers.
KFP_EXECUTOR_KINDS = ("container", "importer")
SCHEMA_VERSION = "2.1.0"  # what the Kubeflow Pipelines API server accepts (v2_template.go)


# Pipeline roots a target's tasks can use: Vertex reads and writes Cloud Storage; Kubeflow's
# launcher mounts gs://, s3:// and minio:// (LocalPathForURI, launcher_v2.go:1239-1253; any other
# scheme fails prepareOutputFolders before the task starts, 1280-1306).
ROOT_SCHEMES = {"vertex": ("gs",), "kfp": ("gs", "s3", "minio")}


def _bucket(uri: str) -> str:
    return uri.split("://", 1)[1].split("/", 1)[0] if "://" in uri else ""


def check_pipeline_root(target: str, pipeline_root: str) -> None:
    """Refuse roots the target's workers cannot read (a local path on a cluster, an unknown scheme)."""
    from bert_qa_pipeline.components.object_store import scheme_of  # lazy: loads TensorFlow (seconds)

    scheme = scheme_of(pipeline_root)
    allowed = ROOT_SCHEMES[target]
    if target == "vertex" and scheme != "gs":
        raise CompileError(f"Vertex AI Pipelines reads and writes its pipeline root on Cloud Storage; "
                           f"{pipeline_root!r} is not a gs:// URI")
    if not scheme:
        raise CompileError(f"Kubeflow Pipelines runs tasks in cluster pods that cannot read the local path "
                           f"{pipeline_root!r}; use object storage (gs://, s3://, minio://)")
    if scheme not in allowed:
        raise CompileError(f"--pipeline-root {pipeline_root!r}: Kubeflow's launcher mounts only gs://, s3:// "
                           f"and minio:// artifact URIs (LocalPathForURI); a task could not read or write "
                           f"{scheme}://")
    if not _bucket(pipeline_root):
        raise CompileError(f"--pipeline-root {pipeline_root!r} names no bucket")


def check_push_destination(destination: str) -> None:
    """The push destination is written by TflitePusher itself (no launcher mounts it):
    gs:// through TensorFlow, s3:// through s3fs (components/object_store.py)."""
    from bert_qa_pipeline.components import object_store  # lazy: loads TensorFlow (seconds)

    if not object_store.scheme_of(destination):
        raise CompileError(f"--push-destination {destination!r}: the cluster's pods cannot write a local path; "
                           f"use gs:// or s3://")
    try:
        object_store.check_destination(destination, "--push-destination")
    except InputError as err:
        raise CompileError(str(err)) from None


def check_cluster_paths(config: PipelineConfig) -> None:
    """Data and encoder locations a task in the image can read (after ``container_config``):
    a path inside the image (/pipeline/..., from this repository), gs:// (TensorFlow reads it),
    or, for the encoder, a TF Hub handle. TensorFlow 2.21 cannot read s3:// or minio://."""
    from bert_qa_pipeline.components.object_store import scheme_of  # lazy: loads TensorFlow (seconds)

    locations = [(f"data.{split}", p) for split in ("train", "eval") for p in getattr(config.data, split)]
    locations += [("data.patterns", p) for p in config.data.patterns]
    if config.model.encoder:
        locations.append(("model.encoder", config.model.encoder))
    for key, location in locations:
        scheme = scheme_of(location)
        if scheme == "gs":
            if not _bucket(location):
                raise CompileError(f"{key}: {location!r} names no bucket")
            continue
        if key == "model.encoder" and scheme in ("http", "https"):
            continue  # a TF Hub handle, resolved by tensorflow_hub inside the task
        if scheme:
            raise CompileError(f"{key}: {location!r}: tasks read inputs with TensorFlow, which has no "
                               f"{scheme}:// file system here; copy it to gs:// or into this repository's data/")
        if not location.startswith(CONTAINER_REPO_ROOT + "/"):
            raise CompileError(f"{key}: {location!r} is a path on this machine, which the cluster's pods cannot "
                               f"read; copy it to gs:// or into this repository (the image holds it at "
                               f"{CONTAINER_REPO_ROOT})")
        local = REPO_ROOT + location[len(CONTAINER_REPO_ROOT):]
        if not glob.glob(local):
            raise CompileError(f"{key}: {location!r} would be {local!r} in the image, which does not exist")


def baseline_for(target: str, config: PipelineConfig) -> str:
    """``evaluation.baseline`` for the target (Kubeflow runs no resolver tasks)."""
    baseline = config.baseline(runs_resolvers=target != "kfp")
    if target == "kfp" and baseline == "latest_blessed":
        raise CompileError("evaluation.baseline=latest_blessed needs TFX's resolver, which Kubeflow "
                           "Pipelines cannot run (container and importer tasks only); use "
                           "latest_published (the newest pushed model, re-scored) or none")
    return baseline


def set_parameter_defaults(job: dict, defaults: dict) -> None:
    """Runtime parameters' defaults, which TFX's V2 compiler drops: in the PipelineSpec (what
    Kubeflow Pipelines and Vertex read: ``defaultValue``, ``isOptional``) and in the job's
    ``runtimeConfig.parameterValues`` (what ``aiplatform.PipelineJob`` starts from)."""
    declared = job["pipelineSpec"]["root"].get("inputDefinitions", {}).get("parameters", {})
    missing = sorted(set(defaults) - set(declared))
    if missing:
        raise RuntimeError(f"runtime parameters {missing} are not in the compiled spec's inputs")
    for name, value in defaults.items():
        declared[name]["defaultValue"] = value
        declared[name]["isOptional"] = True
    job.setdefault("runtimeConfig", {})["parameterValues"] = dict(defaults)


def scope_baseline_query(spec: dict, pipeline_name: str) -> int:
    """Keeps TFX's latest-blessed-model query to this pipeline's blessings.

    On Vertex the resolver is a query over the region's whole ML Metadata store, so without this
    the newest blessing of any pipeline in the project would be the baseline. QaEvaluator records
    the pipeline name on its blessing (``BLESSING_PIPELINE_KEY``), which Vertex keeps as artifact
    metadata; the filter syntax is AIP-160's ``metadata.<key>.string_value``. Returns how many
    queries were scoped.
    """
    from bert_qa_pipeline.components.artifacts import BLESSING_PIPELINE_KEY  # lazy: loads TFX (seconds)

    scoped = 0
    for executor in spec["deploymentSpec"]["executors"].values():
        for query in executor.get("resolver", {}).get("outputArtifactQueries", {}).values():
            if 'schema_title="tfx.ModelBlessing"' in query["filter"]:
                query["filter"] += (f' AND metadata.{BLESSING_PIPELINE_KEY}.string_value='
                                    f'{json.dumps(pipeline_name)}')
                scoped += 1
    return scoped


# Inter-op threads per step, set in each container's environment (PipelineContainerSpec.env: the
# KFP driver copies it into the pod, backend/src/v2/driver/driver.go:293; Vertex sets it on the
# task's container). The trainer takes one inter-op thread: seeded training then repeats bit
# for bit (bert_qa/_env.py says why), and cluster tasks of a CustomJob drop it again (TF_CONFIG).
# The other steps take TensorFlow's default pool ("0"): windowing, evaluation and conversion run
# no gradient, so their results do not depend on kernel order, and they run faster side by side.
STEP_INTEROP_THREADS = {name: "1" if name == keys.QA_TRAINER else "0" for name in keys.COMPONENTS}
INTEROP_ENV = "TF_NUM_INTEROP_THREADS"
INTEROP_MARK_ENV = "BERT_QA_SET_TF_NUM_INTEROP_THREADS"  # bert_qa/_env.py: "set by us, drop on clusters"


def set_step_environment(spec: dict, plans) -> None:
    """Each step's container ``env``: its thread setting (see STEP_INTEROP_THREADS), then the
    variables of ``resources.<step>.env``."""
    executors = spec["deploymentSpec"]["executors"]
    for component, threads in STEP_INTEROP_THREADS.items():
        container = executors[step_resources.executor_label(component)]["container"]
        env = [e for e in container.get("env", []) if e["name"] not in (INTEROP_ENV, INTEROP_MARK_ENV)]
        env.append({"name": INTEROP_ENV, "value": threads})
        if threads == "1":
            env.append({"name": INTEROP_MARK_ENV, "value": "1"})
        step = plans.get(component)
        env.extend({"name": name, "value": value} for name, value in sorted((step.env if step else {}).items()))
        container["env"] = env


def use_kfp_task_entrypoint(spec: dict) -> int:
    """Every container task runs our KFP entrypoint (``kubeflow/kfp_task_entrypoint.py``), which
    turns what KFP's driver and launcher hand over into what TFX's executors expect; it needs the
    component's declared outputs, which the compiled arguments otherwise lack. Returns how many
    tasks it rewrote."""
    outputs_of = {c["executorLabel"]: c.get("outputDefinitions", {}) for c in spec["components"].values()}
    rewritten = 0
    for label, executor in spec["deploymentSpec"]["executors"].items():
        container = executor.get("container")
        if container is None:
            continue
        if container["command"] != ["python", "-m", entrypoint.TFX_ENTRYPOINT_MODULE]:
            raise RuntimeError(f"{label}: unexpected TFX container command {container['command']}")
        container["command"] = ["python", "-m", entrypoint.THIS_MODULE]
        container["args"] = [entrypoint.OUTPUTS_SPEC_FLAG, json.dumps(outputs_of[label], sort_keys=True),
                             *container["args"]]
        rewritten += 1
    return rewritten


def compile_pipeline(config: PipelineConfig, output_path: str, pipeline_root: str, image: str,
                     push_destination: Optional[str] = None, target: str = "vertex",
                     check_root: bool = True, gpu_image: Optional[str] = None,
                     tpu_image: Optional[str] = None) -> str:
    """Writes the compiled pipeline to ``output_path`` and returns its path.

    ``vertex``: the PipelineJob JSON that ``aiplatform.PipelineJob(template_path=...)`` takes.
    ``kfp``: the PipelineSpec YAML that ``kfp.Client`` uploads (pipeline root as its
    ``defaultPipelineRoot``; node selectors, if any, in a second document: the Kubernetes
    platform spec). Both at pipeline spec schema 2.1.0. Locations the cluster could not use (the
    root, the push destination, data and encoder paths) are refused first; ``check_root=False``
    only for tests that play the cluster on this machine. ``config.resources`` sets each step's
    machine (kubeflow/resources.py); steps with a GPU / TPU run ``gpu_image`` / ``tpu_image``.
    """
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner  # lazy: loads TFX (seconds)

    from bert_qa_pipeline.pipeline.pipeline import create_pipeline, runtime_parameters  # lazy: TFX

    if target not in TARGETS:
        raise CompileError(f"target must be one of {TARGETS}, not {target!r}")
    for flag, value in (("--image", image), ("--gpu-image", gpu_image), ("--tpu-image", tpu_image)):
        if value is not None and not value.strip():
            raise CompileError(f"{flag} is empty; give the image built from kubeflow/Dockerfile")
    push_destination = push_destination or pipeline_root.rstrip("/") + "/pushed"
    if check_root:  # False only where a test plays the cluster on this machine
        check_pipeline_root(target, pipeline_root)
        check_push_destination(push_destination)
        check_cluster_paths(container_config(config))
    baseline = baseline_for(target, config)
    resource_plans = step_resources.plan(config, target, gpu_image=gpu_image, tpu_image=tpu_image)
    config = container_config(config)
    fill_custom_job_image(config, image, gpu_image, tpu_image)
    parameters = runtime_parameters(config)
    tfx_pipeline = create_pipeline(
        config, pipeline_root=pipeline_root, baseline=baseline, parameters=parameters,
        push_destination=push_destination)
    step_resources.apply(tfx_pipeline, resource_plans)
    output_path = os.path.abspath(output_path)
    with tempfile.TemporaryDirectory() as tmp:
        runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
            config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
                default_image=step_resources.default_image(image, resource_plans),
                use_pipeline_spec_2_1=True),
            output_dir=tmp, output_filename="pipeline_job.json")
        runner.run(tfx_pipeline, write_out=True)
        with open(os.path.join(tmp, "pipeline_job.json")) as f:
            job = json.load(f)
    spec = job["pipelineSpec"]
    step_resources.check_compiled(spec, resource_plans, image)
    set_step_environment(spec, resource_plans)
    if baseline == "latest_blessed" and scope_baseline_query(spec, config.name) != 1:
        raise RuntimeError("expected one latest-blessed-model query in the compiled spec")
    set_parameter_defaults(job, {name: p.default for name, p in parameters.items()})
    # The cache key of a task is its parameters and inputs; SquadExampleGen's are patterns, so
    # new files under the same pattern would be a cache hit (tensorflow/tfx#4226). Locally its
    # driver adds the files' fingerprint to the key; Kubeflow and Vertex run no custom driver for
    # it, so there it always reads its inputs (cheap), and downstream steps re-run on its new output.
    spec["root"]["dag"]["tasks"][keys.SQUAD_EXAMPLE_GEN]["cachingOptions"] = {"enableCache": False}
    if spec.get("schemaVersion") != SCHEMA_VERSION:
        raise RuntimeError(f"TFX compiled schema {spec.get('schemaVersion')}, expected {SCHEMA_VERSION}")
    os.makedirs(os.path.dirname(output_path), exist_ok=True)
    if target == "vertex":
        with open(output_path, "w") as f:
            json.dump(job, f, indent=2, sort_keys=True)
        return output_path
    kinds = {name: next(iter(executor)) for name, executor in spec["deploymentSpec"]["executors"].items()}
    refused = {name: kind for name, kind in kinds.items() if kind not in KFP_EXECUTOR_KINDS}
    if refused:
        raise RuntimeError(f"Kubeflow Pipelines cannot run executors {refused}")
    if use_kfp_task_entrypoint(spec) != len(spec["root"]["dag"]["tasks"]):
        raise RuntimeError("expected every task of the Kubeflow pipeline to be a container task")
    spec["defaultPipelineRoot"] = pipeline_root
    platform = step_resources.platform_spec(resource_plans)
    with open(output_path, "w") as f:
        if platform:  # kfp's own layout: the PlatformSpec is the package's second document
            yaml.safe_dump_all([spec, platform], f, sort_keys=True)
        else:
            yaml.safe_dump(spec, f, sort_keys=True)
    return output_path
