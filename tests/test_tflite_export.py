"""TFLite export: tensor names, quantized variants vs the Keras model, metadata, answering, CLI.

One tiny span model (2-layer hidden-32 random BERT, seq_len 64) is exported once to the
four variants; the tests compare each against the Keras model and the reference
implementations (squad_lib windowing + postprocess_output on the Keras model's logits).
"""
from __future__ import annotations

import json
import os
from unittest import mock

import numpy as np
import pytest

from tests import fixtures

SEQ_LEN = 64
QUERY_LEN = 24
DOC_STRIDE = 32
NAMES = ("input_word_ids", "input_mask", "input_type_ids")


def _real_questions(n_articles=1):
    data = fixtures.new_wiki_articles()
    return data[:n_articles]


def _features(feats):
    return {"input_word_ids": np.array([f.input_ids for f in feats], np.int32),
            "input_mask": np.array([f.input_mask for f in feats], np.int32),
            "input_type_ids": np.array([f.segment_ids for f in feats], np.int32)}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from bert_qa import export, squad_data
    from bert_qa.spec import BertQaSpec

    root = tmp_path_factory.mktemp("tflite")
    encoder = fixtures.make_tiny_tf2_encoder(str(root / "encoder"))
    spec = BertQaSpec(uri=encoder, seq_len=SEQ_LEN, query_len=QUERY_LEN, doc_stride=DOC_STRIDE,
                      distribution_strategy="off", model_dir=str(root / "model_dir"))
    model = spec.create_model()
    # Real windows of real questions: calibration data for int8 and the comparison inputs.
    squad_path = fixtures.write_squad(str(root / "train.json"), _real_questions())
    examples, _ = squad_data.to_squad_examples(squad_data.read_questions(squad_path), False)
    feats = []
    spec.convert_examples_to_features(
        examples[:60], False, lambda f, is_padding=False: is_padding or feats.append(f),
        batch_size=spec.predict_batch_size)
    features = _features(feats)
    saved = export.export_saved_model(model, str(root / "saved_model"), vocab_file=spec.vocab_file,
                                      do_lower_case=True, query_len=QUERY_LEN, doc_stride=DOC_STRIDE)
    calibration = {k: v[:32] for k, v in features.items()}
    paths = export.export_tflite_variants(
        saved, str(root / "out"), representative_features=calibration, vocab_file=spec.vocab_file,
        do_lower_case=True, metadata_options={"query_len": QUERY_LEN, "doc_stride": DOC_STRIDE})
    keras_start, keras_end = (t.numpy() for t in model([features[n] for n in NAMES], training=False))
    return dict(root=root, spec=spec, model=model, saved=saved, paths=paths, features=features,
                keras=(keras_start, keras_end), squad_path=squad_path, vocab=spec.vocab_file)


def test_tensor_names_shapes_and_order_match_model_maker(exported):
    from bert_qa.export import TFLITE_INPUT_NAME, TFLITE_OUTPUT_NAME
    from bert_qa.tflite_runner import LiteRunner, describe

    spec = exported["spec"]
    assert spec.tflite_input_name == TFLITE_INPUT_NAME
    assert spec.tflite_output_name == TFLITE_OUTPUT_NAME
    for name, path in exported["paths"].items():
        info = describe(path)
        assert sorted(d["name"] for d in info["inputs"]) == sorted(TFLITE_INPUT_NAME.values()), name
        assert sorted(d["name"] for d in info["outputs"]) == sorted(TFLITE_OUTPUT_NAME.values()), name
        assert all(d["shape"] == [-1, SEQ_LEN] and d["dtype"] == "int32" for d in info["inputs"])
        # Full-integer int8 keeps int32 ids in and float32 logits out (Task Library needs both).
        assert all(d["shape"] == [-1, SEQ_LEN] and d["dtype"] == "float32" for d in info["outputs"])
        assert info["signatures"]["serving_default"]["outputs"] == ["end_logits", "start_logits"]
        # The spec's Model Maker name mapping and our signature-based default pick the same
        # tensors: StatefulPartitionedCall:1 is start, :0 is end.
        by_spec = LiteRunner(path, spec.reorder_input_details, spec.reorder_output_details)
        by_default = LiteRunner(path)
        assert [d["name"] for d in by_spec.output_details] == \
            [TFLITE_OUTPUT_NAME["start_logits"], TFLITE_OUTPUT_NAME["end_logits"]]
        assert [d["index"] for d in by_spec.input_details] == [d["index"] for d in by_default.input_details]
        assert [d["index"] for d in by_spec.output_details] == [d["index"] for d in by_default.output_details]


