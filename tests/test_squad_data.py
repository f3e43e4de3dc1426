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
    # The detail says what did not line up, so a user can fix the record.
    assert {s.id: s.detail for s in skipped} == {
        "misaligned": "answer 'Smith' vs tokens 'The leader'", "outside": "answer_start=400", "none": ""}
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


def test_errors_carry_file_and_question(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"data": [{"paragraphs": [{"context": "c", "qas": [
        {"id": "q1", "question": "?", "answers": "c"}]}]}]}))
    with pytest.raises(squad_data.SquadFormatError) as caught:
        squad_data.read_squad_examples(str(path), is_training=False)
    assert (caught.value.source, caught.value.question_id) == (str(path), "q1")


def test_too_deep_nesting_says_how_deep_and_where(tmp_path):
    # Brackets inside strings do not count; closed arrays/objects give their levels back; of
    # two equally deep places the first (where json.loads gave up) is reported.
    deep = "[" * 5000 + "]" * 5000
    third = '  {"title": "deep", "paragraphs": '
    text = ('{"version": "1.1", "data": [\n'
            '  {"title": "a [{ title \\" [[", "paragraphs": [{"context": "c", "qas": []}]},\n'
            + third + deep + '},\n'
            '  {"title": "again", "paragraphs": ' + deep + '}\n'
            ']}\n')
    path = tmp_path / "deep.json"
    path.write_text(text)
    with pytest.raises(squad_data.SquadFormatError) as caught:
        squad_data.read_squad_examples(str(path), is_training=False)
    # {, [, the article's { and 5000 arrays; the deepest '[' is the run's last, on line 3.
    assert str(caught.value) == (f"{path}: JSON nested too deeply to load: 5003 levels of "
                                 f"arrays/objects (deepest at line 3 column {len(third) + 5000})")

    # A file that starts with an empty line: the deepest point is on line 2, column 5000.
    path.write_text("\n" + deep + "\n")
    with pytest.raises(squad_data.SquadFormatError,
                       match=r"deep\.json: JSON nested too deeply to load: 5000 levels of "
                             r"arrays/objects \(deepest at line 2 column 5000\)$"):
        squad_data.read_squad_examples(str(path), is_training=False)


def test_version_2_training_only_when_asked(tmp_path):
    # SQuAD v2.0 read as v1.1 (the default, as in squad_lib): an unanswerable question is an
    # answerable one without an answer, hence skipped; read as v2.0 it is a negative example.
    qas = [{"id": "yes", "question": "Who?", "answers": [{"text": "Ann", "answer_start": 0}],
            "is_impossible": False},
           {"id": "no", "question": "Why?", "answers": [], "is_impossible": True,
            "plausible_answers": [{"text": "park", "answer_start": 13}]}]
    path = fixtures.write_squad(str(tmp_path / "v2.json"), [{"title": "t", "paragraphs": [
        {"context": "Ann went to park.", "qas": qas}]}], version="2.0")
    examples, skipped = squad_data.read_squad_examples(path, is_training=True)
    assert [e.qas_id for e in examples] == ["yes"]
    assert skipped == [squad_data.Skipped("no", squad_data.NO_ANSWER)]
    examples, skipped = squad_data.read_squad_examples(path, is_training=True,
                                                       version_2_with_negative=True)
    reference = squad_lib.read_squad_examples(path, True, True)
    assert [vars(e) for e in examples] == [vars(e) for e in reference]
    assert [e.is_impossible for e in examples] == [False, True] and skipped == []


def _skip_summary(tmp_path, qas):
    path = fixtures.write_squad(str(tmp_path / "d.json"), [{"title": "t", "paragraphs": [
        {"context": "Ann went to the park.", "qas": qas}]}])
    _, skipped = squad_data.read_squad_examples(path, is_training=True)
    return squad_data.summarize_skipped(skipped, len(qas))


def test_summarize_skipped_counts_reasons_most_common_first(tmp_path):
    def qa(qid, text, start):
        return {"id": qid, "question": "?", "answers": [] if text is None else
                [{"text": text, "answer_start": start}]}

    qas = [qa("ok", "Ann", 0), qa("far", "park", 99), qa("none1", None, 0),
           qa("shifted", "park", 0), qa("none2", None, 0), qa("negative", "Ann", -3),
           qa("none3", None, 0), qa("ok2", "park", 16)]
    counts = ("3 answerable training question without an answer; "
              "2 answer_start outside the context; "
              "1 answer text not recoverable from the context tokens")
    assert _skip_summary(tmp_path, qas) == (
        f"skipped 6 of 8 questions ({counts}); first ids: far, none1, shifted, none2, negative ...")
    # Five skipped: all named, nothing elided.
    del qas[1]
    assert _skip_summary(tmp_path, qas) == (
        "skipped 5 of 7 questions (3 answerable training question without an answer; "
        "1 answer text not recoverable from the context tokens; "
        "1 answer_start outside the context); first ids: none1, shifted, none2, negative, none3")


def test_duplicate_keys_are_noted_with_all_their_values_and_only_they():
    """What `bertqa validate` warns about: the keys an object repeats, each with its values in
    file order (json keeps the last); an object without a repeated key loads as a plain dict."""
    text = '{"a": {"id": "x", "id": "y", "q": 1, "n": 2, "n": 3, "n": 4}, "b": {"id": "z"}}'
    loaded = squad_data.loads_json(text, note_duplicate_keys=True)
    assert loaded["a"] == {"id": "y", "q": 1, "n": 4}
    assert loaded["a"].duplicate_keys == {"id": ["x", "y"], "n": [2, 3, 4]}
    assert type(loaded) is dict and type(loaded["b"]) is dict
