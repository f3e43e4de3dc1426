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


def get_strategy(name: str, gpus: int = -1, tpu: str = ""):
    """The ``tf.distribute.Strategy`` for a Model Maker strategy name."""
    if not isinstance(name, str) or name.lower() not in STRATEGIES:
        raise ValueError(f"distribution_strategy must be one of {STRATEGIES}, not {name!r}")
    name = name.lower()
    gpus = num_gpus(gpus)
    if name == "tpu":
        _check_tpu_address(tpu)
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
