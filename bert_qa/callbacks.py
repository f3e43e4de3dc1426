"""Keras callbacks that also run under ParameterServerStrategy.

tf_keras refuses batch-level callbacks under a parameter-server cluster ("Batch-level
`Callback`s are not supported with `ParameterServerStrategy`") unless they declare that they
take TF logs, in which case their logs hold tensors, or ``RemoteValue``s from the workers under a
cluster. ``LogsCallback`` declares it and reads logs through ``scalar``, which fetches a remote
value (one round trip, so read only what is needed, e.g. every few steps).
"""
from __future__ import annotations

from typing import Mapping, Optional

from bert_qa import _env  # noqa: F401
import tf_keras


def scalar(logs: Optional[Mapping], key: str, default: float = float("nan")) -> float:
    """``logs[key]`` as a Python float, whether a number, a tensor or a cluster RemoteValue."""
    value = _fetch(logs or {}).get(key)
    if value is None:
        return default
    return float(_fetch(value))


def _fetch(value):
    """A RemoteValue's value (under a cluster the whole logs dict can be one), else ``value``."""
    if hasattr(value, "fetch"):  # tf.distribute.experimental.coordinator.RemoteValue
        return value.fetch()
    return value


class LogsCallback(tf_keras.callbacks.Callback):
    """A callback whose batch hooks are allowed under every distribution strategy."""

    def __init__(self):
        super().__init__()
        self._supports_tf_logs = True  # Callback.__init__ sets it False on the instance

    def float_logs(self, logs: Optional[Mapping]) -> dict:
        logs = _fetch(logs or {})
        return {key: scalar(logs, key) for key in logs}
