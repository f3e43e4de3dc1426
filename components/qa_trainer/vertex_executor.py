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
import logging
import os
from typing import Any, Dict, Mapping

from tfx.dsl.components.base import base_executor

from bert_qa_pipeline.components import artifacts, keys
from bert_qa_pipeline.components.custom_job import (  # noqa: F401  (this module's API before the move)
    POOL_KEYS, TPU_MACHINE_PREFIXES, CustomJobError, check_launch, custom_job_args, is_tpu_pool,
    strategy_args, worker_pool_specs)
from bert_qa_pipeline.components.qa_trainer import executor as trainer_executor

log = logging.getLogger(__name__)

# The QaTrainer execution property that carries the launch (JSON); never sent to the job.
LAUNCH_PROPERTY = keys.VERTEX_CUSTOM_JOB_KEY
# What each replica's container runs (through tfx.scripts.run_executor).
TASK_EXECUTOR = "bert_qa_pipeline.components.qa_trainer.vertex_executor.TaskExecutor"
# The chief's artifact properties, in the ModelRun, for the launching step to record (the job's
# containers change only their own copies of the artifacts).
JOB_PROPERTIES_FILE = "custom_job_properties.json"


def task_exec_properties(exec_properties: Mapping[str, Any], launch: Mapping[str, Any]) -> Dict[str, Any]:
    """The step's execution properties as the job's replicas get them: without the launch,
    with the strategy the worker pools call for."""
    properties = {k: v for k, v in exec_properties.items() if k != LAUNCH_PROPERTY}
    spec_args = artifacts.parse_json_param(properties.get(keys.SPEC_ARGS_KEY) or "{}", keys.SPEC_ARGS_KEY, {})
    properties[keys.SPEC_ARGS_KEY] = json.dumps({**spec_args, **strategy_args(launch)}, sort_keys=True)
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
        from tfx.extensions.google_cloud_ai_platform import runner  # lazy: Google Cloud clients, only to launch

        launch = check_launch(json.loads(exec_properties[LAUNCH_PROPERTY]))
        check_remote_uris(input_dict, output_dict, exec_properties)
        properties = task_exec_properties(exec_properties, launch)
        log.info(f"QaTrainer: launching a Vertex CustomJob in {launch['project']}/{launch['region']}: "
                 f"{json.dumps(launch['worker_pools'])}, "
                 f"{json.loads(properties[keys.SPEC_ARGS_KEY])['distribution_strategy']}")
        # The runner pops the project and writes each pool's command into its arguments.
        runner.start_cloud_training(input_dict, output_dict, properties, TASK_EXECUTOR,
                                    copy.deepcopy(custom_job_args(launch)), job_id=None, job_labels={},
                                    enable_vertex=True, vertex_region=launch["region"])
        model = artifacts.single(output_dict[keys.MODEL_KEY], keys.MODEL_KEY)
        model_run = artifacts.single(output_dict[keys.MODEL_RUN_KEY], keys.MODEL_RUN_KEY)
        path = os.path.join(model_run.uri, JOB_PROPERTIES_FILE)
        try:
            counts = artifacts.read_json(path)
        except Exception as err:  # noqa: BLE001  (tf.errors.NotFoundError and the like)
            raise RuntimeError(f"the CustomJob succeeded but its chief left no {path} "
                               f"({type(err).__name__}: {err})") from err
        # The Model and ModelRun carry the same properties as when the step trains itself.
        trainer_executor.record_counts(model, model_run, counts)
