"""Every file of tests/data/corpus (broken and awkward SQuAD files) through every reader.

Each file goes through ``bertqa validate`` (library and CLI, in-process), ``score``
(``score_files`` with gold predictions, and the CLI), ingestion as SquadExampleGen does it
(``read_split`` -> tf.Example per question) and windowing as FeatureWindowing does it
(``WindowParagraph`` over the stored questions -> serialized features), in training (v1.1
and v2.0) and evaluation mode. The outcomes must match tests/data/corpus/EXPECTED.json, and
the contract holds for every file:

(a) a file validate passes is ingested and windowed, every question accounted for (features,
    or a ``Skipped`` with its reason), and scores perfectly against its own gold answers;
(b) a file ingestion or windowing refuses was reported by validate first;
(c) nothing but an ``InputError`` ever escapes (anything else fails the test);
(d) every error message names the file.
"""
from __future__ import annotations

import collections
import json
import os

import pytest

from bert_qa import squad_data
from bert_qa.errors import InputError
from bert_qa.scoring import ScoringInputError, score_files
from bert_qa.validation import validate_file, validate_files
from bert_qa_cli.main import main

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "corpus")
with open(os.path.join(CORPUS, "EXPECTED.json"), encoding="utf-8") as _f:
    EXPECTED = json.load(_f)["files"]

SEQ_LEN, QUERY_LEN, DOC_STRIDE = 64, 16, 32
MODES = {  # name: (is_training, version_2_with_negative); multi_answer is the component's default
    "train_v1": (True, False), "train_v2": (True, True), "eval": (False, False)}
SKIP_REASONS = {getattr(squad_data, name): name
                for name in ("NO_ANSWER", "ANSWER_OUT_OF_RANGE", "ANSWER_NOT_ALIGNED")}


@pytest.fixture(scope="module")
def windowers(vocab_file):
    from bert_qa_pipeline.components.feature_windowing.executor import WindowParagraph

    out = {}
    for mode, (is_training, v2) in MODES.items():
        dofn = WindowParagraph(vocab_file, True, SEQ_LEN, QUERY_LEN, DOC_STRIDE, is_training, v2,
                               "first", "corpus")
        dofn.setup()
        out[mode] = dofn
    return out


# -- the four readers -------------------------------------------------------------------------

def run_validate(path, capsys):
    report = validate_file(path)
    for problem in report.problems:
        assert path in str(problem), problem  # (d)
    code = main(["validate", path])
    out, err = capsys.readouterr()
    assert code == (1 if report.errors else 0), (out, err)
    assert "Traceback" not in out + err and path in out
    return report


