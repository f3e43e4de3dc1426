"""FeatureWindowing: Examples of questions -> Examples of windowed features (Apache Beam)."""
from __future__ import annotations

import json
from typing import Optional, Sequence

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from bert_qa_pipeline.components import keys
from bert_qa_pipeline.components.feature_windowing import executor


class FeatureWindowingSpec(types.ComponentSpec):
    PARAMETERS = {
        # A TF Hub handle, a directory or "default" (bert_qa.encoders); its vocab is used.
        "encoder_uri": ExecutionParameter(type=str),
        "do_lower_case": ExecutionParameter(type=int),
        "seq_len": ExecutionParameter(type=int),
        "query_len": ExecutionParameter(type=int),
        "doc_stride": ExecutionParameter(type=int),
        "training_splits": ExecutionParameter(type=str),  # JSON list; others get eval features
        "version_2_with_negative": ExecutionParameter(type=int),
        "multi_answer": ExecutionParameter(type=str),  # 'first' or 'error' (squad_lib's)
        "num_shards": ExecutionParameter(type=int, optional=True),  # 0: one per 10,000 features
    }
    INPUTS = {keys.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples)}
    OUTPUTS = {keys.FEATURES_KEY: ChannelParameter(type=standard_artifacts.Examples)}


class FeatureWindowing(base_beam_component.BaseBeamComponent):
    """Windows every question with ``bert_qa.windowing`` (squad_lib's features), in parallel.

    Work is distributed by paragraph; example indices and unique ids are derived from the
    questions' split order after the parallel step, so the output is identical to the
    library's single-process ``convert_examples_to_features`` whatever the worker count.
    Takes standard Beam pipeline args (``with_beam_pipeline_args`` or the pipeline's).
    """

    SPEC_CLASS = FeatureWindowingSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(self, examples: types.BaseChannel, encoder_uri: str = "default",
                 seq_len: Optional[int] = None, query_len: Optional[int] = None,
                 doc_stride: Optional[int] = None, do_lower_case: Optional[bool] = None,
                 training_splits: Sequence[str] = ("train",), version_2_with_negative: bool = False,
                 multi_answer: str = "first", num_shards: Optional[int] = None,
                 spec: str = "BertQaSpec"):
        """Windowing parameters left out take the defaults of ``spec`` (the spec class's own)."""
        from bert_qa.spec import windowing_defaults  # lazy: the spec's Keras model code (seconds)

        defaults = windowing_defaults(spec)
        seq_len = defaults["seq_len"] if seq_len is None else seq_len
        query_len = defaults["query_len"] if query_len is None else query_len
        doc_stride = defaults["doc_stride"] if doc_stride is None else doc_stride
        do_lower_case = defaults["do_lower_case"] if do_lower_case is None else do_lower_case
        super().__init__(spec=FeatureWindowingSpec(
            examples=examples, encoder_uri=encoder_uri, do_lower_case=int(do_lower_case),
            seq_len=seq_len, query_len=query_len, doc_stride=doc_stride,
            training_splits=json.dumps(list(training_splits)),
            version_2_with_negative=int(version_2_with_negative), multi_answer=multi_answer,
            num_shards=num_shards,
            features=types.Channel(type=standard_artifacts.Examples)))
