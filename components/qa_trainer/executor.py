"""QaTrainer's executor: thin over ``BertQaSpec.train`` and ``bert_qa.export``."""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import time
from typing import Any, Dict, Optional

from bert_qa import _env  # noqa: F401
import tensorflow as tf
import tf_keras
from tfx.dsl.components.base import base_executor
from tfx.utils import io_utils

from bert_qa import callbacks, distribution, input_pipeline, locks
from bert_qa.export import export_saved_model
from bert_qa.settings import check_settings, training_schedule
from bert_qa.windowing_params import Windowing
from bert_qa_pipeline.components import artifacts, keys

log = logging.getLogger(__name__)

PROGRESS_FILE = "progress.json"


class ProgressLogger(callbacks.LogsCallback):
    """Progress lines, and a record of the epochs run (shows where a re-run resumed).

    A ``LogsCallback`` so that it also runs under parameter-server training.
    """

    def __init__(self, steps_per_epoch: int, epochs: int, state_dir: Optional[str], every: int = 10):
        """``state_dir`` None: keep the record in memory only (a non-chief task)."""
        super().__init__()
        self._steps, self._epochs, self._every = steps_per_epoch, epochs, every
        self._path = os.path.join(state_dir, PROGRESS_FILE) if state_dir else None
        self.first_epoch = None  # 0-based epoch this process started at
        self.history = []
        if self._path and tf.io.gfile.exists(self._path):  # epochs a killed run finished
            try:
                self.history = list(artifacts.read_json(self._path)["history"])
            except (ValueError, KeyError, TypeError) as err:  # only the log of epochs: start it again
                log.warning(f"QaTrainer: {self._path} is unreadable ({err}); the epoch log restarts "
                            f"(the checkpoints still decide where training resumes)")

    def on_epoch_begin(self, epoch, logs=None):
        if self.first_epoch is None:
            self.first_epoch = epoch
            if epoch:
                log.info(f"QaTrainer: resuming at epoch {epoch + 1}/{self._epochs} from the last checkpoint")
            self.history = [h for h in self.history if h["epoch"] <= epoch]
        self._epoch = epoch
        self._epoch_start = time.time()

    def on_train_batch_end(self, batch, logs=None):
        step = batch + 1
        if step % self._every == 0 or step == self._steps:
            rate = step / max(time.time() - self._epoch_start, 1e-9)
            loss = callbacks.scalar(logs, "loss")
            log.info(f"QaTrainer: epoch {self._epoch + 1}/{self._epochs} step {step}/{self._steps} "
                     f"loss {loss:.4f} ({rate:.2f} steps/s, epoch eta {(self._steps - step) / rate:.0f} s)")

    def on_epoch_end(self, epoch, logs=None):
        self.history.append({"epoch": epoch + 1, **self.float_logs(logs),
                             "seconds": time.time() - self._epoch_start,
                             "run_started_at_epoch": self.first_epoch + 1})
        if self._path:
            artifacts.write_json(self._path, {"history": self.history})


def resume_dir(model_uri: str, checkpoint_root: str, fingerprint_inputs: Dict[str, Any]) -> str:
    """A directory stable across re-runs with the same inputs and parameters."""
    root = checkpoint_root or os.path.join(os.path.dirname(os.path.dirname(model_uri)), "resume")
    digest = hashlib.sha256(json.dumps(fingerprint_inputs, sort_keys=True).encode()).hexdigest()[:16]
    return os.path.join(root, digest)


@contextlib.contextmanager
def owning(state_dir: str):
    """Exclusive use of a local resume state; on object stores (no locks) the resume key
    already differs per model URI unless a shared ``checkpoint_root`` is configured."""
    if "://" in state_dir:
        yield
        return
    # Inside the state directory, so it goes with it when training succeeds.
    with locks.exclusive(os.path.join(state_dir, ".owner.lock"), f"training state {state_dir}"):
        yield


def make_spec(spec_name: str, spec_args: Dict[str, Any], features, model_dir: str):
    """The spec to train: its arguments, with the windowing the features were made with."""
    from bert_qa.spec import spec_from_record  # lazy: Model Garden (seconds), only to train

    doubled = sorted(set(spec_args) & set(Windowing.names()))
    if doubled:
        raise ValueError(f"spec_args {doubled}: windowing parameters travel with the features "
                         f"(set them on FeatureWindowing), not in the trainer's spec_args")
    return spec_from_record({"spec": spec_name, "args": spec_args}, **artifacts.windowing_of(features),
                            model_dir=model_dir)


