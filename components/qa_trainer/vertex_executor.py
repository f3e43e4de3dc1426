"""QaTrainer as a Vertex AI CustomJob: the pipeline step launches, the job's replicas train.

``Executor`` is what the pipeline step runs when ``train.vertex_custom_job.enabled``: it
launches a CustomJob through TFX's ``tfx.extensions.google_cloud_ai_platform`` training runner
(``runner.start_cloud_training`` with Vertex enabled, TFX's ``VertexJobClient``), waits for it,
and records on the Model and ModelRun the properties the job's chief left in the ModelRun. As
TFX's own Cloud trainer does, every replica's container runs ``python -m
tfx.scripts.run_executor --executor_class_path=...TaskExecutor`` with the step's serialized
inputs, outputs and execution properties, so the job trains with QaTrainer's own executor.

The distribution strategy follows the worker pools: ``multi_worker_mirrored`` when the job has
more than one replica (Vertex gives each one TF_CONFIG: pool 0 is the chief, pool 1 the
workers), ``mirrored`` over one replica's GPUs (or its CPU), ``tpu`` (``tpu='local'``, a TPU
VM) for a TPU pool. Under ``multi_worker_mirrored`` only the chief exports the Model and owns
the resume state (``executor.Executor`` says how the others stay out of its way).
"""
from __future__ import annotations

import copy
import json
import os
from typing import Any, Dict, List, Mapping

from tfx.dsl.components.base import base_executor

from bert_qa_pipeline.components import artifacts
from bert_qa_pipeline.components.qa_trainer import executor as trainer_executor

# The QaTrainer execution property that carries the launch (JSON); never sent to the job.
LAUNCH_PROPERTY = "vertex_custom_job"
# What each replica's container runs (through tfx.scripts.run_executor).
TASK_EXECUTOR = "bert_qa_pipeline.components.qa_trainer.vertex_executor.TaskExecutor"
# The chief's artifact properties, in the ModelRun, for the launching step to record (the job's
# containers change only their own copies of the artifacts).
JOB_PROPERTIES_FILE = "custom_job_properties.json"
# Machine types whose pool is a TPU VM (with accelerator_type TPU_* for "cloud-tpu").
TPU_MACHINE_PREFIXES = ("cloud-tpu", "ct5lp-", "ct5p-", "ct6e-")
POOL_KEYS = ("machine_type", "replica_count", "accelerator_type", "accelerator_count")


class CustomJobError(ValueError):
    """A CustomJob request that Vertex would refuse or this trainer cannot run; says which key."""


def is_tpu_pool(pool: Mapping[str, Any]) -> bool:
    """A TPU VM pool: a TPU accelerator or a TPU machine type."""
    return (str(pool.get("accelerator_type") or "").upper().startswith("TPU")
            or str(pool.get("machine_type") or "").startswith(TPU_MACHINE_PREFIXES))


def check_launch(launch: Mapping[str, Any], need_image: bool = True) -> Dict[str, Any]:
    """The launch (``project``, ``region``, ``image``, ``service_account``, ``worker_pools``),
    checked, with each pool's keys filled in. ``need_image=False``: the image may come later
    (compiling for Vertex fills in the pipeline's)."""
    launch = dict(launch)
    unknown = sorted(set(launch) - {"enabled", "project", "region", "image", "service_account",
                                    "worker_pools"})
    if unknown:
        raise CustomJobError(f"unknown key(s) {unknown}")
    for key in ("project", "region") + (("image",) if need_image else ()):
        if not launch.get(key):
            hint = " (compiling for Vertex fills in the pipeline's image)" if key == "image" else ""
            raise CustomJobError(f"{key} is required{hint}")
    pools = launch.get("worker_pools") or []
    if not 1 <= len(pools) <= 2:
        raise CustomJobError(f"worker_pools: give the chief's pool and optionally one pool of workers "
                             f"(parameter servers and evaluators are not supported), not {len(pools)} pools")
    checked = []
    for i, pool in enumerate(pools):
        where = f"worker_pools[{i}]"
        unknown = sorted(set(pool) - set(POOL_KEYS))
        if unknown:
            raise CustomJobError(f"{where}: unknown key(s) {unknown}; known: {list(POOL_KEYS)}")
        pool = {"machine_type": str(pool.get("machine_type") or ""),
                "replica_count": int(pool.get("replica_count", 1)),
                "accelerator_type": str(pool.get("accelerator_type") or ""),
                "accelerator_count": int(pool.get("accelerator_count") or 0)}
        if not pool["machine_type"]:
            raise CustomJobError(f"{where}.machine_type is required (e.g. n1-standard-8)")
        if i == 0 and pool["replica_count"] != 1:
            raise CustomJobError(f"{where} is the chief's pool: replica_count must be 1, not "
                                 f"{pool['replica_count']} (put more replicas in worker_pools[1])")
        if pool["replica_count"] < 1:
            raise CustomJobError(f"{where}.replica_count must be >= 1")
        if pool["accelerator_count"] < 0 or bool(pool["accelerator_type"]) != (pool["accelerator_count"] > 0):
            raise CustomJobError(f"{where}: give accelerator_type and accelerator_count > 0 together "
                                 f"(or neither), not {pool['accelerator_type']!r} x {pool['accelerator_count']}")
        if is_tpu_pool(pool) and (i or len(pools) > 1):
            raise CustomJobError(f"{where}: a TPU pool trains alone (one TPU VM, tpu='local'); "
                                 f"multi-host TPU jobs are not supported")
        checked.append(pool)
    if len(checked) == 2:
        devices = [(p["accelerator_type"], p["accelerator_count"]) for p in checked]
        if devices[0] != devices[1]:
            # MultiWorkerMirroredStrategy runs one replica per device and all-reduces across every
            # worker's replicas: it requires the same local devices on every worker.
            show = [f"{t} x {n}" if n else "no accelerator" for t, n in devices]
            raise CustomJobError(f"worker_pools: the chief has {show[0]} and each worker {show[1]}; "
                                 f"multi_worker_mirrored needs the same accelerators on every replica")
    launch["worker_pools"] = checked
    return launch


