"""Reading SQuAD: same examples as squad_lib, every question accounted for, named errors."""
import json

import pytest
from official.nlp.data import squad_lib

from bert_qa import squad_data
from tests import fixtures


@pytest.mark.parametrize("name,is_training", [
    ("english_tydiqa_train.json", True), ("qed-nq-train-prerelease.squad.json", True),
    ("qed-nq-dev.squad.json", False), ("new_wiki_train.json", False), ("new_wiki_eval.json", False)])
def test_examples_equal_squad_lib(name, is_training):
    path = fixtures.real_data(name)
    ours, skipped = squad_data.read_squad_examples(path, is_training)
    reference = squad_lib.read_squad_examples(path, is_training, False)
    assert [vars(e) for e in ours] == [vars(e) for e in reference]
    total = len(squad_data.read_questions(path))
    assert len(ours) + len(skipped) == total


def test_unalignable_answers_are_skipped_and_counted(tmp_path):
    context = "The leader was John Smith (1895-1943) of the Mmmm party."
    qas = [
        {"id": "ok", "question": "Who led?", "answers": [{"text": "John Smith", "answer_start": 15}]},
        # answer_start points at other words: squad_lib drops it silently.
        {"id": "misaligned", "question": "Who?", "answers": [{"text": "Smith", "answer_start": 0}]},
        {"id": "outside", "question": "When?", "answers": [{"text": "1895", "answer_start": 400}]},
        {"id": "none", "question": "Why?", "answers": []},
    ]
    path = fixtures.write_squad(str(tmp_path / "d.json"), [{"title": "t", "paragraphs": [
        {"context": context, "qas": qas}]}])
    examples, skipped = squad_data.read_squad_examples(path, is_training=True)
    assert [e.qas_id for e in examples] == ["ok"]
    assert {(s.id, s.reason) for s in skipped} == {
        ("misaligned", squad_data.ANSWER_NOT_ALIGNED), ("outside", squad_data.ANSWER_OUT_OF_RANGE),
        ("none", squad_data.NO_ANSWER)}
    line = squad_data.summarize_skipped(skipped, 4)
    assert line.startswith("skipped 3 of 4 questions") and "misaligned" in line
    # Evaluation keeps every question.
    assert len(squad_data.read_squad_examples(path, is_training=False)[0]) == 4


def test_multiple_training_answers(tmp_path):
    qas = [{"id": "two", "question": "q?", "answers": [{"text": "a", "answer_start": 0},
                                                      {"text": "a b", "answer_start": 0}]}]
    path = fixtures.write_squad(str(tmp_path / "d.json"), [{"title": "t", "paragraphs": [
        {"context": "a b c", "qas": qas}]}])
    with pytest.raises(squad_data.SquadFormatError, match=r"d\.json, question 'two'.*exactly 1 answer"):
        squad_data.read_squad_examples(path, is_training=True)
    examples, _ = squad_data.read_squad_examples(path, is_training=True, multi_answer="first")
    assert examples[0].orig_answer_text == "a"


@pytest.mark.parametrize("content,match", [
    ("{not json", r"bad\.json: malformed JSON"),
    (json.dumps({"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "q1", "answers": []}]}]}]}),
     r"bad\.json, question 'q1': missing or non-string 'question'"),
    (json.dumps({"data": [{"paragraphs": [{"context": "c", "qas": [
        {"id": "q2", "question": "?", "answers": [{"text": "c", "answer_start": "0"}]}]}]}]}),
     r"bad\.json, question 'q2': each answer needs"),
    (json.dumps({"version": "1.1"}), r"bad\.json: top level must be"),
])
def test_malformed_files_name_file_and_question(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(squad_data.SquadFormatError, match=match):
        squad_data.read_squad_examples(str(path), is_training=False)
