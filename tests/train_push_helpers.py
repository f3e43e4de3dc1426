"""Training features for QaTrainer, and TflitePusher's executor on fake exports and blessings.

Shared by tests/test_components_train_push.py, test_trainer_faults, test_custom_job (training
features; the ``features`` fixture of tests/conftest.py), test_object_store and test_push_faults
(pushes). Not a test module: importing it builds nothing.
"""
from __future__ import annotations

import json
import os

from tests import fixtures
from bert_qa import _env  # noqa: F401
from tfx.dsl.components.base import base_beam_executor
from tfx.types import standard_artifacts

from bert_qa_pipeline.components.feature_windowing import executor as windowing_executor
from bert_qa_pipeline.components.squad_example_gen import executor as example_gen_executor
from bert_qa_pipeline.components.tflite_pusher import executor as pusher_executor

SEQ_LEN, QUERY_LEN, DOC_STRIDE = 64, 16, 32


# -- training features --------------------------------------------------------------------------------

def window_articles(root, encoder: str, num_shards: int = 0):
    """A few real articles through SquadExampleGen and FeatureWindowing's executors, under
    ``root``; the windowed features artifact (train and eval splits)."""
    data = fixtures.new_wiki_articles()
    train = fixtures.write_squad(str(root / "train.json"),
                                 [{"title": a["title"], "paragraphs": a["paragraphs"][:2]} for a in data[:2]])
    evaluation = fixtures.write_squad(str(root / "eval.json"),
                                      [{"title": data[5]["title"], "paragraphs": data[5]["paragraphs"][:1]}])
    examples = standard_artifacts.Examples()
    examples.uri = str(root / "examples")
    example_gen_executor.Executor().Do({}, {"examples": [examples]},
                                       {"input_patterns": json.dumps({"train": [train], "eval": [evaluation]})})
    out = standard_artifacts.Examples()
    out.uri = str(root / "features")
    windowing_executor.Executor(base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=[])).Do(
        {"examples": [examples]}, {"features": [out]}, {
            "encoder_uri": encoder, "do_lower_case": 1, "seq_len": SEQ_LEN, "query_len": QUERY_LEN,
            "doc_stride": DOC_STRIDE, "training_splits": '["train"]', "version_2_with_negative": 0,
            "multi_answer": "first", "num_shards": num_shards})
    return out


def make_features(root) -> dict:
    """Windowed training features of a few real articles, for a tiny encoder, under ``root``."""
    encoder = fixtures.make_tiny_tf2_encoder(str(root / "encoder"))
    out = window_articles(root, encoder)
    return {"root": root, "encoder": encoder, "features": out}


# -- TflitePusher -------------------------------------------------------------------------------------

def fake_export(root, name: str, content: bytes):
    """A TfliteExport output whose dynamic variant is ``content`` (not a model), with a vocab."""
    model = standard_artifacts.Model()
    model.uri = str(root / name)
    os.makedirs(model.uri)
    with open(os.path.join(model.uri, "model_dynamic.tflite"), "wb") as f:
        f.write(content)
    with open(os.path.join(model.uri, "vocab.txt"), "w") as f:
        f.write("[PAD]\n")
    return model


def fake_blessing(root, name: str, blessed: bool):
    """A QaEvaluator blessing (blessed or not), its marker file included."""
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(root / name)
    os.makedirs(blessing.uri)
    open(os.path.join(blessing.uri, "BLESSED" if blessed else "NOT_BLESSED"), "w").close()
    blessing.set_int_custom_property("blessed", int(blessed))
    blessing.set_float_custom_property("f1", 50.0)
    return blessing


def push(model, blessing, destination, root, name):
    """TflitePusher's executor, in-process: the dynamic variant of ``model`` to ``destination``."""
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(root / name)
    pusher_executor.Executor().Do({"tflite_model": [model], "blessing": [blessing]}, {"pushed_model": [pushed]},
                                  {"push_destination": destination, "variant": "dynamic"})
    return pushed
