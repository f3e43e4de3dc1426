"""Dense kernels' outlier weights split before per-tensor dynamic-range conversion.

A tiny native span model (2 layers, hidden 32, seq 64) gets one planted outlier, 40x its
kernel's largest weight, in layer 0's feed-forward output kernel: the shape MiniLM has (one
7.91 where the channels' largest weights are about 0.19). Per-tensor int8 then gives that
kernel a step 40x too coarse for the rest of its weights. The checks read the converted
file's own quantization scales (LiteRT's tensor details), not our arithmetic.
"""
from __future__ import annotations

import logging

import numpy as np
import pytest

from tests import fixtures

SEQ_LEN = 64
NAMES = ("input_word_ids", "input_mask", "input_type_ids")
PLANTED_FACTOR = 40.0


def _kernel_holder(model):
    """Layer 0's TransformerEncoderBlock (the one that calls ``self._output_dense``)."""
    return fixtures.encoder_blocks(model)[0]


def _features(seed=1, rows=4):
    ids = np.random.RandomState(seed).randint(1, 100, (rows, SEQ_LEN)).astype(np.int32)
    return {"input_word_ids": ids, "input_mask": np.ones_like(ids), "input_type_ids": np.zeros_like(ids)}


def _logits(model, features):
    return np.stack([t.numpy() for t in model([features[n] for n in NAMES], training=False)])


@pytest.fixture(scope="module")
def planted(tmp_path_factory, tiny_encoder):
    from bert_qa import export
    from bert_qa.spec import BertQaSpec

    root = tmp_path_factory.mktemp("weight_outliers")
    spec = BertQaSpec(uri=tiny_encoder, seq_len=SEQ_LEN, query_len=24, doc_stride=32,
                      distribution_strategy="off", model_dir=str(root / "model_dir"))
    model = spec.create_native_float32_model()
    kernel, rest_max = fixtures.plant_weight_outliers(model, PLANTED_FACTOR)
    saved = export.export_saved_model(model, str(root / "with_spec"), spec=spec)
    bare = export.export_saved_model(model, str(root / "without_spec"))
    return dict(root=root, spec=spec, model=model, kernel=kernel, planted=PLANTED_FACTOR * rest_max,
                kernel_layer=_kernel_holder(model)._output_dense,
                rest_max=rest_max, saved=saved, bare=bare)


def _int8_weight_scales(buffer):
    """Per-tensor scales of the file's int8 weight tensors (those the converter quantizes)."""
    weights = fixtures.tflite_int8_weights(buffer)
    assert all(len(scales) == 1 for _, scales in weights), "per-tensor dense weights expected (Task Library 0.4.4)"
    return [scales[0] for _, scales in weights]


def _tflite_logits(buffer, features):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=buffer)
    interpreter.allocate_tensors()
    starts, ends = [], []
    for i in range(len(features["input_word_ids"])):
        for d in interpreter.get_input_details():
            name = d["name"].split("serving_default_")[-1].split(":")[0]
            interpreter.set_tensor(d["index"], features[name][i:i + 1])
        interpreter.invoke()
        out = {d["name"]: interpreter.get_tensor(d["index"])[0] for d in interpreter.get_output_details()}
        ends.append(out["StatefulPartitionedCall:0"])
        starts.append(out["StatefulPartitionedCall:1"])
    return np.stack([np.stack(starts), np.stack(ends)])


def test_outliers_are_the_few_entries_far_above_the_channels_largest():
    from bert_qa.export.weight_outliers import MAX_OUTLIERS, outliers_of

    kernel = np.random.RandomState(0).normal(0, 0.05, (256, 64)).astype(np.float32)
    assert not outliers_of(kernel).any()  # a Gaussian kernel: nothing to split
    planted = kernel.copy()
    planted[7, 3], planted[100, 60] = 2.0, -1.5
    assert sorted(zip(*np.nonzero(outliers_of(planted)))) == [(7, 3), (100, 60)]
    small = planted[:8, :64]  # 512 elements: the converter leaves it float anyway
    assert not outliers_of(small).any()
    crowded = kernel.copy()
    crowded[np.arange(MAX_OUTLIERS + 1), 0] = 2.0  # too many to be outliers: left as it is
    assert not outliers_of(crowded).any()


