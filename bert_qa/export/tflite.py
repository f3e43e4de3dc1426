"""Span model -> serving SavedModel -> .tflite variants with Task Library metadata.

As Model Maker (``convert_from_saved_model_tf2 = True``), the TFLite converter reads a
SavedModel rather than the Keras model. We write that SavedModel with an explicit
``serving_default`` signature instead of ``model.save``: ``BertSpanLabeler`` cannot be
serialized by ``tf_keras`` 2.21's ``model.save`` (its config holds the network object), and
the explicit signature fixes the tensor names the spec and the metadata rely on:

- inputs ``input_word_ids`` / ``input_mask`` / ``input_type_ids`` (int32 [batch, seq_len]),
  which the converter names ``serving_default_<name>:0``;
- outputs ``end_logits`` / ``start_logits``; the converter names the flattened (sorted)
  outputs ``StatefulPartitionedCall:0`` (end) and ``StatefulPartitionedCall:1`` (start),
  exactly Model Maker's ``tflite_output_name``.
"""
from __future__ import annotations

import contextlib
import inspect
import json
import logging
import os
import tempfile
import time
from typing import Dict, Mapping, Optional, Sequence, Union

import numpy as np

from bert_qa import _env  # noqa: F401
from bert_qa.errors import InputError
from bert_qa.export import metadata as qa_metadata
from bert_qa.export import weight_outliers
from bert_qa.export.quantization import DEFAULT_QUANTIZATION_STEPS, FEATURE_NAMES, QuantizationConfig

log = logging.getLogger(__name__)

DEFAULT_VARIANTS = ("float32", "dynamic", "float16", "int8")


# The Task Library's BertQuestionAnswerer has kMaxSeqLen = 384 built in.
TASK_LIBRARY_SEQ_LEN = 384
EXTRA_DIR = "assets.extra"  # TF Serving's place for files beside a SavedModel
EXPORT_INFO = "bert_qa_export.json"


class ExportInputError(InputError):
    """What an export reads cannot be used: a missing or corrupt SavedModel, a damaged
    ``assets.extra`` record, a missing vocabulary; the message names the path."""


def export_saved_model(model, export_dir: str, vocab_file: Optional[str] = None,
                       do_lower_case: bool = True, query_len: Optional[int] = None,
                       doc_stride: Optional[int] = None, spec=None) -> str:
    """Saves a span model (inputs word ids/mask/type ids -> [start, end]) for serving.

    With ``spec`` (the spec the model was trained with) the library's whole record travels
    with it: ``assets.extra/vocab.txt`` and ``assets.extra/bert_qa_export.json`` (casing,
    seq_len, query_len, doc_stride, and the spec's name and constructor arguments), which
    ``saved_model_info`` reads back, so ``bertqa export`` and the pipeline's evaluator need
    only the directory. ``vocab_file`` / ``do_lower_case`` / ``query_len`` / ``doc_stride``
    record just the tokenizer, for a model without a spec.
    """
    import tensorflow as tf  # lazy: TensorFlow; importing bert_qa.export stays cheap

    record = None
    if spec is not None:
        from bert_qa.spec import spec_record  # lazy: bert_qa.spec loads TensorFlow

        spec.build()
        record = spec_record(spec)
        vocab_file, do_lower_case = spec.vocab_file, spec.do_lower_case
        query_len, doc_stride = spec.query_len, spec.doc_stride
    input_names = list(getattr(model, "input_names", None) or FEATURE_NAMES)
    if sorted(input_names) != sorted(FEATURE_NAMES):
        raise ValueError(f"Span model inputs must be {FEATURE_NAMES}, not {input_names}")
    seq_len = int(model.inputs[0].shape[1])
    if spec is not None and seq_len != spec.seq_len:
        raise ValueError(f"the model takes {seq_len} tokens but the spec has seq_len={spec.seq_len}")
    signature = {name: tf.TensorSpec([None, seq_len], tf.int32, name=name) for name in FEATURE_NAMES}

    @tf.function(input_signature=[signature])
    def serving(features):
        start_logits, end_logits = model([features[n] for n in input_names], training=False)
        return {"end_logits": end_logits, "start_logits": start_logits}

    # Only the serving signature is saved, not tf_keras' per-layer call traces: readers (TF
    # Serving, TFMA, the TFLite converter, our evaluator and export) call the signature, and the
    # model cannot be revived as a Keras model either way (its encoder layers' configs do not
    # serialise). The traces were most of the cost: on the tests' tiny model, saving 7.5 -> 1.3 s,
    # loading 1.9 -> 0.3 s, converting to TFLite 5.1 -> 2.0 s (2026-12-07). The public switch,
    # ``model.save(save_traces=False)``, also writes Keras metadata and fails on those configs;
    # this is the scope it sets (tf_keras 2.21, saving/legacy/saved_model/save.py).
    from tf_keras.src.saving.legacy.saved_model import utils as keras_saved_model_utils

    # Nor the optimizer's state: a trained model tracks its optimizer, whose two Adam slots per
    # weight made the serving SavedModel three times the weights (MiniLM: 261 MB against 88 MB,
    # 2026-12-07). Detached for the save as tf_keras' own ``save(include_optimizer=False)`` does
    # (tf_keras 2.21, saving/legacy/saved_model/save.py), and put back after.
    optimizer = getattr(model, "optimizer", None)
    try:
        if optimizer is not None:
            model.optimizer = None
            model._delete_tracking("optimizer")
        with keras_saved_model_utils.keras_option_scope(save_traces=False, in_tf_saved_model_scope=False):
            tf.saved_model.save(model, export_dir, signatures={"serving_default": serving})
    finally:
        if optimizer is not None:
            model.optimizer = optimizer
    if vocab_file is not None:
        extra = os.path.join(export_dir, EXTRA_DIR)
        tf.io.gfile.makedirs(extra)
        tf.io.gfile.copy(vocab_file, os.path.join(extra, "vocab.txt"), overwrite=True)
        info = {"do_lower_case": bool(do_lower_case), "seq_len": seq_len}
        if query_len is not None:
            info["query_len"] = int(query_len)
        if doc_stride is not None:
            info["doc_stride"] = int(doc_stride)
        if record is not None:
            info.update(record)
        with tf.io.gfile.GFile(os.path.join(extra, EXPORT_INFO), "w") as f:
            f.write(json.dumps(info, indent=2, sort_keys=True))
    return export_dir


