"""Model Maker's ``DataLoader.from_squad``: SQuAD file -> windowed features for a spec.

Features are written once to a TFRecord file in ``cache_dir`` under a key built from the
spec's ``get_config()`` (the preprocessing parameters), the file's content hash and the
mode, so a second load with the same spec reuses them. Every question is accounted for:
``size`` counts features, ``num_questions`` the questions read, ``skipped`` those left out
(training answers that cannot be aligned), each with its reason.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from typing import List, Optional

from bert_qa import _env  # noqa: F401
import tensorflow as tf

from bert_qa import input_pipeline, squad_data

log = logging.getLogger(__name__)


class QuestionAnswerDataLoader:
    """Windowed features of one SQuAD file, plus what evaluation needs to map them back."""

    def __init__(self, tfrecord_file: str, size: int, version_2_with_negative: bool, examples,
                 features, squad_file: str, is_training: bool, num_questions: int,
                 skipped: List[squad_data.Skipped]):
        self.tfrecord_file = tfrecord_file
        self.size = size
        self.version_2_with_negative = version_2_with_negative
        self.examples = examples
        self.features = features
        self.squad_file = squad_file
        self.is_training = is_training
        self.num_questions = num_questions
        self.skipped = skipped

    def __len__(self):
        return self.size

    def gen_dataset(self, model_spec, batch_size: Optional[int] = None, is_training: Optional[bool] = None,
                    shuffle: bool = False, input_pipeline_context=None):
        """A batched tf.data pipeline of this loader's features for ``model_spec``."""
        batch_size = batch_size or model_spec.default_batch_size
        is_training = self.is_training if is_training is None else is_training
        input_fn = input_pipeline.make_input_fn(model_spec, [self.tfrecord_file], is_training,
                                                batch_size, shuffle=shuffle)
        return input_fn(input_pipeline_context)

    def input_fn(self, model_spec, batch_size: int, shuffle: bool = False):
        return input_pipeline.make_input_fn(model_spec, [self.tfrecord_file], self.is_training,
                                            batch_size, shuffle=shuffle)


class DataLoader:
    """Namespace matching ``tflite_model_maker.question_answer.DataLoader``."""

    @staticmethod
    def from_squad(filename: str, model_spec, is_training: bool = True,
                   version_2_with_negative: bool = False, cache_dir: Optional[str] = None,
                   multi_answer: str = "error") -> QuestionAnswerDataLoader:
        """Loads a SQuAD v1.1/v2.0 file; ``multi_answer='first'`` trains on first answers."""
        model_spec.build()
        with tf.io.gfile.GFile(filename, "rb") as f:
            content = f.read()
        key = _cache_key(content, model_spec.get_config(), is_training, version_2_with_negative,
                         multi_answer)
        cache_dir = cache_dir or os.path.join(tempfile.gettempdir(), "bert_qa_features")
        tfrecord_file = os.path.join(cache_dir, f"{key}.tfrecord")
        meta_file = os.path.join(cache_dir, f"{key}.meta.json")

        questions = list(squad_data.iter_questions(
            squad_data.parse_squad_json(content.decode("utf-8"), filename), filename))
        examples, skipped = squad_data.to_squad_examples(
            questions, is_training, version_2_with_negative, multi_answer)
        if skipped:
            log.warning("%s: %s", filename, squad_data.summarize_skipped(skipped, len(questions)))

        features = []
        if is_training:
            output_fn = features.append
        else:
            output_fn = lambda feature, is_padding: features.append(feature)  # noqa: E731
        cached = tf.io.gfile.exists(meta_file) and tf.io.gfile.exists(tfrecord_file)
        if cached and is_training:
            with tf.io.gfile.GFile(meta_file) as f:
                size = json.load(f)["size"]
            features = None  # training never maps predictions back; keep memory free
        else:
            model_spec.convert_examples_to_features(examples, is_training, output_fn,
                                                    model_spec.predict_batch_size)
            size = len(features)
            if not cached:
                _write_atomically(features, tfrecord_file, is_training)
                with tf.io.gfile.GFile(meta_file + ".tmp", "w") as f:
                    json.dump({"size": size, "squad_file": filename, "config": model_spec.get_config(),
                               "is_training": is_training, "questions": len(questions),
                               "skipped": len(skipped)}, f)
                tf.io.gfile.rename(meta_file + ".tmp", meta_file, overwrite=True)
        log.info("%s: %d questions -> %d examples -> %d features (%s)", filename, len(questions),
                 len(examples), size, "cached" if cached else "new")
        return QuestionAnswerDataLoader(tfrecord_file, size, version_2_with_negative, examples,
                                        features, filename, is_training, len(questions), skipped)


def _cache_key(content: bytes, config: dict, is_training: bool, v2: bool, multi_answer: str) -> str:
    h = hashlib.sha256(content)
    h.update(json.dumps([config, is_training, v2, multi_answer], sort_keys=True).encode())
    return h.hexdigest()[:24]


def _write_atomically(features, path: str, is_training: bool):
    tmp = f"{path}.{os.getpid()}.tmp"
    input_pipeline.write_features(features, tmp, is_training)
    tf.io.gfile.rename(tmp, path, overwrite=True)