def test_dynamic_export_scales_the_kernel_without_its_outlier(planted):
    """The converter's per-tensor step follows the largest weight: without the split, the
    planted kernel's step is the outlier's; with it, the step of the kernel's other weights,
    and every other tensor's scale is unchanged."""
    from bert_qa import export
    from bert_qa.export.quantization import QuantizationConfig

    split = export.convert(planted["saved"], QuantizationConfig.for_dynamic())
    plain = export.convert(planted["saved"], QuantizationConfig.for_dynamic(split_weight_outliers=False))
    plain_scales, split_scales = sorted(_int8_weight_scales(plain)), sorted(_int8_weight_scales(split))
    assert plain_scales[-1] == pytest.approx(planted["planted"] / 127, rel=1e-5)
    expected = sorted(plain_scales[:-1] + [planted["rest_max"] / 127])
    np.testing.assert_allclose(split_scales, expected, rtol=1e-5)
    # What the split adds: one GATHER of the outlier's input channel, one small float matmul.
    split_ops, plain_ops = fixtures.tflite_op_counts(split), fixtures.tflite_op_counts(plain)
    assert split_ops["GATHER"] == plain_ops["GATHER"] + 1
    assert split_ops["FULLY_CONNECTED"] == plain_ops["FULLY_CONNECTED"] + 1


def test_split_model_is_the_same_function_and_closer_to_float(planted):
    """In float the split changes nothing but a sum's order; after dynamic-range quantization
    its logits are closer to the float model's than the unsplit file's."""
    from bert_qa import export
    from bert_qa.export.quantization import QuantizationConfig
    from bert_qa.export.weight_outliers import split_weight_outliers

    model, features = planted["model"], _features()
    reference = _logits(model, features)
    with split_weight_outliers(model) as splits:
        assert [s.outliers for s in splits] == [1]
        np.testing.assert_allclose(_logits(model, features), reference, atol=1e-5)
    float_split = QuantizationConfig.for_float32()
    float_split.split_weight_outliers = True
    np.testing.assert_allclose(_tflite_logits(export.convert(model, float_split), features), reference,
                               atol=1e-5)
    split_error = np.abs(_tflite_logits(export.convert(model, "dynamic"), features) - reference).mean()
    plain = QuantizationConfig.for_dynamic(split_weight_outliers=False)
    plain_error = np.abs(_tflite_logits(export.convert(model, plain), features) - reference).mean()
    assert split_error < plain_error, (split_error, plain_error)


def test_the_model_is_restored_after_the_split(planted):
    from bert_qa.export.weight_outliers import split_weight_outliers

    model, holder = planted["model"], _kernel_holder(planted["model"])
    layer, before = holder._output_dense, planted["kernel"].numpy().copy()
    order = [id(v) for v in model.weights]  # what get_weights / set_weights pair by
    with split_weight_outliers(model):
        assert holder._output_dense is not layer
        assert np.abs(layer.kernel.numpy()).max() < np.abs(before).max()
    assert holder._output_dense is layer
    np.testing.assert_array_equal(layer.kernel.numpy(), before)  # bit for bit
    assert [id(v) for v in model.weights] == order


def test_a_split_that_changes_the_function_is_refused_and_undone(planted, monkeypatch):
    """The probe: a split layer its parent does not call (here: a correction that adds
    nothing) would export a different model; it is an error, and the model comes back whole."""
    from bert_qa.export import weight_outliers

    real = weight_outliers._correction_layer_class

    def without_correction():
        cls = real()

        class Dropped(cls):
            def call(self, inputs, training=None):
                return self.inner(inputs)

        return Dropped

    monkeypatch.setattr(weight_outliers, "_correction_layer_class", without_correction)
    model, features = planted["model"], _features()
    reference = _logits(model, features)
    with pytest.raises(RuntimeError, match="changed what the model computes"):
        with weight_outliers.split_weight_outliers(model):
            pass
    np.testing.assert_array_equal(_logits(model, features), reference)
    assert _kernel_holder(model)._output_dense is planted["kernel_layer"]