def _gold_predictions(path):
    """{id: first gold answer text, or ""} of whatever question objects the file holds."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            data = squad_data.loads_json(f.read())
    except (OSError, ValueError):
        return {}
    predictions = {}

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("id"), str):
                answers = node.get("answers")
                texts = [a["text"] for a in answers if isinstance(a, dict) and isinstance(a.get("text"), str)] \
                    if isinstance(answers, list) else []
                predictions.setdefault(node["id"], texts[0] if texts else "")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(data)
    return predictions


def run_score(path, tmp_path, capsys):
    """("ok", metrics) or ("error", message)."""
    predictions = tmp_path / "predictions.json"
    predictions.write_text(json.dumps(_gold_predictions(path)), encoding="utf-8")
    try:
        result = ("ok", score_files(path, str(predictions)))
    except ScoringInputError as err:
        assert path in str(err), err  # (d)
        result = ("error", str(err))
    code = main(["score", "--data", path, "--predictions", str(predictions)])
    out, err = capsys.readouterr()
    assert code == (0 if result[0] == "ok" else 1) and "Traceback" not in out + err, (out, err)
    return result


def ingest(paths):
    """SquadExampleGen: read the files into one split, one tf.Example per question."""
    from bert_qa_pipeline.components import example_codecs
    from bert_qa_pipeline.components.squad_example_gen import executor

    questions, _ = executor.read_split(paths, "train", None)
    records = [example_codecs.question_to_example(q, i, p).SerializeToString(deterministic=True)
               for i, (q, p) in enumerate(zip(questions, executor.paragraph_indices(questions)))]
    return questions, records


def window(records, dofn, is_training):
    """FeatureWindowing's Beam steps, in one process: returns the split's summary."""
    import apache_beam as beam
    from bert_qa_pipeline.components.feature_windowing import executor

    paragraphs = collections.defaultdict(list)
    for record in records:
        paragraph_index, row = executor._key_by_paragraph(record)
        paragraphs[paragraph_index].append(row)
    counts, windowed = [], []
    for paragraph_index in sorted(paragraphs):
        for out in dofn.process((paragraph_index, paragraphs[paragraph_index])):
            if isinstance(out, beam.pvalue.TaggedOutput):
                counts.append(out.value)
            else:
                windowed.append(out)
    plan = executor.plan_offsets(counts, 0)
    kept = dict(counts)
    for element in windowed:
        paragraph_index, features = element
        # Every example the library kept got at least one feature.
        assert {example_index for _, example_index, _ in features} == set(
            range(kept[paragraph_index]["examples"])), kept[paragraph_index]
        assert all(record for _, (_, record) in executor.assign_ids(element, plan, is_training))
    return executor.summarize(counts)


def run_pipeline(path, windowers):
    """("refused", message) or ("ok", {mode: {question id: skip reason name}})."""
    try:
        questions, records = ingest([path])
    except InputError as err:
        assert path in str(err), err  # (d)
        return "refused", str(err)
    skipped = {}
    for mode, (is_training, _) in MODES.items():
        summary = window(records, windowers[mode], is_training)
        # Every question accounted for: an example (with features), or skipped with a reason.
        assert summary["questions"] == len(questions)
        assert summary["examples"] + len(summary["skipped"]) == len(questions), summary
        assert all(s["reason"] in SKIP_REASONS for s in summary["skipped"])
        skipped[mode] = {s["id"]: SKIP_REASONS[s["reason"]] for s in summary["skipped"]}
    assert skipped["eval"] == {}, "evaluation must keep every question (QaEvaluator refuses skips)"
    return "ok", skipped


def run_all(path, windowers, tmp_path, capsys):
    report = run_validate(path, capsys)
    pipeline = run_pipeline(path, windowers)
    score = run_score(path, tmp_path, capsys)
    if not report.errors:  # (a)
        assert pipeline[0] == "ok", f"validate passed {path} but the pipeline refused it: {pipeline[1]}"
        if score[0] == "ok":
            metrics = score[1]
            assert metrics.get("exact_match", 1.0) == 1.0 and metrics.get("exact", 100.0) == 100.0, metrics
    if pipeline[0] == "refused":  # (b)
        assert report.errors, f"the pipeline refused {path} ({pipeline[1]}) but validate passed it"
    return report, pipeline, score


# -- the corpus ----------------------------------------------------------------------------------

def test_expected_covers_the_whole_corpus():
    files = sorted(f for f in os.listdir(CORPUS) if f.endswith(".json") and f != "EXPECTED.json")
    assert sorted(EXPECTED) == files
    assert len(files) >= 40
    for name, expected in EXPECTED.items():
        assert expected["validate"] in ("ok", "error") and expected["pipeline"] in ("ok", "refused")
        assert expected["score"] in ("ok", "error"), name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file(name, windowers, tmp_path, capsys):
    path = os.path.join(CORPUS, name)
    expected = EXPECTED[name]
    report, (pipeline, pipeline_detail), (score, score_detail) = run_all(path, windowers, tmp_path, capsys)

    messages = [str(p) for p in report.errors]
    assert ("error" if messages else "ok") == expected["validate"], messages
    if messages:
        assert any(expected["validate_message"] in m for m in messages), messages
    assert pipeline == expected["pipeline"], pipeline_detail
    if pipeline == "refused":
        assert expected["pipeline_message"] in pipeline_detail
    else:
        assert pipeline_detail["train_v1"] == expected.get("train_skipped", {})
    assert score == expected["score"], score_detail
    if score == "error":
        assert expected["score_message"] in score_detail


# -- the defects, one by one -----------------------------------------------------------------

def _corpus(name):
    return os.path.join(CORPUS, name)


def test_deep_nesting_and_huge_ints_are_reported_and_the_next_files_still_checked(tmp_path, capsys, windowers):
    """Once a RecursionError (100000 nested lists) or the int-limit ValueError (a 5000-digit
    answer_start) escaped `bertqa validate` and the files after it were never checked."""
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    paths = [str(deep), _corpus("err_answer_start_5000_digits.json"), _corpus("ok_minimal_v1.json")]
    reports = validate_files(paths)
    assert [len(r.errors) for r in reports] == [1, 1, 0]
    assert "deep.json: JSON nested too deeply to load: 100000 levels" in str(reports[0].errors[0])
    assert ("err_answer_start_5000_digits.json: data[0].paragraphs[0].qas[0] question 'digits-1': "
            "answers[0] 'answer_start' is a <5000-digit integer>") in str(reports[1].errors[0])
    assert main(["validate", *paths]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    for path in paths:
        assert f"{path}: " in out  # each file got its summary line
    assert "ok_minimal_v1.json: 1 articles, 1 paragraphs, 2 questions" in out
    # Ingestion and scoring: an InputError naming the file, not a RecursionError / ValueError.
    _, pipeline, score = run_all(str(deep), windowers, tmp_path, capsys)
    assert pipeline[0] == "refused" and "nested too deeply" in pipeline[1]
    assert score[0] == "error" and "nested too deeply" in score[1]
    with pytest.raises(squad_data.SquadFormatError, match=r"question 'digits-1'.*5000-digit"):
        ingest([_corpus("err_answer_start_5000_digits.json")])


@pytest.mark.parametrize("name,field", [
    ("err_surrogate_in_context.json", "the context has a lone surrogate '\\ud800' at character 6"),
    ("err_surrogate_in_question.json", "'question' has a lone surrogate '\\udc00' at character 6"),
    ("err_surrogate_in_answer.json", "answers[0] 'text' has a lone surrogate '\\udfff' at character 5"),
    ("err_surrogate_in_title.json", "'title' has a lone surrogate '\\udbff' at character 3"),
    ("err_surrogate_in_id.json", "'id' 'surid-\\ud83d' has a lone surrogate '\\ud83d' at character 6"),
])
def test_lone_surrogates_are_refused_before_they_reach_a_tf_example(name, field):
    """A lone surrogate passed validate and crashed SquadExampleGen writing tf.Examples
    (UnicodeEncodeError, exit 3)."""
    path = _corpus(name)
    errors = [str(p) for p in validate_file(path).errors]
    assert len(errors) == 1 and name in errors[0] and field in errors[0], errors
    with pytest.raises(squad_data.SquadFormatError) as err:
        ingest([path])
    assert name in str(err.value) and field in str(err.value)
    if "title" not in name and "_id" not in name:  # the question is named
        assert "question 'sur" in errors[0] and "question 'sur" in str(err.value)


def test_a_negative_answer_start_is_never_used_as_an_index(windowers):
    """context[-7:-1] == "France": validate passed it, and only the range check of training
    kept it out of the features."""
    path = _corpus("err_answer_start_negative.json")
    errors = [str(p) for p in validate_file(path).errors]
    assert len(errors) == 1 and "question 'neg-1': answers[0] 'answer_start' -7 is negative" in errors[0]
    assert "the text occurs at 47" in errors[0]
    _, records = ingest([path])
    assert window(records, windowers["train_v1"], True)["skipped"] == [
        {"id": "neg-1", "reason": squad_data.ANSWER_OUT_OF_RANGE, "detail": "answer_start=-7"}]


def test_an_answer_starting_in_leading_whitespace_does_not_index_from_the_end():
    """squad_lib maps a character of the context's leading whitespace to word -1."""
    questions = squad_data.read_questions(_corpus("ok_answer_in_leading_whitespace.json"))
    examples, skipped = squad_data.to_squad_examples(questions, is_training=True)
    assert not skipped and (examples[0].start_position, examples[0].end_position) == (0, 0)