def saved_model_info(saved_model_dir: str) -> Dict[str, object]:
    """What ``export_saved_model`` recorded: vocab_file (path or None), do_lower_case,
    seq_len, query_len, doc_stride and, for a model exported with its spec, ``spec`` (class
    name) and ``args`` (absent keys were not recorded)."""
    import tensorflow as tf  # lazy: TensorFlow; importing bert_qa.export stays cheap

    extra = os.path.join(saved_model_dir, EXTRA_DIR)
    info: Dict[str, object] = {"vocab_file": None}
    path = os.path.join(extra, EXPORT_INFO)
    if tf.io.gfile.exists(path):
        with tf.io.gfile.GFile(path) as f:
            try:
                record = json.load(f)
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise ExportInputError(f"{path} is not valid JSON: {err}") from err
        if not isinstance(record, dict):
            raise ExportInputError(f"{path} must hold a JSON object, not {type(record).__name__}")
        info.update(record)
    if tf.io.gfile.exists(os.path.join(extra, "vocab.txt")):
        info["vocab_file"] = os.path.join(extra, "vocab.txt")
    return info


def spec_of_saved_model(saved_model_dir: str, **overrides):
    """The spec a SavedModel was exported with (``export_saved_model(..., spec=...)``)."""
    from bert_qa.spec import spec_from_record  # lazy: bert_qa.spec loads TensorFlow

    info = saved_model_info(saved_model_dir)
    if "spec" not in info:
        raise ValueError(f"{saved_model_dir} records no spec (export it with "
                         f"export_saved_model(model, dir, spec=spec))")
    return spec_from_record(info, **overrides)


def export_at_seq_len(saved_model_dir: str, seq_len: int, export_dir: str, work_dir: Optional[str] = None) -> str:
    """The serving SavedModel rebuilt to take ``seq_len`` tokens, with the trained weights.

    A BERT span model's weights do not depend on the window length: the position table covers
    ``max_position_embeddings`` positions whatever length it was trained on, and padding
    positions are masked out of attention. So a model trained on short windows (faster) serves
    at the TFLite Task Library's fixed 384 (kMaxSeqLen) from the same weights. The spec recorded
    in the SavedModel builds the model at ``seq_len`` (float32, as every export), and every one
    of its variables is restored from the trained SavedModel's checkpoint (an unmatched variable
    is an error, never a silently fresh weight). Returns ``saved_model_dir`` itself when it
    already takes ``seq_len``.
    """
    info = saved_model_info(saved_model_dir)
    if int(info.get("seq_len", 0)) == int(seq_len):
        return saved_model_dir
    model, spec = trained_model(saved_model_dir, seq_len, work_dir)
    return export_saved_model(model, export_dir, spec=spec)


