"""`bertqa validate` reports counts and every problem, naming file and question id."""
import json
import subprocess
import sys

import pytest

from bert_qa.validation import validate_file
from tests import fixtures


def _run(*paths):
    return subprocess.run([sys.executable, "-m", "bert_qa_cli.main", "validate", *paths],
                          capture_output=True, text=True, cwd=fixtures.REPO_ROOT)


def test_real_files_are_clean():
    for name in ("new_wiki_train.json", "new_wiki_eval.json", "english_tydiqa_dev.json"):
        report = validate_file(fixtures.real_data(name))
        assert report.errors == []
    report = validate_file(fixtures.real_data("new_wiki_train.json"))
    assert (report.articles, report.paragraphs, report.questions, report.answerable) == (15, 550, 2773, 2773)


def test_every_problem_is_reported(tmp_path):
    data = {"data": [
        {"title": "A", "paragraphs": [
            {"context": "Paris is the capital of France.", "qas": [
                {"id": "good", "question": "Capital?", "answers": [{"text": "Paris", "answer_start": 0}]},
                {"id": "moved", "question": "Country?", "answers": [{"text": "France", "answer_start": 3}]},
                {"id": "good", "question": "Again?", "answers": [{"text": "Paris", "answer_start": 0}]},
                {"id": "noq", "question": "  ", "answers": [{"text": "Paris", "answer_start": 0}]},
                {"id": "badstart", "question": "x?", "answers": [{"text": "Paris", "answer_start": "0"}]},
                {"id": "neg", "question": "Moon?", "answers": [], "is_impossible": True},
                {"id": "noans", "question": "Sun?", "answers": []},
                {"question": "no id?", "answers": []},
            ]},
            {"context": "", "qas": []},
            {"qas": []},
        ]},
        {"title": "B"},
    ]}
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data))
    report = validate_file(str(path))
    messages = [str(p) for p in report.problems]
    expected = [
        ("'moved'", "not at answer_start 3"), ("'good'", "duplicate id"), ("'noq'", "empty question"),
        ("'badstart'", "non-integer 'answer_start'"), ("'noans'", "without answers"), ("qas[7]", "'id'"),
        ("qas[7]", "without answers"), ("paragraphs[1]", "empty context"), ("paragraphs[2]", "'context'"), ("data[1]", "'paragraphs'"),
    ]
    for where, what in expected:
        assert any(where in m and what in m and "broken.json" in m for m in messages), (where, what, messages)
    assert len(report.errors) == len(expected)
    assert (report.articles, report.questions, report.unanswerable) == (2, 8, 1)
    proc = _run(str(path))
    assert proc.returncode == 1 and "duplicate id" in proc.stdout


def test_malformed_json_and_exit_status(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": [')
    proc = _run(str(bad))
    assert proc.returncode == 1 and "bad.json" in proc.stdout and "malformed JSON" in proc.stdout
    proc = _run(fixtures.real_data("english_tydiqa_dev.json"))
    assert proc.returncode == 0 and "440 questions" in proc.stdout


def test_a_utf8_byte_order_mark_is_accepted_everywhere(tmp_path):
    """validate, ingestion (SquadExampleGen and the DataLoader read through squad_data) and score
    all take a file saved with a BOM, and see the same questions as without it."""
    from bert_qa import scoring, squad_data

    data = fixtures.load_squad("new_wiki_train.json")
    data["data"] = data["data"][:1]
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(data), encoding="utf-8")
    bom = tmp_path / "bom.json"
    bom.write_text(json.dumps(data), encoding="utf-8-sig")
    assert bom.read_bytes()[:3] == b"\xef\xbb\xbf"
    assert validate_file(str(bom)).problems == []
    import dataclasses

    def unsourced(path):  # a Question also names the file it came from
        return [dataclasses.replace(q, source="") for q in squad_data.read_questions(path)]

    assert unsourced(str(bom)) == unsourced(str(plain)) and len(unsourced(str(bom))) > 10
    questions = squad_data.read_questions(str(plain))
    predictions = tmp_path / "pred.json"
    predictions.write_text(json.dumps({q.id: q.answer_texts[0] for q in questions}), encoding="utf-8-sig")
    assert scoring.score_files(str(bom), str(predictions))["exact_match"] == 1.0


