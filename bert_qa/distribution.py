"""Distribution strategies by name, as Model Maker's specs accept them."""
from __future__ import annotations

import json
import os
import socket

from bert_qa import _env  # noqa: F401
import tensorflow as tf
from official.common import distribute_utils

STRATEGIES = ("off", "one_device", "mirrored", "multi_worker_mirrored", "parameter_server", "tpu")


class StrategyError(RuntimeError):
    """A distribution strategy that cannot run here; the message says why."""


def num_gpus(requested: int) -> int:
    """-1 means every visible GPU (Model Maker's convention)."""
    return len(tf.config.list_physical_devices("GPU")) if requested == -1 else requested


def _check_tpu_address(tpu: str, timeout: float = 5.0):
    """Probes a ``grpc://host:port`` TPU address: TF would wait forever for a silent one."""
    if not tpu.startswith("grpc://"):
        return  # '' / 'local' / a Cloud TPU name fail fast inside TF's resolver
    host, _, port = tpu[len("grpc://"):].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as err:
        raise StrategyError(
            f"distribution_strategy='tpu' needs a reachable TPU (tpu={tpu!r}); none was found: "
            f"cannot connect to {host}:{port}: {type(err).__name__}: {err}") from err


def _check_local_tpu(tpu: str):
    """Refuses ``tpu='local'`` on a machine with no TPU before TensorFlow's initializer runs.

    ``initialize_tpu_system`` first clears every eager function and kernel cache of the process
    and runs ``gc.collect()`` (tensorflow/python/tpu/tpu_strategy_util.py:78-80 in TF 2.21), then
    waits for every pending op (``context.async_wait()``, :140) before it reports that there is
    no TPU. In a long-lived process (a notebook, the test suite) that failure could take 16 s, and
    it left the process without its compiled functions. A local TPU shows up as a ``TPU`` or
    ``TPU_SYSTEM`` physical device before initialization, so their absence is a fast, side-effect
    free "no"."""
    if tpu != "local":
        return
    if not (tf.config.list_physical_devices("TPU") or tf.config.list_physical_devices("TPU_SYSTEM")):
        raise StrategyError(
            "distribution_strategy='tpu' needs a reachable TPU (tpu='local'); none was found: this "
            "machine has no TPU device (tf.config.list_physical_devices('TPU') is empty)")


def get_strategy(name: str, gpus: int = -1, tpu: str = ""):
    """The ``tf.distribute.Strategy`` for a Model Maker strategy name."""
    if not isinstance(name, str) or name.lower() not in STRATEGIES:
        raise ValueError(f"distribution_strategy must be one of {STRATEGIES}, not {name!r}")
    name = name.lower()
    gpus = num_gpus(gpus)
    if name == "tpu":
        _check_tpu_address(tpu)
        _check_local_tpu(tpu)
        try:
            return distribute_utils.get_distribution_strategy("tpu", num_gpus=gpus, tpu_address=tpu)
        except Exception as err:  # resolver errors vary by TF version and platform
            raise StrategyError(
                f"distribution_strategy='tpu' needs a reachable TPU (tpu={tpu!r}); none was found: "
                f"{type(err).__name__}: {err}") from err
    if name in ("parameter_server",):
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
        if "ps" not in cluster or "chief" not in cluster and "worker" not in cluster:
            raise StrategyError(
                "distribution_strategy='parameter_server' needs a TF_CONFIG cluster with 'ps' and "
                "'worker' (and 'chief') tasks; TF_CONFIG is " + (os.environ.get("TF_CONFIG") or "unset"))
    return distribute_utils.get_distribution_strategy(name, num_gpus=gpus, tpu_address=tpu)


# -- who saves under a multi-worker strategy ---------------------------------------------------
# TF's multi-worker saving pattern (tf_keras.src.distribute.distributed_file_utils): every worker
# runs the same saving code, because saving may run collective ops; the chief writes to the real
# place, every other worker to a temporary directory of its own that it deletes afterwards.

WORKER_TEMP_PREFIX = "workertemp_"


def in_multi_worker_mode(strategy) -> bool:
    """True for a strategy whose replicas span several processes (TF_CONFIG cluster)."""
    probe = getattr(getattr(strategy, "extended", None), "_in_multi_worker_mode", None)
    return bool(probe and probe())


def is_chief(strategy) -> bool:
    """Whether this process saves for everyone: always, except a non-chief multi-worker task."""
    if strategy is None or not in_multi_worker_mode(strategy):
        return True
    return bool(strategy.extended.should_checkpoint)


def task_name(strategy) -> str:
    """``chief:0`` / ``worker:1`` (``local`` outside a cluster), for messages."""
    resolver = getattr(strategy, "cluster_resolver", None) if in_multi_worker_mode(strategy) else None
    if resolver is None or resolver.task_type is None:
        return "local"
    return f"{resolver.task_type}:{resolver.task_id}"


def worker_temp_dir(dirpath: str, strategy) -> str:
    """Where a non-chief task writes what the chief writes to ``dirpath``:
    ``dirpath/workertemp_<task>``, as tf_keras's callbacks name theirs (the chief: ``dirpath``)."""
    if is_chief(strategy):
        return dirpath
    resolver = strategy.cluster_resolver
    name = WORKER_TEMP_PREFIX + (f"{resolver.task_id}" if resolver.task_type == "worker"
                                 else f"{resolver.task_type}_{resolver.task_id}")
    return os.path.join(dirpath, name)


def barrier(strategy, timeout_seconds: float = 1800.0) -> int:
    """Returns once every replica of a multi-worker strategy got here (an all-reduce of ones),
    with the number of replicas that did; a no-op (1) for a single process.

    Put after a task's last access to shared state and before the chief deletes it: the
    all-reduce cannot finish while another task is still short of it, and fails after
    ``timeout_seconds`` (so the chief deletes nothing) if a task died on the way.
    """
    if not (in_multi_worker_mode(strategy) and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)):
        return 1
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout_seconds)

    @tf.function
    def arrive():
        def one():
            return tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.SUM, tf.constant(1.0), options=options)

        return strategy.experimental_local_results(strategy.run(one))[0]

    total = int(round(float(arrive())))
    if total != strategy.num_replicas_in_sync:
        raise RuntimeError(f"barrier: {total} of {strategy.num_replicas_in_sync} replicas arrived")
    return total
