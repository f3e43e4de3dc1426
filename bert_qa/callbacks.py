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


class StepLogger(tf_keras.callbacks.Callback):
    """Per-step training loss and learning rate, as a PyTorch loop would log them.

    Keras logs the running mean of the epoch's losses; the loss of step k is recovered as
    ``k * mean_k - (k - 1) * mean_(k-1)`` (float32 means: about 1e-5 absolute error by step 20,
    more over long epochs). The rate is the one the optimizer applies at that step.
    """

    def __init__(self):
        super().__init__()
        self.losses, self.learning_rates = [], []
        self._previous_mean, self._k = 0.0, 0

    def on_epoch_begin(self, epoch, logs=None):
        self._previous_mean, self._k = 0.0, 0

    def on_train_batch_begin(self, batch, logs=None):
        from bert_qa import optimization

        optimizer = self.model.optimizer
        self.learning_rates.append(optimization.learning_rate_at(optimizer, optimizer.iterations))

    def on_train_batch_end(self, batch, logs=None):
        mean = scalar(logs, "loss")
        self._k += 1
        self.losses.append(self._k * mean - (self._k - 1) * self._previous_mean)
        self._previous_mean = mean