# |tflite - keras| relative to the spread (std) of the Keras logits, measured on this model
# (max / mean): float32 1.2e-6 / 9e-8, float16 1.2e-3 / 2.4e-4, dynamic 1.3e-2 / 2.5e-3,
# int8 0.61 / 1.7e-2 (a few outlier positions; correlation 0.9997). Bounds leave 3-5x margin.
MAX_RELATIVE_ERROR = {"float32": 1e-5, "float16": 5e-3, "dynamic": 5e-2, "int8": None}
MEAN_RELATIVE_ERROR = {"float32": 1e-6, "float16": 1e-3, "dynamic": 1e-2, "int8": 6e-2}


@pytest.mark.parametrize("variant", ["float32", "float16", "dynamic", "int8"])
def test_variant_logits_match_keras(exported, variant):
    from bert_qa.tflite_runner import LiteRunner

    features = exported["features"]
    keras_start, keras_end = exported["keras"]
    runner = LiteRunner(exported["paths"][variant])
    start, end = runner.run(features)  # the whole batch at once (resized interpreter)
    assert start.shape == keras_start.shape == (len(features["input_word_ids"]), SEQ_LEN)
    spread = np.std(np.concatenate([keras_start, keras_end]))
    difference = np.abs(np.concatenate([start - keras_start, end - keras_end]))
    assert difference.mean() / spread < MEAN_RELATIVE_ERROR[variant], difference.mean() / spread
    if MAX_RELATIVE_ERROR[variant] is not None:
        assert difference.max() / spread < MAX_RELATIVE_ERROR[variant], difference.max() / spread
    ours = np.concatenate([start, end]).ravel()
    theirs = np.concatenate([keras_start, keras_end]).ravel()
    assert np.corrcoef(ours, theirs)[0, 1] > 0.998
    # Row by row (batch 1, re-allocating) gives the same numbers as the batch.
    one_start, one_end = runner.run({k: v[3] for k, v in features.items()})
    np.testing.assert_allclose(one_start, start[3], atol=1e-5 * spread + 1e-6)
    np.testing.assert_allclose(one_end, end[3], atol=1e-5 * spread + 1e-6)
    # TensorFlow's bundled interpreter (benchmarks/tflite.py --compare-runtimes) reads the same file
    # to the same logits, within a quantization step's rounding.
    import tensorflow as tf

    tf_start, tf_end = LiteRunner(exported["paths"][variant],
                                  interpreter_class=tf.lite.Interpreter).run(features)
    tolerance = (0.05 if variant == "int8" else 1e-4) * spread
    np.testing.assert_allclose(tf_start, start, atol=tolerance)
    np.testing.assert_allclose(tf_end, end, atol=tolerance)


def test_variant_sizes_and_int8_is_full_integer(exported):
    from ai_edge_litert.interpreter import Interpreter

    sizes = {k: os.path.getsize(p) for k, p in exported["paths"].items()}
    assert 0.45 < sizes["float16"] / sizes["float32"] < 0.6, sizes
    assert sizes["dynamic"] / sizes["float32"] < 0.32, sizes
    assert sizes["int8"] / sizes["float32"] < 0.32, sizes
    interpreter = Interpreter(model_path=exported["paths"]["int8"])
    dtypes = {np.dtype(d["dtype"]).name for d in interpreter.get_tensor_details()}
    assert "int8" in dtypes  # int8 activations, not just weights
    dynamic = Interpreter(model_path=exported["paths"]["dynamic"])
    assert "int8" in {np.dtype(d["dtype"]).name for d in dynamic.get_tensor_details()}


def test_dynamic_dense_weights_are_per_tensor_for_the_task_library(exported):
    """FULLY_CONNECTED v12 (per-channel hybrid) is unknown to Task Library 0.4.4's runtime."""
    from bert_qa.export import QuantizationConfig, convert
    from tensorflow_lite_support.metadata import schema_py_generated as schema

    def fc_versions(buffer):
        model = schema.Model.GetRootAsModel(buffer, 0)
        codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
        return {c.Version() for c in codes
                if max(c.BuiltinCode(), c.DeprecatedBuiltinCode()) == schema.BuiltinOperator.FULLY_CONNECTED}

    with open(exported["paths"]["dynamic"], "rb") as f:
        assert max(fc_versions(f.read())) < 12
    per_channel = convert(exported["saved"], QuantizationConfig.for_dynamic(task_library_compatible=False))
    assert 12 in fc_versions(per_channel)


