"""FeatureWindowing's executor: a Beam pipeline over ``bert_qa.windowing``.

Plan per split:
  read questions -> key by paragraph -> group -> window each paragraph (library code, local ids)
  -> per-paragraph counts -> global offsets (prefix sums in paragraph order, a side input)
  -> final example_index / unique_id -> range-partition into shards by paragraph
  -> each shard sorted by unique_id and written as one TFRecord file.
Because ids come from the split order (ExampleGen's ``example_index`` / ``paragraph_index``)
and not from the order work happens to run in, 1, 2 or 200 workers give the same files.
"""
from __future__ import annotations

import logging
import math
import os
from typing import Dict, Iterable, List, Tuple

from bert_qa import _env  # noqa: F401
import apache_beam as beam
import tensorflow as tf
from tfx.dsl.components.base import base_beam_executor

from bert_qa import encoders, settings, squad_data, windowing
from bert_qa.tokenization import CachedFullTokenizer
from bert_qa_pipeline.components import artifacts, example_codecs, keys

log = logging.getLogger(__name__)

FEATURES_PER_SHARD = 10_000
def _key_by_paragraph(record: bytes):
    q, example_index, paragraph_index = example_codecs.example_to_question(tf.train.Example.FromString(record))
    return paragraph_index, (example_index, q)


class WindowParagraph(beam.DoFn):
    """Library windowing of one paragraph's questions, with paragraph-local ids."""

    def __init__(self, vocab_file: str, do_lower_case: bool, seq_len: int, query_len: int,
                 doc_stride: int, is_training: bool, version_2_with_negative: bool,
                 multi_answer: str, split: str):
        self._args = (vocab_file, do_lower_case)
        self._seq_len, self._query_len, self._doc_stride = seq_len, query_len, doc_stride
        self._is_training = is_training
        self._v2 = version_2_with_negative
        self._multi_answer = multi_answer
        self._split = split
        self._done = 0
        self._questions = beam.metrics.Metrics.counter("windowing", f"questions_{split}")
        self._features = beam.metrics.Metrics.counter("windowing", f"features_{split}")

    def setup(self):
        self._tokenizer = CachedFullTokenizer(*self._args)

    def process(self, element):
        paragraph_index, rows = element
        rows = sorted(rows, key=lambda row: row[0])
        questions = [q for _, q in rows]
        examples, skipped = squad_data.to_squad_examples(
            questions, self._is_training, self._v2, self._multi_answer)
        features = []

        def output_fn(feature, is_padding=False):
            features.append(feature)

        windowing.convert_examples_to_features(
            examples, self._tokenizer, self._seq_len, self._doc_stride, self._query_len,
            self._is_training, output_fn, batch_size=None, base_unique_id=0,
            first_example_index=0, pad_to_batch=False)
        qas_ids = [e.qas_id for e in examples]
        self._questions.inc(len(questions))
        self._features.inc(len(features))
        self._done += 1
        if self._done % 200 == 0:
            log.info(f"FeatureWindowing: {self._split}: a worker windowed {self._done} paragraphs")
        yield beam.pvalue.TaggedOutput("counts", (paragraph_index, {
            "questions": len(questions), "examples": len(examples), "features": len(features),
            "skipped": [(s.id, s.reason, s.detail) for s in skipped],
            "first_example_index": rows[0][0]}))
        # Serialized here with paragraph-local ids (assign_ids rewrites the two id fields): a
        # record is about a KB, the feature object with its tokens and maps several, and the
        # DirectRunner holds every one until the offsets are known (issue 22).
        yield paragraph_index, [(f.unique_id, f.example_index, example_codecs.feature_to_example(
            f, self._is_training, qas_ids[f.example_index]).SerializeToString(deterministic=True))
            for f in features]