class Executor(base_executor.BaseExecutor):
    """Trains under the spec's distribution strategy and exports the Model.

    Under a multi-worker strategy (TF_CONFIG) every task runs this same ``Do``; only the chief
    owns the resume state (its lock, ``progress.json``, deleting it at the end) and writes the
    Model and ModelRun. The other tasks write only to their own temporary directories
    (``<resume state>/.../workertemp_<task>``: tf_keras's callbacks name theirs so, and this
    executor saves the SavedModel there too, as saving may run collectives), delete them, and
    leave. The chief deletes the shared resume state only after every task has passed a
    barrier placed after its last access to it.
    """

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        features = artifacts.single(input_dict[keys.FEATURES_KEY], keys.FEATURES_KEY)
        model = artifacts.single(output_dict[keys.MODEL_KEY], keys.MODEL_KEY)
        model_run = artifacts.single(output_dict[keys.MODEL_RUN_KEY], keys.MODEL_RUN_KEY)
        spec_name = exec_properties[keys.SPEC_KEY]
        spec_args = artifacts.parse_json_param(exec_properties[keys.SPEC_ARGS_KEY], keys.SPEC_ARGS_KEY, {})
        if float(exec_properties.get("learning_rate") or 0) > 0:
            spec_args = {**spec_args, "learning_rate": float(exec_properties["learning_rate"])}
        split = exec_properties.get("train_split") or "train"

        fingerprint = {"features": features.uri, **{k: v for k, v in exec_properties.items()
                                                    if k != "checkpoint_root"}}
        state_dir = resume_dir(model.uri, exec_properties.get("checkpoint_root") or "", fingerprint)
        tf_keras.utils.set_random_seed(int(exec_properties.get("seed", 42)))
        # The spec creates its distribution strategy first (a multi-worker strategy must exist
        # before any other TF op runs); the strategy says whether this task is the chief.
        spec = make_spec(spec_name, spec_args, features, state_dir)
        if not distribution.is_chief(spec.strategy):
            self._train(features, model, model_run, exec_properties, spec, split, state_dir, chief=False)
            return
        tf.io.gfile.makedirs(state_dir)
        # Two trainers on one resume state (two runs, one checkpoint_root) would restore each
        # other's checkpoints and the first to finish would delete it under the other.
        with owning(state_dir):
            self._train(features, model, model_run, exec_properties, spec, split, state_dir, chief=True)

    def _train(self, features, model, model_run, exec_properties, spec, split, state_dir,
               chief: bool) -> None:
        from bert_qa.spec import spec_record  # lazy: Model Garden (seconds), only to train

        strategy = spec.strategy
        spec_name = type(spec).__name__
        seed = int(exec_properties.get("seed", 42))
        num_features = features.get_int_custom_property(f"num_features_{split}")
        # Runtime parameters of a compiled pipeline arrive here unchecked: the one settings
        # check, before any work (a SettingError names the key; `bertqa run` exits 1).
        given = {"epochs": float(exec_properties["epochs"]),
                 "steps_per_epoch": int(exec_properties.get("steps_per_epoch") or 0)}
        if int(exec_properties.get("batch_size") or 0):  # 0 / absent: the spec's default
            given["batch_size"] = int(exec_properties["batch_size"])
        check_settings(given, {"epochs": "train.epochs (epochs)", "batch_size": "train.batch_size (batch_size)",
                               "steps_per_epoch": "train.steps_per_epoch (steps_per_epoch)"},
                       train_features=num_features,
                       train_features_note=f"of the '{split}' split ({features.uri})")
        batch_size = given.get("batch_size") or spec.default_batch_size
        check_settings({"default_batch_size": batch_size, "steps_per_epoch": given["steps_per_epoch"]},
                       {"default_batch_size": "the spec's default_batch_size (train.batch_size unset)"},
                       train_features=num_features,
                       train_features_note=f"of the '{split}' split ({features.uri})")
        # A fraction of a pass trains as ceil(epochs) checkpointed epochs of equal length.
        epochs, steps_per_epoch = training_schedule(given["epochs"],
                                                    given["steps_per_epoch"] or num_features // batch_size,
                                                    key="train.epochs (epochs)")
        files = artifacts.tfrecord_files(artifacts.split_uri(features, split))
        task = distribution.task_name(strategy)
        role = "" if task == "local" else f" as {task} ({'chief' if chief else 'not the chief'})"
        log.info(f"QaTrainer{role}: {spec_name} on {num_features} features ({split}), batch {batch_size}, "
                 f"{epochs} epochs x {steps_per_epoch} steps (train.epochs {given['epochs']:g}); checkpoints in "
                 f"{state_dir}")

        input_fn = input_pipeline.make_input_fn(spec, files, is_training=True, batch_size=batch_size,
                                                shuffle=bool(int(exec_properties.get("shuffle", 1))),
                                                seed=seed)
        # Only the chief reads and writes the resume state's epoch log.
        progress = ProgressLogger(steps_per_epoch, epochs, state_dir if chief else None)
        start = time.time()
        keras_model = spec.train(input_fn, epochs, steps_per_epoch, callbacks=[progress], verbose=0)
        train_seconds = time.time() - start

        serving_dir = artifacts.serving_model_dir(model)
        if chief:
            export_saved_model(keras_model, serving_dir, spec=spec)  # the spec's record travels inside
        else:  # the same save, into this task's own temporary directory, then gone
            own_dir = distribution.worker_temp_dir(state_dir, strategy)
            export_saved_model(keras_model, os.path.join(own_dir, os.path.basename(serving_dir)), spec=spec)
            tf.io.gfile.rmtree(own_dir)
        # Every task is past its last access to the resume state before the chief copies from
        # it and deletes it (a task that died makes the chief fail here, keeping the state).
        distribution.barrier(strategy)
        if not chief:
            log.info(f"QaTrainer as {task}: trained in {train_seconds:.0f} s; saved into {own_dir} (now "
                     f"deleted): the chief exports the model")
            return
        record = spec_record(spec)

        # Logs and per-epoch checkpoints go to the ModelRun; the resume state is then dropped.
        for name in ("tensorboard", "checkpoints"):
            source = os.path.join(state_dir, name)
            if tf.io.gfile.exists(source):  # without what a killed non-chief task left behind
                io_utils.copy_dir(source, os.path.join(model_run.uri, name), deny_regex_patterns=[
                    "^" + re.escape(source.rstrip("/") + "/" + distribution.WORKER_TEMP_PREFIX)])
        summary = {"spec": record["spec"], "spec_args": record["args"], "epochs": epochs,
                   "steps_per_epoch": steps_per_epoch, "batch_size": batch_size,
                   "train_seconds": train_seconds,
                   "first_epoch_run": (progress.first_epoch or 0) + 1,
                   "history": progress.history, "training_precision": spec.training_precision}
        artifacts.write_json(os.path.join(model_run.uri, artifacts.TRAINING_SUMMARY_FILE), summary)
        tf.io.gfile.rmtree(state_dir)

        counts = {
            "spec": record,
            "num_questions_trained_on": features.get_int_custom_property(f"num_examples_{split}"),
            "num_questions_skipped": features.get_int_custom_property(f"num_skipped_{split}"),
            "num_questions_in_split": features.get_int_custom_property(f"num_questions_{split}"),
            "num_features": num_features,
            "epochs": epochs, "steps_per_epoch": steps_per_epoch, "batch_size": batch_size,
            "first_epoch_run": summary["first_epoch_run"],
            "train_seconds": round(train_seconds, 1),
            "training_precision": spec.training_precision,
            "final_loss": summary["history"][-1].get("loss", float("nan")) if summary["history"] else float("nan"),
        }
        self._record_counts(model, model_run, counts)
        log.info(f"QaTrainer: trained in {train_seconds:.0f} s ({spec.training_precision}, epochs "
                 f"{summary['first_epoch_run']}-{epochs} in this run); model in {serving_dir}")

    def _record_counts(self, model, model_run, counts: Dict[str, Any]) -> None:
        record_counts(model, model_run, counts)


def record_counts(model, model_run, counts: Dict[str, Any]) -> None:
    """The training's counts and spec record, as custom properties of the Model and ModelRun."""
    artifacts.record_counts(model, counts)
    artifacts.record_counts(model_run, counts)
