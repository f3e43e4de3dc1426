"""Feature TFRecords and tf.data pipelines in Model Maker's / squad_lib's record format."""
from __future__ import annotations

import os
from typing import Callable, Iterable, List, Optional, Sequence

from bert_qa import _env  # noqa: F401
import tensorflow as tf
from official.nlp.data import squad_lib


def write_features(features: Iterable, path: str, is_training: bool) -> int:
    """Writes ``InputFeatures`` with ``squad_lib.FeatureWriter``; returns how many."""
    writer = squad_lib.FeatureWriter(filename=path, is_training=is_training)
    try:
        for feature in features:
            writer.process_feature(feature)
    finally:
        writer.close()
    return writer.num_features


def decode_record(record, name_to_features):
    """Parses one serialized example; int64 -> int32 as TPUs and the encoders want."""
    example = tf.io.parse_single_example(record, name_to_features)
    return {name: tf.cast(t, tf.int32) if t.dtype == tf.int64 else t for name, t in example.items()}


def make_input_fn(spec, tfrecord_files: Sequence[str], is_training: bool, batch_size: int,
                  shuffle: bool = False, shuffle_buffer: int = 10_000, seed: Optional[int] = None
                  ) -> Callable:
    """An ``input_fn(input_context=None)`` for ``spec.train`` / ``spec.predict``.

    Training repeats and drops the remainder (as Model Maker); prediction keeps every
    record (eval features are already padded to whole batches by windowing). Under a
    distribution strategy each replica reads its shard and its per-replica batch.
    """
    files = list(tfrecord_files)

    def input_fn(input_context: Optional[tf.distribute.InputContext] = None):
        ds = tf.data.TFRecordDataset(files)
        if input_context is None and len(files) < tf.distribute.get_strategy().num_replicas_in_sync:
            # Keras splits this dataset across workers; FILE auto-sharding fails with fewer
            # files than workers, so shard by record instead.
            options = tf.data.Options()
            options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
            ds = ds.with_options(options)
        per_replica = batch_size
        if input_context is not None:
            per_replica = input_context.get_per_replica_batch_size(batch_size)
            if input_context.num_input_pipelines > 1:
                ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        if is_training:
            if shuffle:
                ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
            ds = ds.repeat()
        name_to_features = spec.get_name_to_features(is_training)
        ds = ds.map(lambda r: decode_record(r, name_to_features), num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.map(spec.select_data_from_record, num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.batch(per_replica, drop_remainder=is_training)
        return ds.prefetch(tf.data.AUTOTUNE)

    return input_fn


def count_records(files: Sequence[str]) -> int:
    return sum(1 for f in files for _ in tf.data.TFRecordDataset(f))
