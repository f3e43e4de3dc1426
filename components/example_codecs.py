"""The tf.Example layouts of the questions and features artifacts (encode and decode)."""
from __future__ import annotations

from typing import Dict, Iterable, List, Sequence

from bert_qa import _env  # noqa: F401
import tensorflow as tf

from bert_qa.squad_data import Question
from bert_qa_pipeline.components.artifacts import tfrecord_files


# -- field helpers ------------------------------------------------------------------------

def _bytes(values: Iterable[str]) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode("utf-8") for v in values]))


def _ints(values: Iterable[int]) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _get_str(features, name: str) -> str:
    return features[name].bytes_list.value[0].decode("utf-8")


def _get_strs(features, name: str) -> List[str]:
    return [v.decode("utf-8") for v in features[name].bytes_list.value]


def _get_ints(features, name: str) -> List[int]:
    return list(features[name].int64_list.value)


# -- questions ---------------------------------------------------------------------------------

def question_to_example(q: Question, example_index: int, paragraph_index: int) -> tf.train.Example:
    return tf.train.Example(features=tf.train.Features(feature={
        "id": _bytes([q.id]),
        "title": _bytes([q.title]),
        "context": _bytes([q.context]),
        "question": _bytes([q.question]),
        "answer_texts": _bytes(q.answer_texts),
        "answer_starts": _ints(q.answer_starts),
        "is_impossible": _ints([int(q.is_impossible)]),
        "source": _bytes([q.source]),
        "example_index": _ints([example_index]),
        "paragraph_index": _ints([paragraph_index]),
    }))


def example_to_question(example: tf.train.Example):
    """(Question, example_index, paragraph_index) of a stored question."""
    f = example.features.feature
    q = Question(
        id=_get_str(f, "id"), title=_get_str(f, "title"), context=_get_str(f, "context"),
        question=_get_str(f, "question"), answer_texts=tuple(_get_strs(f, "answer_texts")),
        answer_starts=tuple(_get_ints(f, "answer_starts")),
        is_impossible=bool(_get_ints(f, "is_impossible")[0]), source=_get_str(f, "source"))
    return q, _get_ints(f, "example_index")[0], _get_ints(f, "paragraph_index")[0]


def read_questions(directory: str) -> List[Question]:
    """Every question of one split, in split order (``example_index``)."""
    rows = []
    for path in tfrecord_files(directory):
        for record in tf.data.TFRecordDataset(path):
            q, index, _ = example_to_question(tf.train.Example.FromString(record.numpy()))
            rows.append((index, q))
    rows.sort(key=lambda row: row[0])
    if [i for i, _ in rows] != list(range(len(rows))):
        raise ValueError(f"questions in {directory} do not have example_index 0..{len(rows) - 1}")
    return [q for _, q in rows]


def squad_dataset(questions: Sequence[Question]) -> List[dict]:
    """A SQuAD ``data`` list for ``questions`` (what the official scorers read)."""
    articles: Dict[str, dict] = {}
    for q in questions:
        article = articles.setdefault(q.title, {"title": q.title, "paragraphs": []})
        paragraphs = article["paragraphs"]
        if not paragraphs or paragraphs[-1]["context"] != q.context:
            paragraphs.append({"context": q.context, "qas": []})
        paragraphs[-1]["qas"].append({
            "id": q.id, "question": q.question, "is_impossible": q.is_impossible,
            "answers": [{"text": t, "answer_start": s}
                        for t, s in zip(q.answer_texts, q.answer_starts)]})
    return list(articles.values())


# -- windowed features -------------------------------------------------------------------------

def feature_to_example(feature, is_training: bool, qas_id: str = "") -> tf.train.Example:
    """squad_lib.FeatureWriter's record, plus postprocessing fields for evaluation.

    Written here rather than with ``FeatureWriter`` because FeatureWriter writes to a file
    itself, while Beam needs the serialized record to hand to its sink.
    """
    fields = {
        "unique_ids": _ints([feature.unique_id]),
        "input_ids": _ints(feature.input_ids),
        "input_mask": _ints(feature.input_mask),
        "segment_ids": _ints(feature.segment_ids),
    }
    if feature.paragraph_mask is not None:
        fields["paragraph_mask"] = _ints(feature.paragraph_mask)
    if feature.class_index is not None:
        fields["class_index"] = _ints([feature.class_index])
    if is_training:
        fields["start_positions"] = _ints([feature.start_position])
        fields["end_positions"] = _ints([feature.end_position])
        fields["is_impossible"] = _ints([1 if feature.is_impossible else 0])
    else:
        positions = sorted(feature.token_to_orig_map)
        fields["example_index"] = _ints([feature.example_index])
        fields["doc_span_index"] = _ints([feature.doc_span_index])
        fields["qas_id"] = _bytes([qas_id])
        fields["tokens"] = _bytes(feature.tokens)
        fields["token_positions"] = _ints(positions)
        fields["token_to_orig"] = _ints(feature.token_to_orig_map[p] for p in positions)
        fields["token_is_max_context"] = _ints(int(feature.token_is_max_context[p]) for p in positions)
    return tf.train.Example(features=tf.train.Features(feature=fields))


def example_to_eval_feature(example: tf.train.Example):
    """The ``squad_lib.InputFeatures`` of a stored evaluation feature."""
    from official.nlp.data import squad_lib  # lazy: Model Garden (seconds), only to evaluate

    f = example.features.feature
    positions = _get_ints(f, "token_positions")
    return squad_lib.InputFeatures(
        unique_id=_get_ints(f, "unique_ids")[0],
        example_index=_get_ints(f, "example_index")[0],
        doc_span_index=_get_ints(f, "doc_span_index")[0],
        tokens=_get_strs(f, "tokens"),
        token_to_orig_map=dict(zip(positions, _get_ints(f, "token_to_orig"))),
        token_is_max_context=dict(zip(positions, map(bool, _get_ints(f, "token_is_max_context")))),
        input_ids=_get_ints(f, "input_ids"),
        input_mask=_get_ints(f, "input_mask"),
        segment_ids=_get_ints(f, "segment_ids"),
        paragraph_mask=_get_ints(f, "paragraph_mask") if "paragraph_mask" in f else None,
        class_index=_get_ints(f, "class_index")[0] if "class_index" in f else None)


def read_eval_features(directory: str) -> list:
    """Every evaluation feature of one split, by unique id."""
    features = [example_to_eval_feature(tf.train.Example.FromString(r.numpy()))
                for path in tfrecord_files(directory) for r in tf.data.TFRecordDataset(path)]
    features.sort(key=lambda feature: feature.unique_id)
    return features
