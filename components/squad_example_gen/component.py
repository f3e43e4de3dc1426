"""SquadExampleGen: SQuAD v1.1 / v2.0 JSON files -> Examples (one tf.Example per question)."""
from __future__ import annotations

import json
from typing import Dict, List, Optional, Union

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from bert_qa_pipeline.components import keys
from bert_qa_pipeline.components.artifacts import json_param
from bert_qa_pipeline.components.squad_example_gen import driver, executor


class SquadExampleGenSpec(types.ComponentSpec):
    """Plain-string parameters, so every orchestrator can pass them."""

    PARAMETERS = {
        # JSON: {"train": ["data/a.json", "gs://b/*.json"], "eval": [...]} (a split per key), or
        # a list of patterns that `hash_buckets` splits by article title.
        "input_patterns": ExecutionParameter(type=str),
        # JSON: {"train": 4, "eval": 1}; only with a list of patterns.
        "hash_buckets": ExecutionParameter(type=str, optional=True),
        # Set by the driver before the cache check: the matched files' fingerprint.
        "input_fingerprint": ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {}
    OUTPUTS = {keys.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples)}


class SquadExampleGen(base_component.BaseComponent):
    """Reads SQuAD JSON (local or any tf.io.gfile URI, glob patterns) into question splits.

    Splits come either from separate patterns per split or from a hash of the article title,
    so that no article sits in two splits. Counts per split are recorded on the artifact as
    custom properties; a malformed file fails the component with the file and question id.
    """

    SPEC_CLASS = SquadExampleGenSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)
    DRIVER_CLASS = driver.Driver  # the input files' fingerprint joins the cache key

    def __init__(self, input_patterns: Union[Dict[str, List[str]], List[str]],
                 hash_buckets: Optional[Dict[str, int]] = None):
        if isinstance(input_patterns, dict) and hash_buckets:
            raise ValueError("give either patterns per split or hash_buckets, not both")
        if isinstance(input_patterns, (list, tuple)) and not hash_buckets:
            raise ValueError("a list of patterns needs hash_buckets, e.g. {'train': 4, 'eval': 1}")
        super().__init__(spec=SquadExampleGenSpec(
            input_patterns=json_param(input_patterns),
            hash_buckets=json.dumps(hash_buckets, sort_keys=True) if hash_buckets else None,
            examples=types.Channel(type=standard_artifacts.Examples)))
