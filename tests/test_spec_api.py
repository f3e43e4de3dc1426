"""BertQaSpec / MobileBertQaSpec keep TFLite Model Maker's API, defaults and record format."""
import inspect

import numpy as np
import pytest
import tensorflow as tf

from bert_qa import BertQaSpec, MobileBertQaSpec
from bert_qa.spec import BERT_URI, MOBILEBERT_URI

MODEL_MAKER_ARGS = ["uri", "model_dir", "seq_len", "query_len", "doc_stride", "dropout_rate",
                    "initializer_range", "learning_rate", "distribution_strategy", "num_gpus", "tpu",
                    "trainable", "predict_batch_size", "do_lower_case", "is_tf2", "tflite_input_name",
                    "tflite_output_name", "init_from_squad_model", "default_batch_size", "name"]
COMMON_DEFAULTS = dict(model_dir=None, seq_len=384, query_len=64, doc_stride=128, dropout_rate=0.1,
                       initializer_range=0.02, num_gpus=-1, tpu="", trainable=True, predict_batch_size=8,
                       do_lower_case=True, tflite_input_name=None, tflite_output_name=None,
                       init_from_squad_model=False)
# Ours, after Model Maker's (so positional calls keep working): the training recipe, the precision.
ADDITIVE_ARGS = {"optimizer_recipe": "model_maker", "mixed_precision": "float32"}
METHODS = ["build", "convert_examples_to_features", "create_model", "train", "predict", "predict_tflite",
           "evaluate", "get_config", "get_default_quantization_config", "get_name_to_features",
           "select_data_from_record", "reorder_input_details", "reorder_output_details", "save_vocab"]


@pytest.mark.parametrize("cls,specific", [
    (BertQaSpec, dict(uri="https://tfhub.dev/tensorflow/bert_en_uncased_L-12_H-768_A-12/1",
                      learning_rate=8e-05, distribution_strategy="mirrored", is_tf2=True,
                      default_batch_size=16, name="Bert")),
    (MobileBertQaSpec, dict(uri="https://tfhub.dev/google/mobilebert/uncased_L-24_H-128_B-512_A-4_F-4_OPT/1",
                            learning_rate=4e-05, distribution_strategy="off", is_tf2=False,
                            default_batch_size=32, name="MobileBert")),
])
def test_constructor_arguments_defaults_and_order(cls, specific):
    params = inspect.signature(cls.__init__).parameters
    assert list(params)[1:] == MODEL_MAKER_ARGS + list(ADDITIVE_ARGS)
    defaults = {name: p.default for name, p in params.items() if name != "self"}
    assert defaults == {**COMMON_DEFAULTS, **specific, **ADDITIVE_ARGS}
    for method in METHODS:
        assert callable(getattr(cls, method)), method
    assert (cls.compat_tf_versions, cls.convert_from_saved_model_tf2, cls.need_gen_vocab) == ([2], True, False)


def test_unknown_optimizer_recipe_is_refused():
    with pytest.raises(ValueError, match="optimizer_recipe must be one of"):
        BertQaSpec(uri="/nonexistent", distribution_strategy="off", optimizer_recipe="sgd")


def test_default_uris_are_model_makers():
    assert BERT_URI == "https://tfhub.dev/tensorflow/bert_en_uncased_L-12_H-768_A-12/1"
    assert MOBILEBERT_URI == "https://tfhub.dev/google/mobilebert/uncased_L-24_H-128_B-512_A-4_F-4_OPT/1"
    spec = MobileBertQaSpec()
    assert (spec.uri, spec.is_tf2, spec.learning_rate, spec.name) == (MOBILEBERT_URI, False, 4e-05, "MobileBert")
    assert spec.tflite_input_name == {"ids": "serving_default_input_word_ids:0",
                                      "mask": "serving_default_input_mask:0",
                                      "segment_ids": "serving_default_input_type_ids:0"}
    assert spec.tflite_output_name == {"start_logits": "StatefulPartitionedCall:1",
                                       "end_logits": "StatefulPartitionedCall:0"}
    assert spec.get_config() == {"uri": MOBILEBERT_URI, "seq_len": 384, "query_len": 64, "doc_stride": 128}


def test_record_format_and_selection():
    spec = BertQaSpec(seq_len=16, query_len=8, distribution_strategy="off")
    train = spec.get_name_to_features(is_training=True)
    assert set(train) == {"input_ids", "input_mask", "segment_ids", "start_positions", "end_positions"}
    assert train["input_ids"].shape == [16] and train["start_positions"].shape == []
    assert set(spec.get_name_to_features(False)) == {"input_ids", "input_mask", "segment_ids", "unique_ids"}
    record = {name: tf.constant(i) for i, name in enumerate(
        ["input_ids", "input_mask", "segment_ids", "start_positions", "end_positions", "unique_ids"])}
    x, y = spec.select_data_from_record(record)
    assert {k: int(v) for k, v in x.items()} == {"input_word_ids": 0, "input_mask": 1, "input_type_ids": 2,
                                                 "unique_ids": 5}
    assert {k: int(v) for k, v in y.items()} == {"start_positions": 3, "end_positions": 4}