def test_metadata_round_trip(exported):
    from bert_qa.export import metadata_json, read_metadata
    from bert_qa.tokenization import read_vocab
    from bert_qa.tflite_runner import describe

    for name, path in exported["paths"].items():
        md = read_metadata(path)
        assert md.vocab == read_vocab(exported["vocab"]) and len(md.vocab) == 30522
        assert md.do_lower_case is True
        assert md.options == {"do_lower_case": True, "query_len": QUERY_LEN,
                              "doc_stride": DOC_STRIDE, "quantization": name}
        assert md.info.license == "Apache-2.0" and md.info.name == "BertQuestionAnswerer"
        # seq_len 64: the metadata says the Task Library (kMaxSeqLen 384) cannot run it.
        assert "Built for seq_len 64: the TFLite Task Library's BertQuestionAnswerer needs seq_len 384." in md.info.description
        # Metadata tensor entries follow the model's tensor order, with Task Library names.
        info = describe(path)
        role = {"serving_default_input_word_ids:0": "ids", "serving_default_input_mask:0": "mask",
                "serving_default_input_type_ids:0": "segment_ids"}
        assert md.input_names == [role[d["name"]] for d in info["inputs"]]
        role = {"StatefulPartitionedCall:0": "end_logits", "StatefulPartitionedCall:1": "start_logits"}
        assert md.output_names == [role[d["name"]] for d in info["outputs"]]
    shown = json.loads(metadata_json(exported["paths"]["dynamic"]))
    units = shown["subgraph_metadata"][0]["input_process_units"]
    assert units[0]["options_type"] == "BertTokenizerOptions"
    assert units[0]["options"]["vocab_file"][0]["name"] == "vocab.txt"


def test_metadata_packs_the_vocabulary_with_a_fixed_time(exported, monkeypatch):
    """Exports of the same weights are byte-identical whenever they run (the zip entry that
    carries vocab.txt would otherwise hold the time of packing)."""
    import io
    import time
    import zipfile

    from bert_qa.export import QuantizationConfig, convert
    from bert_qa.export import metadata as qa_metadata

    buffer = convert(exported["saved"], QuantizationConfig.for_float32())

    def packed_at(seconds):
        with monkeypatch.context() as patch:
            patch.setattr(time, "time", lambda: seconds)
            return qa_metadata.add_metadata(buffer, exported["vocab"])

    first, second = packed_at(1.0e9), packed_at(1.7e9)  # 2001 and 2023
    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert archive.testzip() is None  # CRCs still match the contents
        assert [i.date_time for i in archive.infolist()] == [(1980, 1, 1, 0, 0, 0)]
        with open(exported["vocab"], "rb") as f:
            assert archive.read("vocab.txt") == f.read()
    # Without the fix the two exports differ (the test can fail).
    monkeypatch.setattr(qa_metadata, "with_fixed_zip_times", lambda b: b)
    assert packed_at(1.0e9) != packed_at(1.7e9)


def test_custom_metadata_fields_and_cased_tokenizer(exported, tmp_path, caplog):
    import logging

    from bert_qa.answering import TfliteQuestionAnswerer
    from bert_qa.export import export_tflite, read_metadata

    with caplog.at_level(logging.WARNING, logger="bert_qa.export.tflite"):
        path = export_tflite(exported["saved"], str(tmp_path / "cased.tflite"), "float32",
                             vocab_file=exported["vocab"], do_lower_case=False, model_name="MyQA",
                             version="2.1", description="d", author="me", license="MIT",
                             metadata_options={"query_len": QUERY_LEN})
    assert "takes seq_len 64: the TFLite Task Library's BertQuestionAnswerer runs only seq_len 384" in caplog.text
    md = read_metadata(path)
    assert (md.info.name, md.info.version, md.info.author, md.info.license) == ("MyQA", "2.1", "me", "MIT")
    assert md.info.description.startswith("d Built for seq_len 64")
    assert md.do_lower_case is False
    answerer = TfliteQuestionAnswerer(path)
    assert answerer.tokenizer.do_lower_case is False and answerer.query_len == QUERY_LEN
    assert answerer.tokenizer.tokenize("Paris") != TfliteQuestionAnswerer(
        exported["paths"]["float32"]).tokenizer.tokenize("Paris")