def strategy_args(launch: Mapping[str, Any]) -> Dict[str, Any]:
    """The spec arguments the job's replicas train with, from the worker pools."""
    pools = launch["worker_pools"]
    if is_tpu_pool(pools[0]):
        return {"distribution_strategy": "tpu", "tpu": "local"}
    if sum(p["replica_count"] for p in pools) > 1:
        return {"distribution_strategy": "multi_worker_mirrored", "num_gpus": -1}
    return {"distribution_strategy": "mirrored", "num_gpus": -1}


def worker_pool_specs(launch: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """Vertex ``WorkerPoolSpec``s (TFX's runner adds each container's command)."""
    specs = []
    for pool in launch["worker_pools"]:
        machine = {"machine_type": pool["machine_type"]}
        if pool["accelerator_count"]:
            machine.update(accelerator_type=pool["accelerator_type"],
                           accelerator_count=pool["accelerator_count"])
        specs.append({"machine_spec": machine, "replica_count": pool["replica_count"],
                      "container_spec": {"image_uri": launch["image"]}})
    return specs


def custom_job_args(launch: Mapping[str, Any]) -> Dict[str, Any]:
    """``job_args`` for ``runner.start_cloud_training``: a CustomJob (and the project)."""
    job_spec: Dict[str, Any] = {"worker_pool_specs": worker_pool_specs(launch)}
    if launch.get("service_account"):
        job_spec["service_account"] = launch["service_account"]
    return {"project": launch["project"], "job_spec": job_spec}


def task_exec_properties(exec_properties: Mapping[str, Any], launch: Mapping[str, Any]) -> Dict[str, Any]:
    """The step's execution properties as the job's replicas get them: without the launch,
    with the strategy the worker pools call for."""
    properties = {k: v for k, v in exec_properties.items() if k != LAUNCH_PROPERTY}
    spec_args = artifacts.parse_json_param(properties.get("spec_args") or "{}", "spec_args", {})
    properties["spec_args"] = json.dumps({**spec_args, **strategy_args(launch)}, sort_keys=True)
    return properties


def check_remote_uris(input_dict, output_dict, exec_properties: Mapping[str, Any]) -> None:
    """The job's machines see only object storage: refuse local artifact paths up front."""
    local = [f"{key} {a.uri}" for d in (input_dict, output_dict) for key, items in d.items()
             for a in items if "://" not in a.uri]
    root = exec_properties.get("checkpoint_root")
    if root and "://" not in root:
        local.append(f"checkpoint_root {root}")
    if local:
        raise CustomJobError(f"a Vertex CustomJob cannot read or write local paths ({', '.join(local)}): "
                             f"run the pipeline with a gs:// pipeline root (Vertex AI Pipelines) or turn "
                             f"train.vertex_custom_job off")


class TaskExecutor(trainer_executor.Executor):
    """QaTrainer's executor inside the CustomJob's containers; the chief also leaves the
    artifact properties in the ModelRun for the launching step."""

    def _record_counts(self, model, model_run, counts: Dict[str, Any]) -> None:
        super()._record_counts(model, model_run, counts)
        artifacts.write_json(os.path.join(model_run.uri, JOB_PROPERTIES_FILE), counts)


class Executor(base_executor.BaseExecutor):
    """Launches QaTrainer as a Vertex CustomJob and waits for it (TFX's training runner)."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        from tfx.extensions.google_cloud_ai_platform import runner

        launch = check_launch(json.loads(exec_properties[LAUNCH_PROPERTY]))
        check_remote_uris(input_dict, output_dict, exec_properties)
        properties = task_exec_properties(exec_properties, launch)
        print(f"QaTrainer: launching a Vertex CustomJob in {launch['project']}/{launch['region']}: "
              f"{json.dumps(launch['worker_pools'])}, {json.loads(properties['spec_args'])['distribution_strategy']}",
              flush=True)
        # The runner pops the project and writes each pool's command into its arguments.
        runner.start_cloud_training(input_dict, output_dict, properties, TASK_EXECUTOR,
                                    copy.deepcopy(custom_job_args(launch)), job_id=None, job_labels={},
                                    enable_vertex=True, vertex_region=launch["region"])
        model = artifacts.single(output_dict["model"], "model")
        model_run = artifacts.single(output_dict["model_run"], "model_run")
        path = os.path.join(model_run.uri, JOB_PROPERTIES_FILE)
        try:
            counts = artifacts.read_json(path)
        except Exception as err:  # noqa: BLE001  (tf.errors.NotFoundError and the like)
            raise RuntimeError(f"the CustomJob succeeded but its chief left no {path} "
                               f"({type(err).__name__}: {err})") from err
        # The Model and ModelRun carry the same properties as when the step trains itself.
        trainer_executor.record_counts(model, model_run, counts)