def trained_model(saved_model_dir: str, seq_len: Optional[int] = None, work_dir: Optional[str] = None):
    """``(model, spec)``: the Keras span model of a serving SavedModel (one that records its spec),
    built float32 at ``seq_len`` (default: the one it takes) with every trained weight restored."""
    from bert_qa.spec import SPEC_CLASSES  # lazy: bert_qa.spec loads TensorFlow

    info = saved_model_info(saved_model_dir)
    seq_len = int(info.get("seq_len", 0)) if seq_len is None else int(seq_len)
    overrides = {"seq_len": seq_len, "model_dir": work_dir or tempfile.mkdtemp(prefix="bert_qa_resize_")}
    if "mixed_precision" in inspect.signature(SPEC_CLASSES[info["spec"]]).parameters:
        overrides["mixed_precision"] = "float32"  # exports are float32 (the trained one too)
    spec = spec_of_saved_model(saved_model_dir, **overrides)
    # The trained model is one of two architectures: the encoder rebuilt natively (training
    # builds it so for every encoder that records its shape) or the encoder as a loaded TF Hub
    # layer (create_model: encoders that do not). The one whose variables all find their trained
    # values is it; the native one is tried first, as the common case.
    builders = [spec.create_native_float32_model, spec.create_model]
    unmatched = []
    for build in builders:
        try:
            model = build()
        except ValueError as err:  # no native rebuild for this encoder
            unmatched.append(str(err))
            continue
        status = model.load_weights(os.path.join(saved_model_dir, "variables", "variables"))
        # A SavedModel exported before 2026-12-07 also holds the optimizer's state, which an
        # export does not need: without this, TensorFlow logs a warning per unused slot (over
        # 1,000 lines). It silences only that; the check below still requires every variable
        # of the model to be restored.
        status.expect_partial()
        try:
            status.assert_existing_objects_matched()  # every variable of the rebuilt model restored
        except AssertionError as err:
            unmatched.append(str(err).split(":")[0])
            continue
        return model, spec
    raise ValueError(f"{saved_model_dir}: its weights fit no model its spec builds at seq_len {seq_len} "
                     f"({'; '.join(unmatched)})")


def convert(saved_model_dir_or_model, quantization: Union[str, QuantizationConfig] = "dynamic",
            representative_features: Optional[Mapping] = None,
            quantization_steps: int = DEFAULT_QUANTIZATION_STEPS) -> bytes:
    """The TFLite flatbuffer of a serving SavedModel (or of a Keras span model) under ``quantization``.

    Under a config with ``split_weight_outliers`` (the default dynamic range), the dense kernels
    whose few outlier weights would ruin their per-tensor int8 scale are split first
    (``weight_outliers``): a Keras model for the duration of the save, a SavedModel through the
    model its recorded spec rebuilds (one without a spec record is converted as it is).
    """
    import tensorflow as tf  # lazy: TensorFlow; importing bert_qa.export stays cheap

    config = _config(quantization, representative_features, quantization_steps)
    with tempfile.TemporaryDirectory() as tmp:
        if isinstance(saved_model_dir_or_model, (str, os.PathLike)):
            source = os.fspath(saved_model_dir_or_model)
            check_saved_model(source)
            if config.split_weight_outliers:
                source = _with_weight_outliers_split(source, tmp)
        else:
            model = saved_model_dir_or_model
            split = (weight_outliers.split_weight_outliers(model) if config.split_weight_outliers
                     else contextlib.nullcontext())
            with split as splits:
                if config.split_weight_outliers and not splits:
                    _warn_if_outliers_left(model)
                source = export_saved_model(model, os.path.join(tmp, "saved_model"))
        converter = tf.lite.TFLiteConverter.from_saved_model(source)
        converter = config.get_converter_with_quantization(converter)
        return converter.convert()


def _warn_if_outliers_left(model) -> None:
    """A Keras model whose split found no dense layer to work on may still hold outlier weights
    (an encoder loaded as a TF Hub layer hides its layers): say so, as the SavedModel path does."""
    import tensorflow as tf  # lazy: TensorFlow; importing bert_qa.export stays cheap

    if any(len(w.shape) == 2 and w.dtype == tf.float32 and weight_outliers.outliers_of(w.numpy()).any()
           for w in model.weights):
        _warn_unsplit(model.name, _NO_DENSE_LAYER)


# Why a model with outlier weights is converted unsplit, when its split found nothing to work on.
_NO_DENSE_LAYER = ("none is in a dense layer the export can split (an encoder loaded as a TF Hub layer "
                   "hides its layers; embeddings are not dense layers)")


def _warn_unsplit(label: str, why: str) -> None:
    log.warning("%s has weight matrices with outliers that per-tensor int8 quantization rounds "
                "coarsely, but %s; it is converted as it is", label, why)


