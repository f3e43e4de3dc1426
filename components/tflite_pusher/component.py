"""TflitePusher: blessed Model of .tflite variants -> versioned destination -> PushedModel."""
from __future__ import annotations

from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from bert_qa_pipeline.components import keys
from bert_qa_pipeline.components.tflite_pusher import executor


class TflitePusherSpec(types.ComponentSpec):
    PARAMETERS = {
        "push_destination": ExecutionParameter(type=str),  # local path or tf.io.gfile URI
        "variant": ExecutionParameter(type=str),           # which .tflite to push
    }
    INPUTS = {
        keys.TFLITE_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        keys.BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing),
        keys.EVALUATION_KEY: ChannelParameter(type=standard_artifacts.ModelEvaluation, optional=True),
    }
    OUTPUTS = {keys.PUSHED_MODEL_KEY: ChannelParameter(type=standard_artifacts.PushedModel)}


class TflitePusher(base_component.BaseComponent):
    """Copies ``model.tflite`` (the chosen variant), ``vocab.txt`` and the evaluation report
    to ``<destination>/<version>/`` only if the model is blessed.

    Versions are 1, 2, 3, ...; a version is staged in a hidden sibling directory and renamed
    into place, so readers never see half a version, and an existing version is never
    overwritten. The PushedModel records ``pushed`` (0/1), ``pushed_version`` and
    ``pushed_destination`` as TFX's Pusher does.
    """

    SPEC_CLASS = TflitePusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, tflite_model: types.BaseChannel, blessing: types.BaseChannel,
                 push_destination: str, evaluation: Optional[types.BaseChannel] = None,
                 variant: str = "dynamic"):
        super().__init__(spec=TflitePusherSpec(
            tflite_model=tflite_model, blessing=blessing, evaluation=evaluation,
            push_destination=push_destination, variant=variant,
            pushed_model=types.Channel(type=standard_artifacts.PushedModel)))
