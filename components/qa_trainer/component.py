"""QaTrainer: windowed features -> Model (serving SavedModel + vocab) and ModelRun (logs)."""
from __future__ import annotations

import json
from typing import Any, Dict, Optional

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.orchestration import data_types
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from bert_qa_pipeline.components import custom_job, keys
from bert_qa_pipeline.components.qa_trainer import executor, vertex_executor


class QaTrainerSpec(types.ComponentSpec):
    PARAMETERS = {
        keys.SPEC_KEY: ExecutionParameter(type=str),        # BertQaSpec | MobileBertQaSpec
        # JSON constructor arguments, except windowing (taken from the features) and model_dir.
        keys.SPEC_ARGS_KEY: ExecutionParameter(type=str),
        # Passes over the features; a fraction is allowed (bert_qa.settings.training_schedule).
        "epochs": ExecutionParameter(type=float),
        "batch_size": ExecutionParameter(type=int),  # 0: the spec's default_batch_size
        "steps_per_epoch": ExecutionParameter(type=int),  # 0: features // batch_size
        "shuffle": ExecutionParameter(type=int),
        # > 0: overrides spec_args' learning_rate (a runtime parameter when compiled).
        "learning_rate": ExecutionParameter(type=float, optional=True),
        "seed": ExecutionParameter(type=int),
        "train_split": ExecutionParameter(type=str),
        # Where per-epoch checkpoints live until training completes (a re-run after a kill
        # resumes from there); default: <pipeline root>/<node>/resume.
        "checkpoint_root": ExecutionParameter(type=str, optional=True),
        # JSON: train as a Vertex AI CustomJob (project, region, image, service_account,
        # worker_pools); set only with the launching executor (vertex_executor.Executor).
        keys.VERTEX_CUSTOM_JOB_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {keys.FEATURES_KEY: ChannelParameter(type=standard_artifacts.Examples)}
    OUTPUTS = {
        keys.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        keys.MODEL_RUN_KEY: ChannelParameter(type=standard_artifacts.ModelRun),
    }


class QaTrainer(base_component.BaseComponent):
    """Runs the spec's ``train`` (Model Maker's recipe, its distribution strategy).

    The windowing (seq_len, query_len, doc_stride, casing) comes from the features artifact.
    Checkpoints every epoch and resumes after a kill; writes TensorBoard logs to the
    ModelRun. With ``vertex_custom_job`` the step launches a Vertex AI CustomJob whose replicas
    train instead (``vertex_executor``). The Model holds ``Format-Serving/``: a SavedModel with
    a ``serving_default`` signature that carries the library's record of the spec (vocab, windowing, spec name and
    arguments; ``bert_qa.export.saved_model_info``), so ``bertqa export`` needs nothing else.
    """

    SPEC_CLASS = QaTrainerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, features: types.BaseChannel, spec: str = "BertQaSpec",
                 spec_args: Optional[Dict[str, Any]] = None, epochs: float = 2, batch_size: int = 0,
                 steps_per_epoch: int = 0, shuffle: bool = True, seed: int = 42,
                 train_split: str = "train", checkpoint_root: Optional[str] = None,
                 learning_rate: Optional[float] = None,
                 vertex_custom_job: Optional[Dict[str, Any]] = None):
        """``vertex_custom_job``: ``{project, region, image, service_account, worker_pools:
        [{machine_type, replica_count, accelerator_type, accelerator_count}, ...]}`` (pool 0
        the chief, pool 1 the workers) to train in a Vertex AI CustomJob; None trains here."""
        launch = None
        if vertex_custom_job:
            launch = json.dumps(custom_job.check_launch(vertex_custom_job, need_image=False),
                                sort_keys=True)
        super().__init__(spec=QaTrainerSpec(
            features=features, spec=spec, spec_args=json.dumps(spec_args or {}, sort_keys=True),
            # A RuntimeParameter (compiled pipelines) keeps its own type (float).
            epochs=epochs if isinstance(epochs, data_types.RuntimeParameter) else float(epochs),
            batch_size=batch_size, steps_per_epoch=steps_per_epoch,
            shuffle=int(shuffle), seed=seed, train_split=train_split,
            checkpoint_root=checkpoint_root, learning_rate=learning_rate, vertex_custom_job=launch,
            model=types.Channel(type=standard_artifacts.Model),
            model_run=types.Channel(type=standard_artifacts.ModelRun)),
            custom_executor_spec=executor_spec.ExecutorClassSpec(vertex_executor.Executor) if launch else None)
