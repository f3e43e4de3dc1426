"""The DAG, assembled from one ``PipelineConfig`` (the same for local runs and Kubeflow).

  SquadExampleGen -> FeatureWindowing -> QaTrainer -> TfliteExport -> QaEvaluator -> TflitePusher
                                                                       ^
                                       latest blessed model (resolver) ┘
"""
from __future__ import annotations

import json
from typing import Dict, Optional

from bert_qa import _env  # noqa: F401
from tfx.orchestration import data_types
from tfx.dsl.components.common import resolver
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import LatestBlessedModelStrategy
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.types import Channel, standard_artifacts

from bert_qa_pipeline.components import keys
from bert_qa_pipeline.components.feature_windowing import FeatureWindowing
from bert_qa_pipeline.components.qa_evaluator import QaEvaluator
from bert_qa_pipeline.components.qa_evaluator.blessing import Thresholds
from bert_qa_pipeline.components.qa_trainer import QaTrainer
from bert_qa_pipeline.components.squad_example_gen import SquadExampleGen
from bert_qa_pipeline.components.tflite_export import TfliteExport
from bert_qa_pipeline.components.tflite_pusher import TflitePusher
from bert_qa_pipeline.pipeline.config import PipelineConfig, check_dataflow_root, windowing_beam_args

BASELINE_RESOLVER_ID = "latest_blessed_model_resolver"


def runtime_parameters(config: PipelineConfig) -> Dict[str, data_types.RuntimeParameter]:
    """What a compiled pipeline lets a submission change, with the config's values as defaults.

    ``input_patterns`` is SquadExampleGen's JSON (``{"train": [...], "eval": [...]}``, or a
    list of patterns with ``data.hash_buckets``).
    """
    t, e = config.train, config.evaluation
    values = {"input_patterns": (str, json.dumps(config.input_patterns(), sort_keys=True)),
              "epochs": (float, t.epochs), "batch_size": (int, t.batch_size),
              "learning_rate": (float, config.model.learning_rate),
              "min_exact_match": (float, e.min_exact_match), "min_f1": (float, e.min_f1),
              "max_f1_drop_vs_baseline": (float, e.max_f1_drop_vs_baseline),
              "max_quantized_f1_drop": (float, e.max_quantized_f1_drop),
              "min_f1_gain_over_untrained": (float, e.min_f1_gain_over_untrained)}
    return {name: data_types.RuntimeParameter(name=name, ptype=ptype, default=ptype(default))
            for name, (ptype, default) in values.items()}


def create_components(config: PipelineConfig, push_destination: str, baseline: Optional[str] = None,
                      parameters: Optional[Dict[str, data_types.RuntimeParameter]] = None) -> list:
    """``baseline``: ``evaluation.baseline`` resolved for the orchestrator (default: local);
    ``parameters``: runtime parameters (compiled pipelines) standing in for config values."""
    d, m, t, e = config.data, config.model, config.train, config.evaluation
    baseline = baseline or config.baseline()
    p = parameters or {}
    example_gen = SquadExampleGen(input_patterns=p.get("input_patterns", config.input_patterns()),
                                  hash_buckets=dict(d.hash_buckets) or None)
    windowing = FeatureWindowing(
        examples=example_gen.outputs[keys.EXAMPLES_KEY], encoder_uri=config.encoder_uri, spec=m.spec,
        training_splits=["train"], version_2_with_negative=d.version_2_with_negative,
        multi_answer=d.multi_answer, **config.windowing()
    ).with_beam_pipeline_args(windowing_beam_args(config.beam))  # + beam.dataflow's, if enabled
    trainer = QaTrainer(
        features=windowing.outputs[keys.FEATURES_KEY], spec=m.spec, spec_args=config.spec_args(),
        epochs=p.get("epochs", t.epochs), batch_size=p.get("batch_size", t.batch_size),
        steps_per_epoch=t.steps_per_epoch, shuffle=t.shuffle, seed=t.seed,
        checkpoint_root=t.checkpoint_root or None, learning_rate=p.get("learning_rate"),
        vertex_custom_job=t.vertex_custom_job.launch())  # None: trains in the step itself
    export = TfliteExport(
        model=trainer.outputs[keys.MODEL_KEY], features=windowing.outputs[keys.FEATURES_KEY],
        variants=config.export.variants,
        max_representative_samples=config.export.max_representative_samples,
        serving_seq_len=config.export.serving_seq_len)
    resolved = None
    if baseline == "latest_blessed":
        resolved = resolver.Resolver(
            strategy_class=LatestBlessedModelStrategy,
            model=Channel(type=standard_artifacts.Model),
            model_blessing=Channel(type=standard_artifacts.ModelBlessing)).with_id(BASELINE_RESOLVER_ID)
    evaluator = QaEvaluator(
        examples=example_gen.outputs[keys.EXAMPLES_KEY], features=windowing.outputs[keys.FEATURES_KEY],
        model=trainer.outputs[keys.MODEL_KEY], tflite_model=export.outputs[keys.TFLITE_MODEL_KEY],
        baseline_model=resolved.outputs[keys.MODEL_KEY] if resolved else None,
        baseline_destination=push_destination if baseline == "latest_published" else None,
        version_2_with_negative=d.version_2_with_negative,
        max_answer_length=e.max_answer_length, null_score_diff_threshold=e.null_score_diff_threshold,
        predict_batch_size=m.predict_batch_size,
        thresholds=Thresholds(*(p.get(name, getattr(e, name)) for name in (
            "min_exact_match", "min_f1", "max_f1_drop_vs_baseline", "max_quantized_f1_drop",
            "min_f1_gain_over_untrained"))),
        quantized_variant=e.quantized_variant, evaluate_untrained=e.evaluate_untrained,
        pipeline_name=config.name
    ).with_beam_pipeline_args(list(config.beam.args) + list(config.beam.evaluator))
    pusher = TflitePusher(
        tflite_model=export.outputs[keys.TFLITE_MODEL_KEY], blessing=evaluator.outputs[keys.BLESSING_KEY],
        evaluation=evaluator.outputs[keys.EVALUATION_KEY], push_destination=push_destination,
        variant=config.push.variant)
    return [c for c in (example_gen, windowing, trainer, export, resolved, evaluator, pusher) if c is not None]


def create_pipeline(config: PipelineConfig, metadata_connection_config=None,
                    pipeline_root: Optional[str] = None, push_destination: Optional[str] = None,
                    baseline: Optional[str] = None,
                    parameters: Optional[Dict[str, data_types.RuntimeParameter]] = None
                    ) -> tfx_pipeline.Pipeline:
    """The TFX pipeline; local runs pass an MLMD sqlite config, Kubeflow passes none."""
    check_dataflow_root(config.beam, pipeline_root or config.pipeline_root)
    return tfx_pipeline.Pipeline(
        pipeline_name=config.name,
        pipeline_root=pipeline_root or config.pipeline_root,
        components=create_components(config, push_destination or config.push_destination, baseline,
                                     parameters),
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config)  # Beam args: per Beam step only
