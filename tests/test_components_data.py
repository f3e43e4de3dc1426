"""SquadExampleGen and FeatureWindowing executors on real SQuAD-Shifts data.

Windowing is compared with the reference (tf-models-official's squad_lib + FullTokenizer)
and with the library's single-process windowing, for Beam's DirectRunner in one process and
with two worker processes: the output files must be byte-identical whatever the worker count.
"""
from __future__ import annotations

import json

import pytest

from tests import fixtures
from tests.data_helpers import DOC_STRIDE, QUERY_LEN, SEQ_LEN, real_articles, run_example_gen, run_windowing
from bert_qa import _env  # noqa: F401
import tensorflow as tf

from bert_qa import squad_data, windowing
from bert_qa.tokenization import CachedFullTokenizer
from bert_qa_pipeline.components import artifacts, example_codecs
from bert_qa_pipeline.components.squad_example_gen import executor as example_gen_executor

# `corpus` (real articles through SquadExampleGen, two unusable training answers) is a module
# fixture of tests/conftest.py: test_dataflow.py windows it too.


def _records(features, split):
    """Every record of a split, in file order, as bytes."""
    return [r.numpy() for path in artifacts.tfrecord_files(artifacts.split_uri(features, split))
            for r in tf.data.TFRecordDataset(path)]


def _library_records(questions, is_training: bool, v2: bool = False):
    """The library's single-process windowing of the same questions, serialized the same way."""
    examples, skipped = squad_data.to_squad_examples(questions, is_training, v2, "first")
    features = []
    windowing.convert_examples_to_features(
        examples, CachedFullTokenizer(fixtures.minilm_vocab(), True), SEQ_LEN, DOC_STRIDE, QUERY_LEN,
        is_training, lambda f, is_padding=False: features.append(f), pad_to_batch=False)
    return [example_codecs.feature_to_example(f, is_training, examples[f.example_index].qas_id)
            .SerializeToString(deterministic=True) for f in features], features, skipped


def test_example_gen_pattern_splits_and_counts(corpus):
    examples = corpus["examples"]
    assert artifacts.split_names(examples) == ["train", "eval"]
    for split in ("train", "eval"):
        expected = squad_data.read_questions(corpus[split])
        stored = example_codecs.read_questions(artifacts.split_uri(examples, split))
        assert stored == expected  # every field of every question, in file order
        assert examples.get_int_custom_property(f"num_questions_{split}") == len(expected)
        assert examples.get_int_custom_property(f"num_articles_{split}") == len({q.title for q in expected})
        assert examples.get_int_custom_property(f"num_paragraphs_{split}") == len({q.context for q in expected})
    assert examples.get_int_custom_property("num_ids_in_several_splits") == 0


def test_example_gen_hash_split_keeps_articles_whole(tmp_path):
    path = fixtures.write_squad(str(tmp_path / "all.json"), real_articles(12, 2))
    examples = run_example_gen(str(tmp_path), [str(tmp_path / "*.json")], {"train": 3, "eval": 1})
    titles = {}
    for split in ("train", "eval"):
        questions = example_codecs.read_questions(artifacts.split_uri(examples, split))
        assert questions, f"{split} is empty"
        titles[split] = {q.title for q in questions}
        for title in titles[split]:
            assert example_gen_executor.bucket_of(title, 4) < 3 if split == "train" else \
                example_gen_executor.bucket_of(title, 4) == 3
    assert not titles["train"] & titles["eval"]
    total = sum(examples.get_int_custom_property(f"num_questions_{s}") for s in ("train", "eval"))
    assert total == len(squad_data.read_questions(path))


def test_example_gen_bad_file_names_file_and_question(tmp_path):
    articles = real_articles(1, 1)
    del articles[0]["paragraphs"][0]["qas"][1]["question"]
    bad_id = articles[0]["paragraphs"][0]["qas"][1]["id"]
    bad = fixtures.write_squad(str(tmp_path / "bad.json"), articles)
    good = fixtures.write_squad(str(tmp_path / "good.json"), real_articles(1, 1, start=5))
    with pytest.raises(squad_data.SquadFormatError) as err:
        run_example_gen(str(tmp_path), {"train": [bad], "eval": [good]})
    assert "bad.json" in str(err.value) and bad_id in str(err.value)
    from bert_qa.errors import InputError

    with pytest.raises(InputError, match="no file matches input pattern .*no_such"):  # exit 1, not 3
        run_example_gen(str(tmp_path), {"train": [str(tmp_path / "no_such*.json")], "eval": [bad]})