def test_reorder_tflite_details():
    spec = BertQaSpec(distribution_strategy="off")
    inputs = [{"name": "serving_default_input_type_ids:0", "index": 2},
              {"name": "serving_default_input_word_ids:0", "index": 0},
              {"name": "serving_default_input_mask:0", "index": 1}]
    assert [d["index"] for d in spec.reorder_input_details(inputs)] == [0, 1, 2]
    outputs = [{"name": "StatefulPartitionedCall:0", "index": 7}, {"name": "StatefulPartitionedCall:1", "index": 8}]
    start, end = spec.reorder_output_details(outputs)
    assert (start["index"], end["index"]) == (8, 7)
    with pytest.raises(ValueError, match="lack"):
        spec.reorder_input_details(inputs[:2])


def test_build_reads_vocab_and_save_vocab(tiny_encoder, vocab_file, tmp_path):
    spec = BertQaSpec(uri=tiny_encoder, seq_len=64, query_len=16, doc_stride=32, distribution_strategy="off")
    spec.build()
    assert spec.tokenizer.vocab["[CLS]"] == 101 and len(spec.tokenizer.vocab) == 30522
    spec.save_vocab(str(tmp_path / "vocab.txt"))
    assert (tmp_path / "vocab.txt").read_bytes() == open(vocab_file, "rb").read()
    model = spec.create_model()
    assert [t.name.split(":")[0] for t in model.inputs] == ["input_word_ids", "input_mask", "input_type_ids"]
    ids = np.zeros((2, 64), np.int32)
    start, end = model({"input_word_ids": ids, "input_mask": ids + 1, "input_type_ids": ids})
    assert start.shape == (2, 64) and end.shape == (2, 64)


def test_seq_len_too_short_for_query():
    with pytest.raises(ValueError, match="no room"):
        BertQaSpec(seq_len=64, query_len=64, distribution_strategy="off")


def test_reinitialize_gives_an_untrained_model(tiny_encoder):
    from bert_qa import modeling

    spec = BertQaSpec(uri=tiny_encoder, seq_len=32, query_len=8, distribution_strategy="off")
    model = spec.create_model()
    before = {w.name: w.numpy().copy() for w in model.weights}
    modeling.reinitialize(model, 0.02, seed=1)
    after = {w.name: w.numpy() for w in model.weights}
    for name, value in after.items():
        if not np.issubdtype(value.dtype, np.floating):  # counters and flags are not weights
            assert np.array_equal(value, before[name]), name
        elif "gamma" in name:
            assert np.all(value == 1.0), name
        elif "beta" in name or "bias" in name:
            assert np.all(value == 0.0), name
        else:
            assert not np.array_equal(value, before[name]) and abs(float(value.std()) - 0.02) < 0.01, name


def test_mobilebert_spec_is_a_partial_of_the_bert_spec():
    """Only its own defaults are stated; positional calls, help() and records still work."""
    import pydoc

    from bert_qa.spec import spec_from_record, spec_record

    spec = MobileBertQaSpec("/some/encoder", "/tmp/md", 256)  # Model Maker's positional order
    assert (spec.uri, spec.model_dir, spec.seq_len, spec.query_len, spec.learning_rate) == (
        "/some/encoder", "/tmp/md", 256, 64, 4e-05)
    text = pydoc.render_doc(MobileBertQaSpec, renderer=pydoc.plaintext)
    import re

    assert re.search(r"default_batch_size[^,]*= 32,", text) and re.search(r"mixed_precision[^,]*= 'float32'\)", text)
    with pytest.raises(TypeError):
        MobileBertQaSpec(no_such_argument=1)
    record = spec_record(spec)
    assert record["spec"] == "MobileBertQaSpec" and "model_dir" not in record["args"]
    again = spec_from_record(record)
    assert type(again) is MobileBertQaSpec and spec_record(again) == record


def test_the_default_encoder_is_recorded_portably():
    """"default" stays "default" in a record (any process resolves it), never a cache path."""
    from bert_qa import encoders
    from bert_qa.pretrained import default_encoder_dir
    from bert_qa.spec import spec_record, windowing_defaults

    spec = BertQaSpec(uri="default", distribution_strategy="off")
    assert spec_record(spec)["args"]["uri"] == "default"
    assert spec_record(BertQaSpec(uri="", distribution_strategy="off"))["args"]["uri"] == "default"
    assert encoders.resolve("default") == default_encoder_dir()
    spec.build()
    assert spec.module_path == default_encoder_dir()
    assert windowing_defaults() == {"seq_len": 384, "query_len": 64, "doc_stride": 128, "do_lower_case": True}
