"""TfliteExport's executor: thin over ``bert_qa.export.export_tflite_variants``."""
from __future__ import annotations

import os
import sys
import time
from typing import Dict, List

from bert_qa import _env  # noqa: F401
import numpy as np
import tensorflow as tf
from tfx.dsl.components.base import base_executor
from tfx.utils import path_utils

from components import artifacts, spec_config


def tflite_path(directory: str, variant: str) -> str:
    return os.path.join(directory, f"model_{variant}.tflite")


def variants_of(tflite_model) -> List[str]:
    return artifacts.parse_json_param(tflite_model.get_string_custom_property("variants"), "variants")


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


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        from bert_qa.export import export_tflite_variants

        model = artifacts.single(input_dict["model"], "model")
        features = artifacts.optional_single(input_dict.get("features"))
        out = artifacts.single(output_dict["tflite_model"], "tflite_model")
        variants = artifacts.parse_json_param(exec_properties["variants"], "variants")
        record = spec_config.read_spec_record(model.uri)
        spec_args = record["args"]
        vocab = os.path.join(model.uri, "vocab.txt")

        representative = None
        if "int8" in variants:
            if features is None:
                raise ValueError("the int8 variant needs training features for calibration")
            representative = representative_features(
                features, exec_properties["representative_split"],
                int(exec_properties["max_representative_samples"]))
        tf.io.gfile.makedirs(out.uri)
        start = time.time()
        print(f"TfliteExport: converting {variants} ...", file=sys.stderr, flush=True)
        paths = export_tflite_variants(
            path_utils.serving_model_dir(model.uri), out.uri, variants,
            representative_features=representative, file_prefix="model", vocab_file=vocab,
            do_lower_case=bool(spec_args.get("do_lower_case", True)),
            version=exec_properties.get("model_version") or str(model.id or 1),
            quantization_steps=int(exec_properties["max_representative_samples"]),
            metadata_options={"query_len": int(spec_args.get("query_len", 64)),
                              "doc_stride": int(spec_args.get("doc_stride", 128))})
        tf.io.gfile.copy(vocab, os.path.join(out.uri, "vocab.txt"), overwrite=True)
        spec_config.write_spec_record(out.uri, record["spec"], spec_args)
        sizes = {f"size_bytes_{v}": os.path.getsize(p) for v, p in paths.items()}
        artifacts.record_counts(out, {"variants": list(variants), "source_model": model.uri,
                                      "spec": spec_config.spec_json(record["spec"], spec_args), **sizes})
        print("TfliteExport: " + ", ".join(f"{v} {s / 1e6:.1f} MB" for v, s in
                                           zip(variants, sizes.values()))
              + f" in {time.time() - start:.0f} s", file=sys.stderr, flush=True)