def test_only_float32_plain_matmuls_are_split():
    """A layer computing in bfloat16 (a mixed-precision model) or with an activation inside is not
    ``y = x W + b`` in float32, so adding a float32 correction to it would be wrong or fail."""
    import tf_keras

    from bert_qa.export.weight_outliers import _is_plain_matmul

    def built(layer, width=64):
        layer.build((None, 8, width))
        return layer

    assert _is_plain_matmul(built(tf_keras.layers.EinsumDense("abc,cd->abd", (None, 32), bias_axes="d")))
    assert _is_plain_matmul(built(tf_keras.layers.Dense(32)))
    assert not _is_plain_matmul(built(tf_keras.layers.Dense(32, dtype="mixed_bfloat16")))
    assert not _is_plain_matmul(built(tf_keras.layers.Dense(32, activation="relu")))
    assert not _is_plain_matmul(built(tf_keras.layers.EinsumDense("abc,cde->abde", (None, 4, 8))))


def test_a_saved_model_without_a_spec_is_converted_unsplit_with_a_warning(planted, caplog):
    from bert_qa import export

    with caplog.at_level(logging.WARNING, logger="bert_qa.export.tflite"):
        buffer = export.convert(planted["bare"], "dynamic")
    assert max(_int8_weight_scales(buffer)) == pytest.approx(planted["planted"] / 127, rel=1e-5)
    assert any("records no spec" in r.getMessage() and planted["bare"] in r.getMessage()
               for r in caplog.records)


def test_per_channel_dynamic_range_does_not_split():
    from bert_qa.export.quantization import QuantizationConfig

    assert QuantizationConfig.for_dynamic().split_weight_outliers
    assert not QuantizationConfig.for_dynamic(task_library_compatible=False).split_weight_outliers
    assert not QuantizationConfig.from_name("dynamic_per_channel").split_weight_outliers
    unsplit = QuantizationConfig.from_name("dynamic_unsplit")
    assert unsplit.per_tensor_dense_weights and not unsplit.split_weight_outliers
    assert unsplit.name == "dynamic_unsplit" and QuantizationConfig.for_dynamic().name == "dynamic"
    for name in ("float32", "float16"):
        assert not QuantizationConfig.from_name(name).split_weight_outliers


def test_a_tf_hub_layer_encoder_is_converted_unsplit_with_a_warning(tmp_path, tiny_encoder, caplog):
    """An encoder that only loads as a TF Hub layer (no recorded shape to rebuild it from) hides
    its dense layers: the outlier is found in the checkpoint, reported, and left in place."""
    from bert_qa import export
    from bert_qa.spec import BertQaSpec

    spec = BertQaSpec(uri=tiny_encoder, seq_len=SEQ_LEN, query_len=24, doc_stride=32,
                      distribution_strategy="off", model_dir=str(tmp_path / "model_dir"))
    model = spec.create_model()
    assert not any(type(m).__name__ == "TransformerEncoderBlock" for m in model.submodules)
    kernel = sorted((v for v in model.trainable_variables if len(v.shape) == 2 and "output" in v.name
                     and "attention" not in v.name and int(np.prod(v.shape)) >= 1024), key=lambda v: v.name)[0]
    values = kernel.numpy()
    values[3, 5] = PLANTED_FACTOR * float(np.abs(values).max())
    kernel.assign(values)
    saved = export.export_saved_model(model, str(tmp_path / "hub_layer"), spec=spec)
    with caplog.at_level(logging.WARNING, logger="bert_qa.export.tflite"):
        buffer = export.convert(saved, "dynamic")
    assert max(_int8_weight_scales(buffer)) == pytest.approx(values[3, 5] / 127, rel=1e-5)
    assert any("TF Hub layer" in r.getMessage() and saved in r.getMessage() for r in caplog.records)
    # The Keras model itself (what TfliteExport converts at a serving length): the same warning.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bert_qa.export.tflite"):
        buffer = export.convert(model, "dynamic")
    assert max(_int8_weight_scales(buffer)) == pytest.approx(values[3, 5] / 127, rel=1e-5)
    assert any("TF Hub layer" in r.getMessage() and model.name in r.getMessage() for r in caplog.records)


