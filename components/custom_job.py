"""QaTrainer's Vertex AI CustomJob request: checked, and turned into worker pool specs.

TFX-free (no TensorFlow either), so that the configuration (``pipeline/config.py``) and the
compiler (``kubeflow/compile.py``) check a request without loading what the launching executor
(``components/qa_trainer/vertex_executor.py``) needs. The strategy follows the worker pools:
``multi_worker_mirrored`` over several replicas, ``mirrored`` over one replica's GPUs (or its
CPU), ``tpu`` (``tpu='local'``, a TPU VM) for a TPU pool.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping

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