def test_windowing_equals_squad_lib_reference_in_eval_mode(corpus, tmp_path):
    """Against squad_lib.read_squad_examples + convert_examples_to_features + FullTokenizer."""
    from official.nlp.data import squad_lib
    from official.nlp.tools import tokenization

    features = run_windowing(corpus["examples"], str(tmp_path / "f"), ["--direct_running_mode=in_memory"])
    ours = [example_codecs.example_to_eval_feature(tf.train.Example.FromString(r)) for r in _records(features, "eval")]
    reference = []
    squad_lib.convert_examples_to_features(
        squad_lib.read_squad_examples(corpus["eval"], is_training=False, version_2_with_negative=False),
        tokenization.FullTokenizer(fixtures.minilm_vocab(), True), SEQ_LEN, DOC_STRIDE, QUERY_LEN,
        is_training=False, output_fn=lambda f, is_padding=False: None if is_padding else reference.append(f),
        batch_size=4)  # squad_lib pads eval features to whole batches; padding is left out here
    assert len(ours) == len(reference) > features.get_int_custom_property("num_questions_eval")
    for a, b in zip(ours, reference):
        for field in ("unique_id", "example_index", "doc_span_index", "tokens", "token_to_orig_map",
                      "token_is_max_context", "input_ids", "input_mask", "segment_ids"):
            assert getattr(a, field) == getattr(b, field), field


def test_windowing_format_is_feature_writer(corpus, tmp_path):
    """Training records parse exactly like squad_lib.FeatureWriter's (what the spec reads)."""
    from official.nlp.data import squad_lib

    features = run_windowing(corpus["examples"], str(tmp_path / "f"), ["--direct_running_mode=in_memory"])
    questions = example_codecs.read_questions(artifacts.split_uri(corpus["examples"], "train"))
    _, reference, _ = _library_records(questions, is_training=True)
    path = str(tmp_path / "writer.tfrecord")
    writer = squad_lib.FeatureWriter(path, is_training=True)
    for f in reference:
        writer.process_feature(f)
    writer.close()
    expected = [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]
    assert [tf.train.Example.FromString(r) for r in _records(features, "train")] == expected


@pytest.mark.parametrize("beam_args,num_shards", [
    (["--direct_running_mode=in_memory", "--direct_num_workers=1"], 0),
    (["--direct_running_mode=multi_processing", "--direct_num_workers=2"], 3),
], ids=["1-worker", "2-worker-processes-3-shards"])
def test_windowing_identical_to_library_for_any_worker_count(corpus, tmp_path, beam_args, num_shards):
    features = run_windowing(corpus["examples"], str(tmp_path / "f"), beam_args, num_shards=num_shards)
    for split, is_training in (("train", True), ("eval", False)):
        questions = example_codecs.read_questions(artifacts.split_uri(corpus["examples"], split))
        expected, _, skipped = _library_records(questions, is_training)
        assert _records(features, split) == expected, split
        files = artifacts.tfrecord_files(artifacts.split_uri(features, split))
        assert len(files) == (num_shards or 1)
        # Every question accounted for: windowed, or skipped with its reason.
        assert features.get_int_custom_property(f"num_questions_{split}") == len(questions)
        assert (features.get_int_custom_property(f"num_examples_{split}")
                + features.get_int_custom_property(f"num_skipped_{split}")) == len(questions)
        assert features.get_int_custom_property(f"num_features_{split}") == len(expected)
        if is_training:
            assert {s.id: s.reason for s in skipped} == {
                "not-aligned": squad_data.ANSWER_NOT_ALIGNED, "out-of-range": squad_data.ANSWER_OUT_OF_RANGE}
            assert json.loads(features.get_string_custom_property(f"skipped_by_reason_{split}")) == {
                squad_data.ANSWER_NOT_ALIGNED: 1, squad_data.ANSWER_OUT_OF_RANGE: 1}
    for name, value in (("seq_len", SEQ_LEN), ("query_len", QUERY_LEN), ("doc_stride", DOC_STRIDE)):
        assert features.get_int_custom_property(name) == value
    with open(features.get_string_custom_property("vocab_file")) as f, open(fixtures.minilm_vocab()) as g:
        assert f.read() == g.read()