def test_quantization_config_api(exported):
    import tensorflow as tf

    from bert_qa.export import QuantizationConfig, representative_samples

    default = exported["spec"].get_default_quantization_config()
    assert default.name == "dynamic" and default.optimizations == [tf.lite.Optimize.DEFAULT]
    assert default.per_tensor_dense_weights
    assert QuantizationConfig.for_float32().optimizations is None
    assert QuantizationConfig.for_float16().supported_types == [tf.float16]
    with pytest.raises(ValueError, match="representative_data"):
        QuantizationConfig.for_int8(None)
    with pytest.raises(ValueError, match="Unknown quantization"):
        QuantizationConfig.from_name("int4")
    data = {n: np.arange(12).reshape(3, 4) for n in NAMES}
    samples = list(representative_samples(data, max_samples=2))
    assert len(samples) == 2 and samples[1]["input_mask"].tolist() == [[4, 5, 6, 7]]
    assert samples[0]["input_word_ids"].dtype == np.int32
    with pytest.raises(ValueError, match="input_type_ids"):
        list(representative_samples({"input_word_ids": data["input_word_ids"]}))


def test_answering_matches_squad_lib_reference_on_the_keras_model(exported):
    """Our .tflite answering == squad_lib windowing + Keras logits + postprocess_output."""
    from official.legacy.bert.run_squad_helper import RawResult
    from official.nlp.data import squad_lib
    from official.nlp.tools import tokenization

    from bert_qa.answering import TfliteQuestionAnswerer

    # Reference: squad_lib end to end on the Keras model (Model Maker's evaluate path).
    examples = squad_lib.read_squad_examples(exported["squad_path"], is_training=False,
                                             version_2_with_negative=False)[:6]
    tokenizer = tokenization.FullTokenizer(exported["vocab"], do_lower_case=True)
    features = []
    squad_lib.convert_examples_to_features(examples, tokenizer, SEQ_LEN, DOC_STRIDE, QUERY_LEN,
                                           is_training=False,
                                           output_fn=lambda f, is_padding=False: is_padding or features.append(f),
                                           batch_size=4)
    assert len(features) > len(examples)  # contexts span several windows at seq_len 64
    inputs = _features(features)
    start, end = exported["model"]([inputs[n] for n in NAMES], training=False)
    results = [RawResult(unique_id=f.unique_id, start_logits=s.tolist(), end_logits=e.tolist())
               for f, s, e in zip(features, start.numpy(), end.numpy())]
    _, reference, _ = squad_lib.postprocess_output(examples, features, results, n_best_size=20,
                                                   max_answer_length=30, do_lower_case=True)

    answerer = TfliteQuestionAnswerer(exported["paths"]["float32"])
    ours = answerer.predict([(e.qas_id, " ".join(e.doc_tokens), e.question_text) for e in examples])
    assert [f.input_ids for f in ours.features] == [f.input_ids for f in features]
    for example in examples:
        want, got = reference[example.qas_id], ours.nbest[example.qas_id]
        assert [a["text"] for a in want] == [a.text for a in got]
        np.testing.assert_allclose([a["probability"] for a in want], [a.probability for a in got],
                                   atol=1e-4)