def _with_weight_outliers_split(saved_model_dir: str, tmp: str) -> str:
    """``saved_model_dir`` re-exported with its weight outliers split (``weight_outliers``), or
    itself, with a warning that says why, when that cannot be done as the same model. The
    checkpoint is read first, so a model without outliers is never rebuilt."""
    import tensorflow as tf  # lazy: TensorFlow; importing bert_qa.export stays cheap

    reader = tf.train.load_checkpoint(os.path.join(saved_model_dir, "variables", "variables"))
    dtypes = reader.get_variable_to_dtype_map()
    # Every 2-D float tensor, not only those named kernels: a loaded TF Hub layer's variables are
    # tracked by position, not name.
    matrices = [name for name, shape in reader.get_variable_to_shape_map().items()
                if len(shape) == 2 and dtypes[name] == tf.float32 and "OPTIMIZER_SLOT" not in name]
    if not any(weight_outliers.outliers_of(reader.get_tensor(name)).any() for name in matrices):
        return saved_model_dir

    def unsplit(why: str) -> str:
        _warn_unsplit(saved_model_dir, why)
        return saved_model_dir

    if "spec" not in saved_model_info(saved_model_dir):
        return unsplit("it records no spec to rebuild the model from (export it with "
                       "export_saved_model(..., spec=spec))")
    try:
        model, spec = trained_model(saved_model_dir, work_dir=os.path.join(tmp, "spec"))
    except Exception as err:  # noqa: BLE001  (the conversion itself must not depend on a rebuild)
        return unsplit(f"the model its spec rebuilds could not be made ({type(err).__name__}: {err})")
    # The rebuild must be the model that was saved: the same logits as the SavedModel's own signature.
    served = tf.saved_model.load(saved_model_dir).signatures["serving_default"]
    probe = weight_outliers.probe_features(int(model.inputs[0].shape[1]))
    saved_logits = served(**{k: tf.constant(v) for k, v in probe.items()})
    saved_logits = np.stack([saved_logits["start_logits"].numpy(), saved_logits["end_logits"].numpy()])
    rebuilt = weight_outliers.model_logits(model, probe)
    if not weight_outliers.same_logits(rebuilt, saved_logits):
        return unsplit(f"the model its spec rebuilds computes other logits (max difference "
                       f"{np.abs(rebuilt - saved_logits).max():.3g})")
    with weight_outliers.split_weight_outliers(model) as splits:
        if not splits:
            return unsplit(_NO_DENSE_LAYER)
        return export_saved_model(model, os.path.join(tmp, "split"), spec=spec)


def check_saved_model(saved_model_dir: str) -> None:
    """Refuses (``ExportInputError`` naming the path) a directory that is not a SavedModel or
    whose saved_model.pb cannot be parsed (corrupt, truncated), before any conversion."""
    import tensorflow as tf  # lazy: TensorFlow; importing bert_qa.export stays cheap
    from tensorflow.python.saved_model import loader_impl  # lazy: TensorFlow

    if not tf.io.gfile.isdir(saved_model_dir):
        raise ExportInputError(f"SavedModel directory not found: {saved_model_dir}")
    if not tf.saved_model.contains_saved_model(saved_model_dir):
        raise ExportInputError(f"{saved_model_dir} is not a SavedModel (no saved_model.pb)")
    try:
        loader_impl.parse_saved_model(saved_model_dir)
    except OSError as err:  # "Cannot parse file ...saved_model.pb: Error parsing message"
        raise ExportInputError(f"{saved_model_dir}: saved_model.pb is corrupt or truncated "
                               f"({err})") from err


