"""QaEvaluator: official EM/F1 per model variant, TFMA slices, blessing and report."""
from __future__ import annotations

from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from bert_qa_pipeline.components import keys
from bert_qa_pipeline.components.artifacts import float_param
from bert_qa_pipeline.components.qa_evaluator import executor
from bert_qa_pipeline.components.qa_evaluator.blessing import Thresholds


class QaEvaluatorSpec(types.ComponentSpec):
    PARAMETERS = {
        "eval_split": ExecutionParameter(type=str),
        "version_2_with_negative": ExecutionParameter(type=int),
        "max_answer_length": ExecutionParameter(type=int),
        "null_score_diff_threshold": ExecutionParameter(type=float),
        "predict_batch_size": ExecutionParameter(type=int),
        # Blessing (scores in %): minimums, tolerance vs the latest blessed model, and
        # tolerance of the quantized variant vs the float model.
        "min_exact_match": ExecutionParameter(type=float),
        "min_f1": ExecutionParameter(type=float),
        "max_f1_drop_vs_baseline": ExecutionParameter(type=float),
        "max_quantized_f1_drop": ExecutionParameter(type=float),
        "quantized_variant": ExecutionParameter(type=str),
        # Also score the same architecture randomly initialised (what training must beat).
        "evaluate_untrained": ExecutionParameter(type=int),
        "min_f1_gain_over_untrained": ExecutionParameter(type=float),
        # Without a baseline_model input: the newest model published under this push
        # destination is the baseline (where no MLMD resolver can run, e.g. Kubeflow).
        "baseline_destination": ExecutionParameter(type=str, optional=True),
        # Recorded on the blessing, so a baseline query can keep to this pipeline's models
        # (Vertex ML Metadata is shared by every pipeline in a project and region).
        "pipeline_name": ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {
        keys.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),   # questions (references)
        keys.FEATURES_KEY: ChannelParameter(type=standard_artifacts.Examples),   # windowed eval features
        keys.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        keys.TFLITE_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model, optional=True),
        keys.BASELINE_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model, optional=True),
    }
    OUTPUTS = {
        keys.EVALUATION_KEY: ChannelParameter(type=standard_artifacts.ModelEvaluation),
        keys.BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing),
    }


class QaEvaluator(base_beam_component.BaseBeamComponent):
    """Scores the SavedModel and every TFLite variant with the official SQuAD scorers.

    Per-question EM/F1 go through ``tfma.run_model_analysis`` (model-agnostic) sliced by
    question word, answer length and article; the ModelEvaluation artifact is TFMA's output
    (``tfma.load_eval_result(uri, model_name=<variant>)``) plus ``report.md`` and a PNG
    chart. The blessing follows TFX's Evaluator conventions (``blessed`` and
    ``current_model_id`` custom properties), so TFX's latest-blessed-model resolver finds it.
    """

    SPEC_CLASS = QaEvaluatorSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(self, examples: types.BaseChannel, features: types.BaseChannel,
                 model: types.BaseChannel, tflite_model: Optional[types.BaseChannel] = None,
                 baseline_model: Optional[types.BaseChannel] = None, eval_split: str = "eval",
                 version_2_with_negative: bool = False, max_answer_length: int = 30,
                 null_score_diff_threshold: float = 0.0, predict_batch_size: int = 8,
                 thresholds: Thresholds = Thresholds(), quantized_variant: str = "dynamic",
                 evaluate_untrained: bool = True, baseline_destination: Optional[str] = None,
                 pipeline_name: Optional[str] = None):
        super().__init__(spec=QaEvaluatorSpec(
            examples=examples, features=features, model=model, tflite_model=tflite_model,
            baseline_model=baseline_model, eval_split=eval_split,
            version_2_with_negative=int(version_2_with_negative),
            max_answer_length=max_answer_length,
            null_score_diff_threshold=float_param(null_score_diff_threshold),
            predict_batch_size=predict_batch_size,
            min_exact_match=float_param(thresholds.min_exact_match), min_f1=float_param(thresholds.min_f1),
            max_f1_drop_vs_baseline=float_param(thresholds.max_f1_drop_vs_baseline),
            max_quantized_f1_drop=float_param(thresholds.max_quantized_f1_drop),
            quantized_variant=quantized_variant or "",
            evaluate_untrained=int(evaluate_untrained),
            min_f1_gain_over_untrained=float_param(thresholds.min_f1_gain_over_untrained),
            baseline_destination=baseline_destination, pipeline_name=pipeline_name,
            evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
            blessing=types.Channel(type=standard_artifacts.ModelBlessing)))
