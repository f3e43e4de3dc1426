"""TfliteExport's executor: thin over ``bert_qa.export.export_tflite_variants``."""
from __future__ import annotations

import logging
import os
import tempfile
import time
from typing import Dict

from bert_qa import _env  # noqa: F401
import numpy as np
import tensorflow as tf
from tfx.dsl.components.base import base_executor

from bert_qa.export import export_tflite_variants, saved_model_info, trained_model
from bert_qa.settings import check_settings, max_positions_of
from bert_qa_pipeline.components import artifacts, keys

log = logging.getLogger(__name__)


def representative_features(features, split: str, max_samples: int) -> Dict[str, np.ndarray]:
    """Rows of the training features keyed by the serving input names (for int8 calibration)."""
    rows = {"input_word_ids": [], "input_mask": [], "input_type_ids": []}
    names = {"input_ids": "input_word_ids", "input_mask": "input_mask", "segment_ids": "input_type_ids"}
    for path in artifacts.tfrecord_files(artifacts.split_uri(features, split)):
        for record in tf.data.TFRecordDataset(path).take(max_samples - len(rows["input_mask"])):
            example = tf.train.Example.FromString(record.numpy())
            for stored, name in names.items():
                rows[name].append(list(example.features.feature[stored].int64_list.value))
        if len(rows["input_mask"]) >= max_samples:
            break
    return {name: np.asarray(values, dtype=np.int32) for name, values in rows.items()}


def at_length(rows: Dict[str, np.ndarray], seq_len: int) -> Dict[str, np.ndarray]:
    """Calibration rows at the serving length: padded with zeros (padding tokens, masked out),
    or cut (calibration needs realistic activations, not whole windows)."""
    out = {}
    for name, values in rows.items():
        width = values.shape[1]
        out[name] = (np.pad(values, ((0, 0), (0, seq_len - width))) if width < seq_len
                     else values[:, :seq_len])
    return out


class Executor(base_executor.BaseExecutor):
    """What ``bertqa export`` does, on the Model artifact: everything it needs (vocab, casing,
    windowing, spec) is the library's record inside the trained SavedModel."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        model = artifacts.single(input_dict[keys.MODEL_KEY], keys.MODEL_KEY)
        features = artifacts.optional_single(input_dict.get(keys.FEATURES_KEY))
        out = artifacts.single(output_dict[keys.TFLITE_MODEL_KEY], keys.TFLITE_MODEL_KEY)
        variants = artifacts.parse_json_param(exec_properties["variants"], "variants")
        check_settings({"quantization": variants,
                        "max_representative_samples": int(exec_properties["max_representative_samples"])},
                       {"quantization": "export.variants (TfliteExport variants)",
                        "max_representative_samples": "export.max_representative_samples"})
        serving_dir = artifacts.serving_model_dir(model)
        info = saved_model_info(serving_dir)
        if info["vocab_file"] is None or "spec" not in info:
            raise ValueError(f"{serving_dir} carries no bert_qa record (vocab and spec): not a model "
                             f"exported by QaTrainer / bert_qa.export.export_saved_model(..., spec=...)")

        representative = None
        if "int8" in variants:
            if features is None:
                raise ValueError("the int8 variant needs training features for calibration")
            representative = representative_features(
                features, exec_properties["representative_split"],
                int(exec_properties["max_representative_samples"]))
        tf.io.gfile.makedirs(out.uri)
        start = time.time()
        trained_seq_len = int(info["seq_len"])
        serving_seq_len = int(exec_properties.get("serving_seq_len") or 0) or trained_seq_len
        work_dir = tempfile.mkdtemp(prefix="tflite_export_")
        try:
            if serving_seq_len != trained_seq_len:
                record = info.get("args", {})
                check_settings({"seq_len": serving_seq_len, "query_len": int(info["query_len"])},
                               {"seq_len": "export.serving_seq_len (TfliteExport serving_seq_len)"},
                               max_positions=max_positions_of(str(record.get("uri", ""))))
                log.info(f"TfliteExport: rebuilding the model at {serving_seq_len} tokens (trained at "
                         f"{trained_seq_len}) ...")
                # The Keras model itself (what export_at_seq_len would save), so that the variants
                # convert from it: the outlier split needs its layers, and a SavedModel in between
                # would be rebuilt a second time for it.
                source, _ = trained_model(serving_dir, serving_seq_len, work_dir=os.path.join(work_dir, "spec"))
            else:
                source = serving_dir
            if representative is not None:
                representative = at_length(representative, serving_seq_len)
            log.info(f"TfliteExport: converting {variants} at {serving_seq_len} tokens ...")
            paths = self._convert(source, out, variants, representative, info, model, exec_properties)
        finally:
            tf.io.gfile.rmtree(work_dir)
        if any(path != artifacts.tflite_path(out.uri, v) for v, path in paths.items()):
            raise RuntimeError(f"TFLite files {paths} are not where the artifact layout says")
        tf.io.gfile.copy(info["vocab_file"], os.path.join(out.uri, artifacts.VOCAB_FILE), overwrite=True)
        sizes = {f"size_bytes_{v}": os.path.getsize(p) for v, p in paths.items()}
        artifacts.record_counts(out, {"variants": list(variants), "source_model": model.uri,
                                      "spec": {"spec": info["spec"], "args": info["args"]},
                                      "serving_seq_len": serving_seq_len, "trained_seq_len": trained_seq_len,
                                      **sizes})
        log.info("TfliteExport: " + ", ".join(f"{v} {s / 1e6:.1f} MB" for v, s in
                                              zip(variants, sizes.values()))
                 + f" in {time.time() - start:.0f} s")

    @staticmethod
    def _convert(source, out, variants, representative, info, model, exec_properties):
        return export_tflite_variants(
            source, out.uri, variants, representative_features=representative,
            file_prefix="model", vocab_file=info["vocab_file"], do_lower_case=bool(info["do_lower_case"]),
            version=exec_properties.get("model_version") or str(model.id or 1),
            quantization_steps=int(exec_properties["max_representative_samples"]),
            metadata_options={"query_len": int(info["query_len"]), "doc_stride": int(info["doc_stride"])})
