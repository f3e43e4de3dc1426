"""SquadExampleGen's executor: thin over ``bert_qa.squad_data``."""
from __future__ import annotations

import hashlib
import logging
import os
from typing import Any, Dict, Iterator, List, Sequence, Tuple

from bert_qa import _env  # noqa: F401
import tensorflow as tf
from tfx.dsl.components.base import base_executor

from bert_qa import squad_data
from bert_qa.errors import InputError
from bert_qa_pipeline.components import artifacts, example_codecs, keys
from bert_qa_pipeline.components.squad_example_gen.driver import input_fingerprint as fingerprint_of_inputs

log = logging.getLogger(__name__)


def expand_patterns(patterns: Sequence[str]) -> List[str]:
    """Files matching ``patterns`` (glob), each once, in pattern then name order."""
    files: List[str] = []
    for pattern in patterns:
        matched = sorted(tf.io.gfile.glob(pattern))
        if not matched:
            raise InputError(f"no file matches input pattern {pattern!r}")
        files.extend(f for f in matched if f not in files)
    return files


def bucket_of(title: str, num_buckets: int) -> int:
    """A stable bucket for an article title (the same on every machine and Python run)."""
    digest = hashlib.sha256(title.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % num_buckets


def assign_splits(input_patterns, hash_buckets) -> Tuple[List[str], Dict[str, List[str]], Any]:
    """(split names, files per split, a title -> split function or None)."""
    if isinstance(input_patterns, dict):
        files = {split: expand_patterns(patterns) for split, patterns in input_patterns.items()}
        seen: Dict[str, str] = {}
        for split, split_files in files.items():
            for f in split_files:
                if f in seen:
                    raise InputError(f"file {f} matches the patterns of splits {seen[f]!r} and {split!r}")
                seen[f] = split
        return list(input_patterns), files, None
    if not hash_buckets or not all(isinstance(n, int) and n > 0 for n in hash_buckets.values()):
        raise InputError(f"hash_buckets must map split names to positive ints, got {hash_buckets!r}")
    names = list(hash_buckets)
    total = sum(hash_buckets.values())
    boundaries, upper = [], 0
    for name in names:
        upper += hash_buckets[name]
        boundaries.append((upper, name))

    def split_of(title: str) -> str:
        bucket = bucket_of(title, total)
        return next(name for bound, name in boundaries if bucket < bound)

    all_files = expand_patterns(input_patterns)
    return names, {name: all_files for name in names}, split_of


def iter_split(files: Sequence[str], split: str, split_of, ids: Dict[str, str]) -> Iterator[squad_data.Question]:
    """The questions of one split, file by file in file order; ``ids`` collects which file each
    id came from, and a second question with an id is refused naming both files."""
    for path in files:
        count = 0
        for q in squad_data.iter_questions(squad_data.load_squad_json(path), path):
            if split_of is not None and split_of(q.title) != split:
                continue
            if q.id in ids:
                raise squad_data.SquadFormatError(
                    path, f"duplicate question id (also in {ids[q.id]}) in split {split!r}", q.id)
            ids[q.id] = path
            count += 1
            yield q
        log.info(f"SquadExampleGen: {split}: {count} questions from {path}")


def read_split(files: Sequence[str], split: str, split_of) -> Tuple[List[squad_data.Question], Dict[str, int]]:
    """The questions of one split in file order, and where each id came from."""
    ids: Dict[str, str] = {}
    return list(iter_split(files, split, split_of, ids)), ids


def paragraph_indices(questions: Sequence[squad_data.Question]) -> List[int]:
    """Position of each question's paragraph: consecutive questions on one context share it."""
    indices, current, previous = [], -1, None
    for q in questions:
        key = (q.source, q.title, q.context)
        if key != previous:
            current += 1
            previous = key
        indices.append(current)
    return indices


def write_split(questions: Sequence[squad_data.Question], directory: str) -> None:
    tf.io.gfile.makedirs(directory)
    path = os.path.join(directory, f"{artifacts.QUESTIONS_FILE_PREFIX}-00000-of-00001{artifacts.TFRECORD_SUFFIX}")
    with tf.io.TFRecordWriter(path) as writer:
        for example_index, (q, paragraph_index) in enumerate(zip(questions, paragraph_indices(questions))):
            writer.write(example_codecs.question_to_example(q, example_index, paragraph_index).SerializeToString(deterministic=True))


def split_counts(split: str, questions: Sequence[squad_data.Question], files: Sequence[str]) -> Dict[str, Any]:
    impossible = sum(q.is_impossible for q in questions)
    return {
        f"num_questions_{split}": len(questions),
        f"num_answerable_{split}": len(questions) - impossible,
        f"num_impossible_{split}": impossible,
        f"num_articles_{split}": len({(q.source, q.title) for q in questions}),
        f"num_paragraphs_{split}": len(set(paragraph_indices(questions))),
        f"files_{split}": list(files),
    }


def stream_split(files: Sequence[str], split: str, split_of, directory: str) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """``read_split`` + ``write_split`` + ``split_counts`` one input file at a time: the same
    records (same example and paragraph indices) and counts, but only question ids and counts
    stay in memory, so memory follows the largest input file, not the whole input (issue 22)."""
    tf.io.gfile.makedirs(directory)
    path = os.path.join(directory, f"{artifacts.QUESTIONS_FILE_PREFIX}-00000-of-00001{artifacts.TFRECORD_SUFFIX}")
    ids: Dict[str, str] = {}
    n = impossible = 0
    paragraph, previous, articles = -1, None, set()
    with tf.io.TFRecordWriter(path) as writer:
        for q in iter_split(files, split, split_of, ids):
            key = (q.source, q.title, q.context)
            if key != previous:  # as paragraph_indices
                paragraph += 1
                previous = key
            writer.write(example_codecs.question_to_example(q, n, paragraph).SerializeToString(deterministic=True))
            n += 1
            impossible += q.is_impossible
            articles.add((q.source, q.title))
    return {
        f"num_questions_{split}": n,
        f"num_answerable_{split}": n - impossible,
        f"num_impossible_{split}": impossible,
        f"num_articles_{split}": len(articles),
        f"num_paragraphs_{split}": paragraph + 1,
        f"files_{split}": list(files),
    }, ids


class Executor(base_executor.BaseExecutor):
    """Reads the files, assigns splits, writes one tf.Example per question."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        examples = artifacts.single(output_dict[keys.EXAMPLES_KEY], keys.EXAMPLES_KEY)
        input_patterns = artifacts.parse_json_param(exec_properties["input_patterns"], "input_patterns")
        hash_buckets = artifacts.parse_json_param(exec_properties.get("hash_buckets"), "hash_buckets")
        names, files, split_of = assign_splits(input_patterns, hash_buckets)
        artifacts.set_split_names(examples, names)
        counts: Dict[str, Any] = {}
        split_ids: Dict[str, Dict[str, str]] = {}
        for split in names:
            split_counts_, ids = stream_split(files[split], split, split_of, artifacts.split_uri(examples, split))
            if not ids:
                raise InputError(f"split {split!r} has no questions (files: {files[split]})")
            split_ids[split] = ids
            counts.update(split_counts_)
        overlap = set.intersection(*(set(ids) for ids in split_ids.values())) if len(names) > 1 else set()
        counts["num_ids_in_several_splits"] = len(overlap)
        if overlap:
            log.warning(f"SquadExampleGen: warning: {len(overlap)} question ids occur in several splits, "
                        f"e.g. {sorted(overlap)[:3]}")
        examples.set_string_custom_property("file_format", artifacts.EXAMPLES_FILE_FORMAT)
        counts["input_fingerprint"] = (exec_properties.get("input_fingerprint")
                                       or fingerprint_of_inputs(exec_properties["input_patterns"]))
        artifacts.record_counts(examples, counts)
        log.info("SquadExampleGen: " + ", ".join(
               f"{s}: {counts[f'num_questions_{s}']} questions / {counts[f'num_articles_{s}']} articles"
               for s in names))