def plan_offsets(counts: List[Tuple[int, dict]], num_shards: int) -> dict:
    """Prefix sums in paragraph order: where each paragraph's examples and features start."""
    counts = sorted(counts, key=lambda kv: kv[0])
    for (a, ca), (b, cb) in zip(counts, counts[1:]):
        if ca["first_example_index"] > cb["first_example_index"]:
            raise ValueError(f"paragraphs {a} and {b} are not in question order")
    total_features = sum(c["features"] for _, c in counts)
    shards = num_shards or max(1, math.ceil(total_features / FEATURES_PER_SHARD))
    offsets, example_offset, feature_offset = {}, 0, 0
    for rank, (paragraph, c) in enumerate(counts):
        offsets[paragraph] = (example_offset, feature_offset, rank * shards // len(counts))
        example_offset += c["examples"]
        feature_offset += c["features"]
    return {"offsets": offsets, "num_shards": shards}


def assign_ids(element, plan, is_training: bool):
    """Final ids; yields (shard, (unique_id, serialized tf.Example))."""
    paragraph_index, records = element
    example_offset, feature_offset, shard = plan["offsets"][paragraph_index]
    for local_unique_id, local_example_index, record in records:
        example = tf.train.Example.FromString(record)  # a new message: Beam elements stay unmutated
        unique_id = windowing.BASE_UNIQUE_ID + feature_offset + local_unique_id
        fields = example.features.feature
        fields["unique_ids"].int64_list.value[:] = [unique_id]
        if not is_training:  # feature_to_example records example_index for evaluation only
            fields["example_index"].int64_list.value[:] = [example_offset + local_example_index]
        yield shard, (unique_id, example.SerializeToString(deterministic=True))  # map order fixed: byte-identical files


def write_shard(element, directory: str, plan) -> Iterable[int]:
    shard, records = element
    path = os.path.join(directory, f"{artifacts.FEATURES_FILE_PREFIX}-{shard:05d}-of-"
                                   f"{plan['num_shards']:05d}{artifacts.TFRECORD_SUFFIX}")
    records = sorted(records, key=lambda r: r[0])
    with tf.io.TFRecordWriter(path) as writer:
        for _, record in records:
            writer.write(record)
    yield len(records)


def summarize(counts: List[Tuple[int, dict]]) -> dict:
    skipped = sorted((s for _, c in counts for s in c["skipped"]), key=lambda s: s[0])
    reasons: Dict[str, int] = {}
    for _, reason, _ in skipped:
        reasons[reason] = reasons.get(reason, 0) + 1
    return {
        "questions": sum(c["questions"] for _, c in counts),
        "examples": sum(c["examples"] for _, c in counts),
        "features": sum(c["features"] for _, c in counts),
        "paragraphs": len(counts),
        "skipped": [{"id": i, "reason": r, "detail": d} for i, r, d in skipped],
        "skipped_by_reason": reasons,
    }


def build_split(pipeline, split: str, in_dir: str, out_dir: str, vocab_file: str, params: dict,
                is_training: bool, stats_path: str):
    label = f"[{split}]"
    keyed = (pipeline
             | f"Read{label}" >> beam.io.ReadFromTFRecord(os.path.join(in_dir, "*"))
             | f"KeyByParagraph{label}" >> beam.Map(_key_by_paragraph)
             | f"GroupByParagraph{label}" >> beam.GroupByKey())
    windowed = keyed | f"Window{label}" >> beam.ParDo(WindowParagraph(
        vocab_file, bool(params["do_lower_case"]), params["seq_len"], params["query_len"],
        params["doc_stride"], is_training, bool(params["version_2_with_negative"]),
        params["multi_answer"], split)).with_outputs("counts", main="features")
    all_counts = windowed.counts | f"CollectCounts{label}" >> beam.combiners.ToList()
    plan = all_counts | f"PlanOffsets{label}" >> beam.Map(plan_offsets, params["num_shards"])
    _ = (windowed.features
         | f"AssignIds{label}" >> beam.FlatMap(assign_ids, beam.pvalue.AsSingleton(plan), is_training)
         | f"GroupByShard{label}" >> beam.GroupByKey()
         | f"WriteShards{label}" >> beam.FlatMap(write_shard, out_dir, beam.pvalue.AsSingleton(plan)))
    _ = (all_counts
         | f"Summarize{label}" >> beam.Map(summarize)
         | f"WriteStats{label}" >> beam.Map(artifacts.write_json_at, stats_path))


_SECRET_WORDS = ("secret", "password", "token", "key", "credential")


def redacted(beam_args) -> list:
    """Beam args for a log line: values of secret-looking options (--s3_secret_access_key=...) hidden."""
    shown, hide_next = [], False
    for arg in map(str, beam_args):
        if hide_next:
            shown.append("***")
            hide_next = False
            continue
        name = arg.split("=", 1)[0].lower()
        secret = arg.startswith("--") and any(word in name for word in _SECRET_WORDS)
        if secret and "=" in arg:
            shown.append(arg.split("=", 1)[0] + "=***")
        else:
            shown.append(arg)
            hide_next = secret
    return shown


class Executor(base_beam_executor.BaseBeamExecutor):
    """Copies the vocab into the output, then windows every split in one Beam pipeline."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        examples = artifacts.single(input_dict[keys.EXAMPLES_KEY], keys.EXAMPLES_KEY)
        features = artifacts.single(output_dict[keys.FEATURES_KEY], keys.FEATURES_KEY)
        params = dict(exec_properties)
        params["num_shards"] = int(params.get("num_shards") or 0)
        # The one settings check, with the encoder's position table, before any work: windowing
        # with a stride of 0 (or no room for the context) would never finish.
        settings.check_settings(
            {name: int(params[name]) for name in ("seq_len", "query_len", "doc_stride")},
            {name: f"model.{name} (FeatureWindowing {name})" for name in ("seq_len", "query_len", "doc_stride")},
            max_positions=settings.max_positions_of(params["encoder_uri"]))
        training_splits = artifacts.parse_json_param(params["training_splits"], "training_splits")
        splits = artifacts.split_names(examples)
        unknown = set(training_splits) - set(splits)
        if unknown:
            raise ValueError(f"training_splits {sorted(unknown)} are not splits of the examples {splits}")
        from bert_qa_pipeline.components import memory_guard

        # Before any work: an input the DirectRunner cannot hold in memory is refused (pointing to
        # Dataflow) instead of swapping for hours (issue 22; the factor is benchmarks/memory.py's).
        memory_guard.check_direct_runner_memory(
            [os.path.join(artifacts.split_uri(examples, s), "*") for s in splits],
            self._beam_pipeline_args, "FeatureWindowing")

        artifacts.set_split_names(features, splits)
        vocab_file = os.path.join(features.uri, artifacts.VOCAB_FILE)
        tf.io.gfile.makedirs(features.uri)
        tf.io.gfile.copy(encoders.vocab_of(params["encoder_uri"]), vocab_file, overwrite=True)
        stats_paths = {s: artifacts.windowing_stats_path(features.uri, s) for s in splits}
        log.info(f"FeatureWindowing: windowing splits {splits} (seq_len={params['seq_len']}, "
                 f"query_len={params['query_len']}, doc_stride={params['doc_stride']}) with Beam args "
                 f"{redacted(self._beam_pipeline_args)}")
        with self._make_beam_pipeline() as pipeline:
            for split in splits:
                out_dir = artifacts.split_uri(features, split)
                tf.io.gfile.makedirs(out_dir)
                build_split(pipeline, split, artifacts.split_uri(examples, split), out_dir,
                            vocab_file, params, split in training_splits, stats_paths[split])

        counts = {"vocab_file": vocab_file, "encoder_uri": encoders.portable_uri(params["encoder_uri"]),
                  "do_lower_case": int(params["do_lower_case"]), "seq_len": int(params["seq_len"]),
                  "query_len": int(params["query_len"]), "doc_stride": int(params["doc_stride"]),
                  "training_splits": list(training_splits),
                  "version_2_with_negative": int(params["version_2_with_negative"])}
        for split in splits:
            stats = artifacts.read_json(stats_paths[split])
            counts.update({f"num_questions_{split}": stats["questions"],
                           f"num_examples_{split}": stats["examples"],
                           f"num_features_{split}": stats["features"],
                           f"num_skipped_{split}": len(stats["skipped"]),
                           f"skipped_by_reason_{split}": stats["skipped_by_reason"]})
            expected = examples.get_int_custom_property(f"num_questions_{split}")
            if expected and expected != stats["questions"]:
                raise RuntimeError(f"split {split}: {expected} questions in, {stats['questions']} windowed")
            log.info(f"FeatureWindowing: {split}: {stats['questions']} questions -> {stats['examples']} "
                     f"examples -> {stats['features']} features; "
                     + squad_data.summarize_skipped(
                         [squad_data.Skipped(s["id"], s["reason"], s["detail"]) for s in stats["skipped"]],
                         stats["questions"]))
        features.set_string_custom_property("file_format", artifacts.EXAMPLES_FILE_FORMAT)
        artifacts.record_counts(features, counts)
