"""Model Maker's ``DataLoader.from_squad``: SQuAD file -> windowed features for a spec.

Features are written once to a TFRecord file in ``cache_dir`` (default: the per-user
``~/.cache/bert_qa/features``, or ``$BERT_QA_CACHE/features``, never a shared temp directory)
under a key built from everything that decides them: the file's content, the spec's
``get_config()``, the vocabulary's content, ``do_lower_case``, the mode and the answer policy.
A cached file is used only when its SHA-256 matches the one recorded when it was written, so a
truncated or replaced cache file is rebuilt rather than trained on. Every question is accounted for:
``size`` counts features, ``num_questions`` the questions read, ``skipped`` those left out
(training answers that cannot be aligned), each with its reason.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from typing import List, Optional

from bert_qa import _env  # noqa: F401
import tensorflow as tf

from bert_qa import input_pipeline, pretrained, squad_data

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
        key = _cache_key(content, _windowing_identity(model_spec), is_training, version_2_with_negative,
                         multi_answer)
        cache_dir = cache_dir or default_cache_dir()
        tf.io.gfile.makedirs(cache_dir)
        _sweep_stale_temporaries(cache_dir)
        tfrecord_file = os.path.join(cache_dir, f"{key}.tfrecord")
        meta_file = os.path.join(cache_dir, f"{key}.meta.json")

        questions = list(squad_data.iter_questions(
            squad_data.parse_squad_json(_decoded(content, filename), filename), filename))
        examples, skipped = squad_data.to_squad_examples(
            questions, is_training, version_2_with_negative, multi_answer)
        if skipped:
            log.warning("%s: %s", filename, squad_data.summarize_skipped(skipped, len(questions)))

        features = []
        if is_training:
            output_fn = features.append
        else:
            output_fn = lambda feature, is_padding: features.append(feature)  # noqa: E731
        meta = _verified_meta(meta_file, tfrecord_file)
        cached = meta is not None
        if cached and is_training:
            size = meta["size"]
            features = None  # training never maps predictions back; keep memory free
        else:
            model_spec.convert_examples_to_features(examples, is_training, output_fn,
                                                    model_spec.predict_batch_size)
            size = len(features)
            if not cached:
                digest = _write_atomically(features, tfrecord_file, is_training)
                _write_text_atomically(meta_file, json.dumps({
                    "size": size, "sha256": digest, "squad_file": filename,
                    "windowing": _windowing_identity(model_spec), "is_training": is_training,
                    "questions": len(questions), "skipped": len(skipped)}, sort_keys=True))
        log.info("%s: %d questions -> %d examples -> %d features (%s)", filename, len(questions),
                 len(examples), size, "cached" if cached else "new")
        return QuestionAnswerDataLoader(tfrecord_file, size, version_2_with_negative, examples,
                                        features, filename, is_training, len(questions), skipped)


# Temporaries: unique per writer (processes on different machines can share a cache and a pid).
_TMP_SUFFIX = ".tmp"
_STALE_TMP_SECONDS = 24 * 3600


def default_cache_dir() -> str:
    """Per user (``~/.cache/bert_qa/features`` or ``$BERT_QA_CACHE/features``), private to them:
    features decide what a model learns, so nobody else may plant them."""
    path = os.path.join(pretrained.cache_root(), "features")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def _windowing_identity(model_spec) -> dict:
    """Everything in the spec that decides the features: its config and its tokenizer."""
    with tf.io.gfile.GFile(model_spec.vocab_file, "rb") as f:
        vocab_sha = hashlib.sha256(f.read()).hexdigest()
    return {"config": model_spec.get_config(), "vocab_sha256": vocab_sha,
            "do_lower_case": bool(model_spec.do_lower_case)}


def _decoded(content: bytes, filename: str) -> str:
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as err:
        line = content[:err.start].count(b"\n") + 1
        raise squad_data.SquadFormatError(filename, f"not UTF-8 text (byte {err.start}, line {line}): "
                                                    f"save it as UTF-8") from None


def _cache_key(content: bytes, identity: dict, is_training: bool, v2: bool, multi_answer: str) -> str:
    h = hashlib.sha256(content)
    h.update(json.dumps([identity, is_training, v2, multi_answer], sort_keys=True).encode())
    return h.hexdigest()[:32]


def _sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _verified_meta(meta_file: str, tfrecord_file: str) -> Optional[dict]:
    """The cache entry's record if the features file is the one it describes, else None
    (missing, unreadable, from an older version without a digest, truncated or replaced)."""
    if not (tf.io.gfile.exists(meta_file) and tf.io.gfile.exists(tfrecord_file)):
        return None
    try:
        with tf.io.gfile.GFile(meta_file) as f:
            meta = json.load(f)
        if isinstance(meta, dict) and meta.get("sha256") == _sha256_of(tfrecord_file):
            return meta
    except (ValueError, OSError, tf.errors.OpError):
        pass
    log.warning("feature cache entry %s does not match its record; rebuilding it", tfrecord_file)
    return None


def _temporary(path: str) -> str:
    return f"{path}.{uuid.uuid4().hex}{_TMP_SUFFIX}"


def _write_atomically(features, path: str, is_training: bool) -> str:
    """Writes beside ``path`` and renames into place; returns the file's SHA-256."""
    tmp = _temporary(path)
    try:
        input_pipeline.write_features(features, tmp, is_training)
        digest = _sha256_of(tmp)
        tf.io.gfile.rename(tmp, path, overwrite=True)
    finally:
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.remove(tmp)
    return digest


def _write_text_atomically(path: str, text: str) -> None:
    tmp = _temporary(path)
    try:
        with tf.io.gfile.GFile(tmp, "w") as f:
            f.write(text)
        tf.io.gfile.rename(tmp, path, overwrite=True)
    finally:
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.remove(tmp)


def _sweep_stale_temporaries(cache_dir: str) -> None:
    """Temporaries of writers killed long ago (a day: no live writer takes that long)."""
    now = time.time()
    for name in tf.io.gfile.listdir(cache_dir):
        if not name.endswith(_TMP_SUFFIX):
            continue
        path = os.path.join(cache_dir, name)
        try:
            if now - tf.io.gfile.stat(path).mtime_nsec / 1e9 > _STALE_TMP_SECONDS:
                tf.io.gfile.remove(path)
        except (OSError, tf.errors.OpError):
            pass  # another process swept it first