def test_cli_export_and_predict(exported, tmp_path, capsys):
    from bert_qa.answering import TfliteQuestionAnswerer
    from bert_qa.export import read_metadata
    from bert_qa_cli.main import main

    out = tmp_path / "cli"
    assert main(["export", "--saved-model", exported["saved"], "--output-dir", str(out),
                 "--quantization", "float32,int8", "--representative-data", exported["squad_path"],
                 "--num-calibration", "8", "--license", "CC-BY-4.0"]) == 0
    printed = capsys.readouterr().out
    assert "Calibrating int8 on 8 windows" in printed
    assert sorted(os.listdir(out)) == ["model_float32.tflite", "model_int8.tflite"]
    md = read_metadata(str(out / "model_int8.tflite"))
    # Vocab, casing and windowing came from the SavedModel's assets.extra.
    assert md.info.license == "CC-BY-4.0" and md.options["query_len"] == QUERY_LEN
    assert md.options["doc_stride"] == DOC_STRIDE and len(md.vocab) == 30522

    article = _real_questions()[0]["paragraphs"][0]
    context, question = article["context"], article["qas"][0]["question"]
    context_file = tmp_path / "context.txt"
    context_file.write_text(context, encoding="utf-8")
    model = str(out / "model_float32.tflite")
    assert main(["predict", "--model", model, "--context-file", str(context_file),
                 "--question", question, "--top-k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    expected = TfliteQuestionAnswerer(model).answer(context, question, top_k=3)
    assert lines[0] == f"Q: {question}" and len(lines) == 4
    for line, answer in zip(lines[1:], expected):
        assert repr(answer.text) in line and f"{answer.probability:.4f}" in line

    assert main(["export", "--saved-model", exported["saved"], "--output-dir", str(out),
                 "--quantization", "int8"]) == 2
    assert "--representative-data" in capsys.readouterr().err


def test_a_model_trained_short_serves_at_384_with_the_same_answers(tiny_encoder, tmp_path):
    """export_at_seq_len (the library's; TfliteExport converts from the same rebuild,
    ``trained_model``): the trained weights at 384 tokens give
    the trained model's logits on every real position, to the bit (padding is masked out of
    attention). Weights are moved off their initial values first, so a variable left at its
    fresh value would show."""
    import tensorflow as tf

    from bert_qa.export import export_at_seq_len, export_saved_model
    from bert_qa.spec import BertQaSpec

    spec = BertQaSpec(uri=tiny_encoder, model_dir=str(tmp_path / "m"), seq_len=64, query_len=16, doc_stride=32,
                      distribution_strategy="off")
    model = spec.create_model()
    for weight in model.weights:
        if weight.dtype == tf.float32:
            weight.assign(weight + tf.random.normal(weight.shape, stddev=0.02, seed=1))
    export_saved_model(model, str(tmp_path / "sm64"), spec=spec)
    served = export_at_seq_len(str(tmp_path / "sm64"), 384, str(tmp_path / "sm384"), work_dir=str(tmp_path / "w"))
    assert export_at_seq_len(served, 384, str(tmp_path / "again")) == served  # already that length
    short = tf.saved_model.load(str(tmp_path / "sm64")).signatures["serving_default"]
    long = tf.saved_model.load(served).signatures["serving_default"]
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 30000, size=(2, 64)).astype(np.int32)
    mask, types = np.ones((2, 64), np.int32), np.zeros((2, 64), np.int32)
    ids[1, 50:], mask[1, 50:], types[:, 20:] = 0, 0, 1
    pad = lambda x: np.pad(x, ((0, 0), (0, 320)))  # noqa: E731
    a = short(input_word_ids=ids, input_mask=mask, input_type_ids=types)
    b = long(input_word_ids=pad(ids), input_mask=pad(mask), input_type_ids=pad(types))
    for name in ("start_logits", "end_logits"):
        assert b[name].shape == (2, 384)
        np.testing.assert_array_equal(a[name].numpy()[0], b[name].numpy()[0, :64])
        np.testing.assert_array_equal(a[name].numpy()[1, :50], b[name].numpy()[1, :50])
    # A fresh model at 384 (no trained weights) does not: the comparison can fail.
    fresh = BertQaSpec(uri=tiny_encoder, model_dir=str(tmp_path / "f"), seq_len=384, query_len=16,
                       doc_stride=32, distribution_strategy="off").create_model()
    start, _ = fresh([pad(ids), pad(mask), pad(types)], training=False)
    assert not np.array_equal(a["start_logits"].numpy()[0], start.numpy()[0, :64])


def test_a_serving_length_beyond_the_position_table_is_refused():
    from bert_qa_pipeline.pipeline import config as config_lib

    with pytest.raises(config_lib.ConfigError, match=r"export.serving_seq_len=600: is longer than the "
                                                     r"encoder's position table: .*<= 512"):
        config_lib.check_settings(config_lib.load_config(None, [{"export": {"serving_seq_len": 600}}]))
    with pytest.raises(config_lib.ConfigError, match=r"export.serving_seq_len=20: leaves no room"):
        config_lib.check_settings(config_lib.load_config(None, [{"export": {"serving_seq_len": 20}}]))


def test_a_pipeline_can_push_dynamic_range_without_the_outlier_split():
    """``dynamic_unsplit`` is a variant name a pipeline config (and so the CLI's ``--set``) takes
    as the exported, gated and pushed variant (the executor's side:
    ``test_weight_outliers.py::test_the_pipelines_export_splits_dynamic_not_dynamic_unsplit_at_the_serving_length``);
    a name the pipeline does not export is refused, and so is a gate on another file than the pushed one."""
    from bert_qa_pipeline.pipeline import config as config_lib

    unsplit = {"export": {"variants": ["dynamic_unsplit"]}, "push": {"variant": "dynamic_unsplit"},
               "evaluation": {"quantized_variant": "dynamic_unsplit"}}
    config_lib.check_settings(config_lib.load_config(None, [unsplit]))  # load_config validates
    with pytest.raises(config_lib.ConfigError, match=r"dynamic_per_channel"):
        config_lib.load_config(None, [{"export": {"variants": ["dynamic_per_channel"]}}])
    both = {"export": {"variants": ["dynamic", "dynamic_unsplit"]}, "push": {"variant": "dynamic_unsplit"}}
    with pytest.raises(config_lib.ConfigError, match=r"quantization gate would check a file that is not pushed"):
        config_lib.load_config(None, [both])  # quantized_variant stays "dynamic"
    config_lib.load_config(None, [both, {"evaluation": {"quantized_variant": "dynamic_unsplit"}}])
    config_lib.load_config(None, [{"export": {"variants": ["float32", "dynamic"]}, "push": {"variant": "float32"}}])


def test_the_serving_saved_model_holds_the_weights_not_the_optimizer_state(exported, tmp_path):
    """A trained model tracks its optimizer; its Adam slots (two per weight) do not go into the
    serving SavedModel (MiniLM: 261 MB with them, 88 MB without), and the model keeps its
    optimizer after the export (training can go on), as tf_keras' include_optimizer=False does."""
    import tensorflow as tf
    import tf_keras
    from bert_qa import export

    model = exported["spec"].create_native_float32_model()
    optimizer = tf_keras.optimizers.Adam(1e-3)
    model.compile(optimizer=optimizer)
    optimizer.build(model.trainable_variables)  # the slots a trained model has
    assert len(optimizer.variables) > 2 * len(model.trainable_variables)
    saved = export.export_saved_model(model, str(tmp_path / "trained"), spec=exported["spec"])
    stored = [name for name, _ in tf.train.list_variables(os.path.join(saved, "variables", "variables"))
              if name.endswith(".ATTRIBUTES/VARIABLE_VALUE") and name != "save_counter/.ATTRIBUTES/VARIABLE_VALUE"]
    assert not [name for name in stored if name.startswith("optimizer/")], stored[:5]
    assert len(stored) == len(model.variables)
    assert model.optimizer is optimizer and "optimizer" in model._trackable_children()
    # A save that fails leaves the model as it was, optimizer and all.
    with mock.patch.object(tf.saved_model, "save", side_effect=OSError("disk full")):
        with pytest.raises(OSError, match="disk full"):
            export.export_saved_model(model, str(tmp_path / "failed"), spec=exported["spec"])
    assert model.optimizer is optimizer and "optimizer" in model._trackable_children()


def test_the_serving_saved_model_holds_its_signature_not_keras_layer_traces(exported, tmp_path):
    """export_saved_model saves the serving signature without tf_keras' per-layer call traces
    (its docstring: they were most of the save, load and conversion time, and no reader uses
    them), and the signature still gives the model's logits. The model is the natively built
    one training uses (a loaded TF Hub layer brings the module's own traces along)."""
    import tensorflow as tf
    from tensorflow.python.saved_model import loader_impl
    from bert_qa import export

    model = exported["spec"].create_native_float32_model()
    saved = export.export_saved_model(model, str(tmp_path / "native"), spec=exported["spec"])
    meta_graph = loader_impl.parse_saved_model(saved).meta_graphs[0]
    functions = [f.signature.name for f in meta_graph.graph_def.library.function]
    assert any("serving" in name for name in functions), functions[:10]
    traced = [name for name in functions if "call_and_return_conditional_losses" in name]
    assert traced == [], traced[:5]
    inputs = [exported["features"][n][:4] for n in NAMES]
    serving = tf.saved_model.load(saved).signatures["serving_default"]
    outputs = serving(**{n: tf.constant(v) for n, v in zip(NAMES, inputs)})
    np.testing.assert_array_equal(outputs["start_logits"].numpy(), model(inputs, training=False)[0].numpy())