def test_duplicate_ids_across_files(capsys):
    """Each file is valid alone; given together, the second reuses the first's id."""
    a, b = _corpus("ok_cross_file_duplicate_a.json"), _corpus("ok_cross_file_duplicate_b.json")
    reports = validate_files([a, b])
    assert reports[0].errors == []
    assert [str(p) for p in reports[1].errors] == [
        f"error: {b}: data[0].paragraphs[0].qas[0] question 'shared-id': duplicate id in another file "
        f"(first at {a}: data[0].paragraphs[0].qas[0])"]
    assert main(["validate", a, b]) == 1
    assert "duplicate id in another file" in capsys.readouterr().out
    assert main(["validate", a]) == 0 and main(["validate", b]) == 0
    # SquadExampleGen reads a split's files together: it refuses, naming both files.
    with pytest.raises(squad_data.SquadFormatError) as err:
        ingest([a, b])
    assert b in str(err.value) and a in str(err.value) and "'shared-id'" in str(err.value)


@pytest.mark.parametrize("name", ["err_is_impossible_string.json", "err_is_impossible_number.json"])
def test_is_impossible_must_be_a_boolean_everywhere(name, tmp_path):
    """"false" (a string) is truthy: it turned on SQuAD v2.0 scoring."""
    path = _corpus(name)
    assert any("'is_impossible' must be true or false" in str(p) for p in validate_file(path).errors)
    with pytest.raises(squad_data.SquadFormatError, match="'is_impossible' must be true or false"):
        ingest([path])
    predictions = tmp_path / "p.json"
    predictions.write_text(json.dumps({"imps-1": "Paris", "impn-1": "Paris"}))
    with pytest.raises(ScoringInputError, match="is_impossible must be true or false"):
        score_files(path, str(predictions))


def test_a_bool_is_not_a_number():
    """answer_start: true is 1 to Python (context[1:5] == "aris")."""
    path = _corpus("err_answer_start_bool.json")
    errors = [str(p) for p in validate_file(path).errors]
    assert len(errors) == 1 and "'startbool-1'" in errors[0] and "true/false are not integers" in errors[0]
    with pytest.raises(squad_data.SquadFormatError, match=r"question 'startbool-1'.*true/false are not integers"):
        ingest([path])
    with pytest.raises(squad_data.SquadFormatError, match="string 'id'"):
        ingest([_corpus("err_id_bool.json")])


def test_long_context_is_windowed_into_several_features(windowers):
    _, records = ingest([_corpus("ok_long_context_many_windows.json")])
    summary = window(records, windowers["eval"], False)
    assert summary["examples"] == 2 and summary["features"] > 4
