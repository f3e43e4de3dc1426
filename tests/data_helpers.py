"""SquadExampleGen and FeatureWindowing's executors, run in-process on real SQuAD-Shifts articles.

Shared by tests/test_components_data.py and tests/test_dataflow.py (and the ``corpus`` fixture
of tests/conftest.py). Not a test module: importing it builds nothing.
"""
from __future__ import annotations

import copy
import json
import os

from tests import fixtures
from bert_qa import _env  # noqa: F401
from tfx.dsl.components.base import base_beam_executor
from tfx.types import standard_artifacts

from bert_qa_pipeline.components.feature_windowing import executor as windowing_executor
from bert_qa_pipeline.components.squad_example_gen import executor as example_gen_executor

SEQ_LEN, QUERY_LEN, DOC_STRIDE = 96, 24, 32  # short windows: many paragraphs need several


def real_articles(n_articles: int, n_paragraphs: int, start: int = 0):
    """Articles ``start`` to ``start + n_articles`` of new_wiki_v1.0.json, each cut to its first
    ``n_paragraphs`` paragraphs."""
    data = fixtures.new_wiki_articles()[start:start + n_articles]
    return [{"title": a["title"], "paragraphs": a["paragraphs"][:n_paragraphs]} for a in data]


def run_example_gen(out_dir: str, input_patterns, hash_buckets=None):
    examples = standard_artifacts.Examples()
    examples.uri = os.path.join(out_dir, "examples")
    example_gen_executor.Executor().Do({}, {"examples": [examples]}, {
        "input_patterns": json.dumps(input_patterns),
        "hash_buckets": json.dumps(hash_buckets) if hash_buckets else None})
    return examples


def run_windowing(examples, out_dir: str, beam_args, v2: bool = False, num_shards: int = 0):
    """FeatureWindowing on ``examples`` (the MiniLM vocab, SEQ_LEN/QUERY_LEN/DOC_STRIDE) into ``out_dir``."""
    features = standard_artifacts.Examples()
    features.uri = out_dir
    context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=list(beam_args))
    windowing_executor.Executor(context).Do({"examples": [examples]}, {"features": [features]}, {
        "encoder_uri": fixtures.minilm_vocab(), "do_lower_case": 1, "seq_len": SEQ_LEN,
        "query_len": QUERY_LEN, "doc_stride": DOC_STRIDE, "training_splits": '["train"]',
        "version_2_with_negative": int(v2), "multi_answer": "first", "num_shards": num_shards})
    return features


def make_corpus(root) -> dict:
    """Real articles, plus two training questions whose answers cannot be used, through
    SquadExampleGen under ``root``."""
    train = real_articles(3, 5)
    broken = copy.deepcopy(train[0]["paragraphs"][0]["qas"][0])
    broken.update(id="not-aligned", answers=[{"text": "zzqqxx", "answer_start": 0}])
    outside = copy.deepcopy(train[0]["paragraphs"][1]["qas"][0])
    outside.update(id="out-of-range", answers=[{"text": "abc", "answer_start": 10**6}])
    train[0]["paragraphs"][0]["qas"].append(broken)
    train[0]["paragraphs"][1]["qas"].append(outside)
    train_path = fixtures.write_squad(str(root / "train.json"), train)
    eval_path = fixtures.write_squad(str(root / "eval.json"), real_articles(2, 4, start=10))
    examples = run_example_gen(str(root), {"train": [train_path], "eval": [eval_path]})
    return {"root": root, "train": train_path, "eval": eval_path, "examples": examples}