def test_windowing_v2_unanswerable_questions(tmp_path):
    articles = real_articles(2, 2, start=12)  # articles no other test here reads
    for article in articles:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"][::3]:
                qa.update(is_impossible=True, answers=[])
    path = fixtures.write_squad(str(tmp_path / "v2.json"), articles, version="2.0")
    eval_path = fixtures.write_squad(str(tmp_path / "v2_eval.json"), articles[:1], version="2.0")
    examples = run_example_gen(str(tmp_path), {"train": [path], "eval": [eval_path]})
    assert examples.get_int_custom_property("num_impossible_train") > 0
    features = run_windowing(examples, str(tmp_path / "f"), ["--direct_running_mode=in_memory"], v2=True)
    questions = example_codecs.read_questions(artifacts.split_uri(examples, "train"))
    expected, reference, _ = _library_records(questions, is_training=True, v2=True)
    assert _records(features, "train") == expected
    assert any(f.is_impossible for f in reference) and not all(f.is_impossible for f in reference)


# -- An input too large for the DirectRunner is refused before any work, pointing to Dataflow (issue 22).
def test_memory_guard_estimate_against_available_memory(tmp_path):
    from bert_qa_pipeline.components import memory_guard

    (tmp_path / "a.tfrecord").write_bytes(b"x" * 10_000_000)
    pattern = [str(tmp_path / "*")]
    need = memory_guard.check_direct_runner_memory(pattern, [], "FeatureWindowing", available=2**40)
    assert need == int(memory_guard.IMPORTS_BYTES + memory_guard.WINDOWING_BYTES_PER_INPUT_BYTE * 10_000_000)
    with pytest.raises(memory_guard.InputTooLargeError, match=r"FeatureWindowing: 10 MB of input needs about "
                                                             r".* GiB on Beam's DirectRunner.*Dataflow"):
        memory_guard.check_direct_runner_memory(pattern, ["--direct_num_workers=1"], "FeatureWindowing",
                                                available=need - 1)
    from bert_qa.errors import InputError

    assert issubclass(memory_guard.InputTooLargeError, InputError)  # the CLI's exit 1
    # Other runners spill to disk: not checked.
    for args in (["--runner=DataflowRunner"], ["--runner", "DataflowRunner"]):
        assert memory_guard.check_direct_runner_memory(pattern, args, "x", available=1) is None
    assert memory_guard.check_direct_runner_memory(pattern, ["--runner=DirectRunner"], "x", available=2**40)


def test_feature_windowing_refuses_an_input_too_large_for_the_direct_runner(corpus, tmp_path, monkeypatch):
    import os

    from bert_qa_pipeline.components import memory_guard
    from tests import data_helpers

    monkeypatch.setattr(memory_guard, "available_bytes", lambda: 64 * 2**20)  # a 64 MiB machine
    out = tmp_path / "features"
    with pytest.raises(memory_guard.InputTooLargeError, match="Run it on Dataflow"):
        data_helpers.run_windowing(corpus["examples"], str(out), ["--direct_num_workers=1"])
    assert not any(name.startswith("Split-") for name in (os.listdir(out) if out.exists() else []))
    # The same input with room for it windows as before.
    monkeypatch.setattr(memory_guard, "available_bytes", lambda: 2**40)
    data_helpers.run_windowing(corpus["examples"], str(out), ["--direct_num_workers=1"])


def test_blessing_names_are_tfx_evaluators():
    """``artifacts.evaluator_constants`` copies TFX Evaluator's names (so a task process does not
    import every TFX component to write a blessing): each one equal to TFX's own."""
    from tfx.components.evaluator import constants as tfx_constants

    ours = {name: value for name, value in vars(artifacts.evaluator_constants).items()
            if name.isupper()}
    assert len(ours) == 9
    assert ours == {name: getattr(tfx_constants, name) for name in ours}