def test_a_failure_on_one_file_does_not_stop_the_others(tmp_path, capsys, monkeypatch):
    """Should validation itself fail on a file (a bug of ours), the other files are still
    checked and reported, and the exit status says the tool failed (3), not the input (1)."""
    from bert_qa import validation
    from bert_qa_cli.main import main

    good = fixtures.write_squad(str(tmp_path / "good.json"), [{"title": "t", "paragraphs": [
        {"context": "Paris is big.", "qas": [{"id": "q", "question": "Which?",
                                              "answers": [{"text": "Paris", "answer_start": 0}]}]}]}])
    boom = fixtures.write_squad(str(tmp_path / "boom.json"), [])
    real = validation.validate_file

    def flaky(path, seen_ids=None):
        if path == boom:
            raise RuntimeError("simulated bug")
        return real(path, seen_ids)

    monkeypatch.setattr(validation, "validate_file", flaky)
    assert main(["validate", boom, good]) == 3
    out, err = capsys.readouterr()
    assert f"{boom}: validation failed: RuntimeError: simulated bug" in err and "Traceback" not in err
    assert f"{good}: 1 articles, 1 paragraphs, 1 questions" in out
    with pytest.raises(RuntimeError, match="simulated bug"):
        main(["--debug", "validate", boom, good])


CORPUS = f"{fixtures.REPO_ROOT}/tests/data/corpus"


def test_json_output_is_one_report_per_file_with_counts_and_every_problem(capsys):
    """`bertqa validate --json` (what CI reads): per file, its counts, how many errors and
    warnings, and every problem as the text report words it."""
    from bert_qa_cli.main import main

    warned, broken = f"{CORPUS}/ok_duplicate_json_keys.json", f"{CORPUS}/err_duplicate_ids.json"
    assert main(["validate", "--json", warned, broken]) == 1
    out = capsys.readouterr().out
    decoder, reports, rest = json.JSONDecoder(), [], out.strip()
    while rest:  # one JSON object after another
        report, end = decoder.raw_decode(rest)
        reports.append(report)
        rest = rest[end:].lstrip()
    where = f"{warned}: data[0].paragraphs[0].qas[0]"
    assert reports == [
        {"file": warned, "articles": 1, "paragraphs": 1, "questions": 1, "answerable": 1,
         "unanswerable": 0, "errors": 0, "warnings": 2, "problems": [
             f"warning: {where} question 'dupkey-1': duplicate JSON key 'id' (2 times): the last value, "
             f"'dupkey-1', is used; other tools may take the first, 'dupkey-ignored'",
             f"warning: {where}.answers[0] question 'dupkey-1': duplicate JSON key 'answer_start' (2 times): "
             f"the last value, 12, is used; other tools may take the first, 0"]},
        {"file": broken, "articles": 1, "paragraphs": 1, "questions": 2, "answerable": 2,
         "unanswerable": 0, "errors": 1, "warnings": 0, "problems": [
             f"error: {broken}: data[0].paragraphs[0].qas[1] question 'dup-1': duplicate id "
             f"(first at {broken}: data[0].paragraphs[0].qas[0])"]},
    ]


@pytest.mark.parametrize("name, qid", [("err_missing_question.json", "noq-1"),
                                       ("err_question_not_string.json", "qnum-1")])
def test_a_missing_or_non_string_question_names_its_id(name, qid):
    problems = validate_file(f"{CORPUS}/{name}").problems
    assert [(p.severity, p.question_id, p.message) for p in problems] == [
        ("error", qid, "missing or non-string 'question'")]