def export_tflite(saved_model_dir_or_model, tflite_path: str,
                  quantization: Union[str, QuantizationConfig] = "dynamic",
                  representative_features: Optional[Mapping] = None,
                  vocab_file: Optional[str] = None, do_lower_case: bool = True,
                  model_name: str = "BertQuestionAnswerer", version: str = "1",
                  description: str = qa_metadata.DEFAULT_DESCRIPTION, author: str = "",
                  license: str = "Apache-2.0",
                  quantization_steps: int = DEFAULT_QUANTIZATION_STEPS,
                  metadata_options: Optional[Mapping[str, object]] = None,
                  metadata: bool = True) -> str:
    """Writes one .tflite variant carrying Task Library metadata (vocabulary packed in).

    ``saved_model_dir_or_model``: a directory from ``export_saved_model`` or the Keras span
    model itself (saved to a temporary SavedModel first, as Model Maker does).
    ``metadata_options`` (e.g. ``query_len``, ``doc_stride``) are recorded for
    ``bertqa predict``.

    Without metadata the Task Library (and ``bertqa predict``) cannot use the file, so the
    metadata is required: no ``vocab_file`` is a ValueError, and a failure to write the
    metadata propagates; nothing is written then. ``metadata=False`` asks for a bare model
    (``vocab_file`` and the metadata arguments are then ignored).
    """
    if metadata and vocab_file is None:
        raise ValueError(f"{tflite_path}: no vocab_file, so the model would carry no Task Library "
                         f"metadata and neither the Task Library nor `bertqa predict` could use it; "
                         f"pass vocab_file (the spec's vocabulary), or metadata=False for a bare "
                         f"model")
    if metadata and not _exists(vocab_file):
        raise ExportInputError(f"vocabulary file not found: {vocab_file}")
    buffer = convert(saved_model_dir_or_model, quantization, representative_features, quantization_steps)
    seq_len = _input_seq_len(buffer)
    if metadata and seq_len != TASK_LIBRARY_SEQ_LEN:
        log.warning("%s takes seq_len %d: the TFLite Task Library's BertQuestionAnswerer runs only "
                    "seq_len %d models (kMaxSeqLen); it loads this file and then fails on every question "
                    "(\"Bad StatusOr access\"). `bertqa predict` and bert_qa.answering run it.",
                    tflite_path, seq_len, TASK_LIBRARY_SEQ_LEN)
        description = (f"{description} Built for seq_len {seq_len}: the TFLite Task Library's "
                       f"BertQuestionAnswerer needs seq_len {TASK_LIBRARY_SEQ_LEN}.")
    if metadata:
        info = qa_metadata.ModelInfo(name=model_name, version=version, description=description,
                                     author=author, license=license)
        config = _config(quantization, representative_features, quantization_steps)
        options = {"quantization": config.name, **dict(metadata_options or {})}
        buffer = qa_metadata.add_metadata(buffer, vocab_file, do_lower_case, info, options=options)
    else:
        log.info("metadata=False: %s carries no Task Library metadata (the Task Library and "
                 "`bertqa predict` cannot use it)", tflite_path)
    directory = os.path.dirname(os.path.abspath(tflite_path))
    os.makedirs(directory, exist_ok=True)
    tmp_path = tflite_path + ".partial"
    with open(tmp_path, "wb") as f:
        f.write(buffer)
    os.replace(tmp_path, tflite_path)  # never leave a half-written model behind
    return tflite_path


def _exists(path: str) -> bool:
    import tensorflow as tf  # lazy: TensorFlow; importing bert_qa.export stays cheap

    return tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path)


def _input_seq_len(buffer: bytes) -> int:
    # LiteRT's interpreter, as bert_qa runs models (tf.lite.Interpreter is deprecated and warns).
    from ai_edge_litert.interpreter import Interpreter  # lazy: LiteRT, only to read a converted model

    return int(Interpreter(model_content=buffer).get_input_details()[0]["shape"][1])


def export_tflite_variants(saved_model_dir_or_model, output_dir: str,
                           quantizations: Sequence[str] = DEFAULT_VARIANTS,
                           representative_features: Optional[Mapping] = None,
                           file_prefix: str = "model", **kwargs) -> Dict[str, str]:
    """``{quantization: path}`` for ``<output_dir>/<file_prefix>_<quantization>.tflite``."""
    paths: Dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        source = saved_model_dir_or_model
        saved = None  # a Keras model saved once, when the first variant that does not split needs it
        for name in quantizations:
            start = time.time()
            path = os.path.join(output_dir, f"{file_prefix}_{name}.tflite")
            config = _config(name, representative_features, kwargs.get("quantization_steps",
                                                                        DEFAULT_QUANTIZATION_STEPS))
            # A Keras model is saved once; a variant that splits outlier weights converts from the
            # model itself (the split needs its layers).
            variant_source = source
            if not isinstance(source, (str, os.PathLike)) and not config.split_weight_outliers:
                saved = saved or export_saved_model(source, os.path.join(tmp, "saved_model"))
                variant_source = saved
            paths[name] = export_tflite(variant_source, path, name, representative_features, **kwargs)
            log.info("Wrote %s (%.1f MB) in %.1f s", path, os.path.getsize(path) / 1e6,
                     time.time() - start)
    return paths


def _config(quantization, representative_features, quantization_steps) -> QuantizationConfig:
    if isinstance(quantization, QuantizationConfig):
        return quantization
    if quantization is None:
        return QuantizationConfig.for_float32()
    return QuantizationConfig.from_name(quantization, representative_features, quantization_steps)
