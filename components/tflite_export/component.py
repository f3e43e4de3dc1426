"""TfliteExport: Model (serving SavedModel) -> Model of .tflite variants with metadata."""
from __future__ import annotations

import json
from typing import Optional, Sequence

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from bert_qa_pipeline.components import keys
from bert_qa_pipeline.components.tflite_export import executor


class TfliteExportSpec(types.ComponentSpec):
    PARAMETERS = {
        "variants": ExecutionParameter(type=str),  # JSON list of bert_qa.export.QUANTIZATIONS names
        "representative_split": ExecutionParameter(type=str),
        "max_representative_samples": ExecutionParameter(type=int),
        "model_version": ExecutionParameter(type=str, optional=True),
        # Token length of the .tflite files; 0: the trained model's.
        "serving_seq_len": ExecutionParameter(type=int, optional=True),
    }
    INPUTS = {
        keys.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        # Training features, drawn on for int8 calibration.
        keys.FEATURES_KEY: ChannelParameter(type=standard_artifacts.Examples, optional=True),
    }
    OUTPUTS = {keys.TFLITE_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model)}


class TfliteExport(base_component.BaseComponent):
    """Converts the trained model with ``bert_qa.export`` (Model Maker's conversion path).

    Every variant carries Task Library ``BertQuestionAnswerer`` metadata (vocab embedded,
    tokenizer options, input/output names), made from the library's record inside the trained
    SavedModel. Output layout: ``model_<variant>.tflite`` for each variant and ``vocab.txt``;
    the model's spec record is the ``spec`` property. ``serving_seq_len`` (e.g. 384, the Task
    Library's) rebuilds the model at that length from the trained weights before converting;
    ``serving_seq_len`` and ``trained_seq_len`` are properties.
    """

    SPEC_CLASS = TfliteExportSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, model: types.BaseChannel, features: Optional[types.BaseChannel] = None,
                 variants: Sequence[str] = ("float32", "dynamic"), representative_split: str = "train",
                 max_representative_samples: int = 100, model_version: Optional[str] = None,
                 serving_seq_len: int = 0):
        super().__init__(spec=TfliteExportSpec(
            model=model, features=features, variants=json.dumps(list(variants)),
            representative_split=representative_split,
            max_representative_samples=max_representative_samples, model_version=model_version,
            serving_seq_len=serving_seq_len, tflite_model=types.Channel(type=standard_artifacts.Model)))