def test_a_rebuild_that_fails_or_differs_is_converted_unsplit_with_a_warning(planted, monkeypatch, caplog):
    """The split converts a rebuilt model, so the rebuild must be the saved one: a rebuild that
    raises, or whose logits differ from the SavedModel's own signature (here: the same
    architecture, freshly initialised), leaves the file as it was, and says why."""
    from bert_qa import export
    from bert_qa.export import tflite

    def fresh(saved_model_dir, seq_len=None, work_dir=None):
        return planted["spec"].create_native_float32_model(), planted["spec"]

    def broken(saved_model_dir, seq_len=None, work_dir=None):
        raise ValueError("no such encoder")

    for rebuild, why in ((fresh, "computes other logits"), (broken, "ValueError: no such encoder")):
        monkeypatch.setattr(tflite, "trained_model", rebuild)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="bert_qa.export.tflite"):
            buffer = export.convert(planted["saved"], "dynamic")
        assert max(_int8_weight_scales(buffer)) == pytest.approx(planted["planted"] / 127, rel=1e-5)
        assert any(why in r.getMessage() for r in caplog.records), why


def test_the_pipelines_export_splits_dynamic_not_dynamic_unsplit_at_the_serving_length(planted, tmp_path,
                                                                                       monkeypatch):
    """TfliteExport (the pipeline's step) with a serving length other than the trained one: it
    converts from the model rebuilt at that length, ``dynamic`` with the outlier split and
    ``dynamic_unsplit`` (the pipeline's and CLI's way to turn it off) without; each file says
    which it is in its Task Library metadata."""
    import json
    import shutil

    from ai_edge_litert.interpreter import Interpreter
    from tfx.types import standard_artifacts

    from bert_qa.export import metadata as qa_metadata
    from bert_qa_pipeline.components import keys
    from bert_qa_pipeline.components.tflite_export.executor import Executor

    model, out = standard_artifacts.Model(), standard_artifacts.Model()
    model.uri, out.uri = str(tmp_path / "model"), str(tmp_path / "tflite")
    shutil.copytree(planted["saved"], tmp_path / "model" / "Format-Serving")
    from bert_qa.export import tflite as tflite_module
    from bert_qa_pipeline.components.tflite_export import executor as executor_module

    rebuilds, real = [], tflite_module.trained_model

    def counted(*args, **kwargs):
        rebuilds.append(args)
        return real(*args, **kwargs)

    for module in (tflite_module, executor_module):  # the model is rebuilt once, not again for the split
        monkeypatch.setattr(module, "trained_model", counted)
    Executor().Do({keys.MODEL_KEY: [model]}, {keys.TFLITE_MODEL_KEY: [out]},
                  {"variants": json.dumps(["dynamic", "dynamic_unsplit"]), "serving_seq_len": 2 * SEQ_LEN,
                   "max_representative_samples": 10, "representative_split": "train", "model_version": "3"})
    files = {v: (tmp_path / "tflite" / f"model_{v}.tflite").read_bytes() for v in ("dynamic", "dynamic_unsplit")}
    for variant, buffer in files.items():
        interpreter = Interpreter(model_content=buffer)
        assert [d["shape"][1] for d in interpreter.get_input_details()] == [2 * SEQ_LEN] * 3
        assert qa_metadata.read_metadata(buffer).options["quantization"] == variant
    assert max(_int8_weight_scales(files["dynamic_unsplit"])) == pytest.approx(planted["planted"] / 127, rel=1e-5)
    assert max(_int8_weight_scales(files["dynamic"])) < planted["planted"] / 127 / 4
    assert len(rebuilds) == 1
