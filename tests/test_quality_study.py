"""The seed study's bookkeeping in ``benchmarks/quality.py`` (issue 23): the in-domain split, the
statistics it reports, and resuming an interrupted study. The training runs themselves take
hours and belong to the benchmark; here they are replaced by recorded results."""
from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import quality


def _squad(path, questions_per_article):
    data = [{"title": f"a{i}", "paragraphs": [{"context": "c", "qas": [
        {"id": f"a{i}q{j}", "question": "q?", "answers": [{"text": "c", "answer_start": 0}]}
        for j in range(n)]}]} for i, n in enumerate(questions_per_article)]
    path.write_text(json.dumps({"version": "1.1", "data": data}))
    return str(path)


def _titles(path):
    return [a["title"] for a in json.load(open(path))["data"]]


def test_in_domain_split_is_whole_articles_never_shared(tmp_path):
    src = _squad(tmp_path / "wiki.json", [10, 10, 10, 10, 10, 10])
    train, held_out = quality.held_out_articles(src, 15, 12, str(tmp_path / "t.json"), str(tmp_path / "e.json"))
    # Rounded up to whole articles: 15 -> the first two (20 questions), 12 -> the last two.
    assert _titles(train) == ["a0", "a1"]
    assert _titles(held_out) == ["a4", "a5"]
    # Exactly touching is allowed; one question more would share an article and is refused.
    quality.held_out_articles(src, 30, 30, str(tmp_path / "t.json"), str(tmp_path / "e.json"))
    with pytest.raises(SystemExit, match=r"wiki.json: 31 training and 30 held-out questions need more than its "
                                         r"6 articles \(60 questions\)"):
        quality.held_out_articles(src, 31, 30, str(tmp_path / "t.json"), str(tmp_path / "e.json"))


def test_welch_matches_hand_computed_values():
    # Equal sizes and variances: t = (3 - 5) / sqrt(2.5/5 + 2.5/5) = -2, df = 8; a t table gives
    # two-sided p = 0.0805 for |t| = 2 with 8 degrees of freedom.
    w = quality.welch([1, 2, 3, 4, 5], [3, 4, 5, 6, 7])
    assert w["t"] == pytest.approx(-2.0)
    assert w["df"] == pytest.approx(8.0)
    assert w["p"] == pytest.approx(0.0805, abs=5e-4)
    # Unequal variances: Welch-Satterthwaite, by hand. var_a = 2.5 (n 5), var_b = 14 (n 6).
    se2 = 2.5 / 5 + 14 / 6
    w = quality.welch([1, 2, 3, 4, 5], [2, 4, 6, 8, 10, 12])
    assert w["t"] == pytest.approx((3 - 7) / np.sqrt(se2))
    assert w["df"] == pytest.approx(se2 ** 2 / ((2.5 / 5) ** 2 / 4 + (14 / 6) ** 2 / 5))
    assert w["df"] != pytest.approx(9.0)  # not the pooled test's n_a + n_b - 2


@pytest.mark.parametrize("n_a,sd_a,n_b,sd_b", [(5, 1.0, 5, 1.0), (5, 5.17, 5, 4.85), (4, 2.0, 6, 6.0)])
def test_detectable_gap_is_found_by_welchs_test_at_the_stated_power(n_a, sd_a, n_b, sd_b):
    """Simulated, not computed the same way: normal samples of these sizes and spreads, shifted by
    the stated gap, are told apart by scipy's Welch test about 80% of the time (20,000 draws:
    sd of the rate 0.003), and a gap 25% smaller is found clearly less often."""
    from scipy import stats

    # Samples with exactly these sample sds, as a study's seeds would give.
    def sample(n, sd):
        z = np.arange(n, dtype=float)
        return sd * (z - z.mean()) / z.std(ddof=1)
    gap = quality.detectable_gap(sample(n_a, sd_a), sample(n_b, sd_b))
    rng = np.random.default_rng(0)
    a = rng.normal(0.0, sd_a, (20000, n_a))

    def found(delta):
        b = rng.normal(delta, sd_b, (20000, n_b))
        return float((stats.ttest_ind(a, b, axis=1, equal_var=False).pvalue < 0.05).mean())
    # The noncentral-t approximation of Welch's statistic is a little off at 4-6 samples (the
    # sample sds vary, which it ignores), hence 0.03.
    assert found(gap) == pytest.approx(0.80, abs=0.03)
    assert found(0.75 * gap) < 0.70
    if (n_a, sd_a, n_b, sd_b) == (5, 1.0, 5, 1.0):  # Cohen's d for n = 5 per group (G*Power: 2.02)
        assert gap == pytest.approx(2.02, abs=0.01)


def _result(f1, seed, steps=30):
    rng = np.random.default_rng(seed)
    loss = list(np.linspace(5, 2, steps) + rng.normal(0, 0.1, steps))
    return {"exact_match": f1 - 10, "f1": f1, "steps": steps, "mean_epoch_loss": float(np.mean(loss)),
            "train_seconds": 1.0, "loss": loss, "lr": [1e-4] * steps}


def _args(workdir, *extra):
    return quality._parse_args(["--workdir", str(workdir), "--protocol", "in_domain", *extra])


def test_report_gives_each_seed_mean_sd_and_welch(tmp_path):
    runs = {"ours_huggingface": {str(s): _result(f1, s) for s, f1 in zip((1, 2, 3, 4, 5), (40, 41, 42, 43, 44))},
            "huggingface": {str(s): _result(f1, s) for s, f1 in zip((1, 2, 3, 4, 5), (45, 46, 47, 48, 49))}}
    text = quality.report(runs, _args(tmp_path))
    assert "in_domain protocol" in text and "held-out New Wikipedia articles" in text
    assert text.count("| bert_qa, optimizer_recipe='huggingface' | ") == 6  # five seeds and the summary
    assert "| bert_qa, optimizer_recipe='huggingface' | 5 | 32.00 +- 1.58 | 42.00 +- 1.58 |" in text
    assert "| Hugging Face transformers (PyTorch) | 5 | 37.00 +- 1.58 | 47.00 +- 1.58 |" in text
    # t = -5 / sqrt(2 * 2.5 / 5) = -5, df 8: p = 0.00105.
    assert "ours_huggingface vs Hugging Face: F1 -5.00 (means of 5 and 5 seeds); Welch's t = -5.00, df = 8.0, " \
           "p = 0.001 (a real difference at p < 0.05; with these seeds a gap of 3.2 F1 is found 80% of the time)" in text
    runs["huggingface"] = {str(s): _result(f1, s) for s, f1 in zip((1, 2, 3, 4, 5), (38, 45, 41, 44, 43))}
    assert "not distinguishable from seed noise" in quality.report(runs, _args(tmp_path))
    # A seed kept from recorded figures (benchmarks/results/: seed 42 of the native study) has
    # EM, F1 and its mean loss only: reported with "-" (the report crashed on it, 2026-12-07).
    runs["ours_huggingface"]["42"] = {"exact_match": 19.5, "f1": 34.55, "mean_epoch_loss": 4.086}
    runs["ours_huggingface"]["43"] = {"exact_match": 20.0, "f1": 35.0}
    text = quality.report(runs, _args(tmp_path))
    assert "| bert_qa, optimizer_recipe='huggingface' | 42 | 19.50 | 34.55 | - | 4.086 | - |" in text
    assert "| bert_qa, optimizer_recipe='huggingface' | 43 | 20.00 | 35.00 | - | - | - |" in text
    # EM over all seven seeds (30-34, 19.5, 20); the loss over the six that kept one (five near
    # 3.5 and 4.086): by hand, not by the report's own formatter.
    assert "| bert_qa, optimizer_recipe='huggingface' | 7 | 28.50 +- 6.12 | " in text
    assert text.split("| bert_qa, optimizer_recipe='huggingface' | 7 | ")[1].split("\n")[0].endswith(" | 3.59 +- 0.24 |")


def test_study_resumes_and_never_mixes_protocols(tmp_path, monkeypatch):
    calls = []

    def fake_ours(protocol, recipe, seed):
        calls.append(("ours", seed))
        return _result(40 + seed, seed)

    def fake_hf(protocol, seed):
        calls.append(("hf", seed))
        return _result(45 + seed, seed)

    monkeypatch.setattr(quality, "Protocol", lambda args: object())
    monkeypatch.setattr(quality, "run_ours", fake_ours)
    monkeypatch.setattr(quality, "run_huggingface", fake_hf)
    study = ["--workdir", str(tmp_path), "--protocol", "in_domain", "--rows", "ours_huggingface,huggingface"]
    assert quality.main(study + ["--seeds", "1,2"]) == 0
    assert calls == [("ours", 1), ("hf", 1), ("ours", 2), ("hf", 2)]
    with open(tmp_path / "quality.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # Interrupted and started again with one seed more: only the new seed runs, and what the
    # file says of itself (a kept study's label and source, benchmarks/results/) stays.
    kept = json.load(open(tmp_path / "results.json"))
    (tmp_path / "results.json").write_text(json.dumps({**kept, "_label": "L", "_source": "S"}))
    calls.clear()
    assert quality.main(study + ["--seeds", "1,2,3"]) == 0
    assert calls == [("ours", 3), ("hf", 3)]
    kept = json.load(open(tmp_path / "results.json"))
    assert sorted(kept["runs"]["huggingface"]) == ["1", "2", "3"]
    assert (kept["_label"], kept["_source"]) == ("L", "S")
    # Another protocol (a different learning rate) starts afresh and sets the old results aside.
    calls.clear()
    assert quality.main(study + ["--seeds", "1", "--learning-rate", "5e-5"]) == 0
    assert calls == [("ours", 1), ("hf", 1)]
    assert len(list(tmp_path.glob("results.json.other-protocol-*"))) == 1
    assert "_label" not in json.load(open(tmp_path / "results.json"))


def test_seeds_must_be_distinct_integers(capsys):
    for bad in ("1,1", "a", ""):
        with pytest.raises(SystemExit):
            quality._parse_args(["--seeds", bad])
        assert "--seeds" in capsys.readouterr().err


def test_precision_is_part_of_the_protocol_and_float32_keeps_old_results():
    base = ["--protocol", "public", "--seq-len", "192"]
    before = quality._protocol_of(quality._parse_args(base))
    # float32 (the default) is left out of the key: results kept before --mixed-precision existed
    # (whose key has no such entry) still resume.
    assert "mixed_precision" not in before
    assert quality._protocol_of(quality._parse_args(base + ["--mixed-precision", "float32"])) == before
    bf16 = quality._protocol_of(quality._parse_args(base + ["--mixed-precision", "mixed_bfloat16"]))
    assert bf16 != before and bf16["mixed_precision"] == "mixed_bfloat16"


def test_a_data_file_given_by_path_is_read_from_there(tmp_path):
    src = _squad(tmp_path / "mine.json", [2])
    assert quality._shared(src) == src
    # A bare name is looked up among the shared data files, and a missing one ends the run.
    with pytest.raises(SystemExit):
        quality._shared("no_such_file_anywhere.json")


def test_only_report_never_sets_results_aside_and_reports_their_protocol(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(quality, "Protocol", lambda args: object())
    monkeypatch.setattr(quality, "run_ours", lambda protocol, recipe, seed: _result(40 + seed, seed))
    study = ["--workdir", str(tmp_path), "--rows", "ours_huggingface", "--seq-len", "192",
             "--mixed-precision", "mixed_bfloat16"]
    assert quality.main(study + ["--seeds", "1,2"]) == 0
    capsys.readouterr()
    # Reprinted without the study's flags: the file stays, and the table is the kept one, headed
    # with the protocol it was run with.
    assert quality.main(["--workdir", str(tmp_path), "--only-report"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "results.json").exists() and not list(tmp_path.glob("*.other-protocol-*"))
    assert "seq_len 192" in out and "ours in mixed_bfloat16" in out
    assert "| 2 | 31.50 +- 0.71 | 41.50 +- 0.71 |" in out  # F1 41 and 42, EM 10 lower


def test_compare_labels_each_study_by_what_differs_and_tests_it_against_the_first(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(quality, "Protocol", lambda args: object())
    monkeypatch.setattr(quality, "run_ours", lambda protocol, recipe, seed: _result(40 + seed, seed))
    common = ["--rows", "ours_huggingface", "--seeds", "1,2,3"]
    assert quality.main(common + ["--workdir", str(tmp_path / "a")]) == 0
    monkeypatch.setattr(quality, "run_ours", lambda protocol, recipe, seed: _result(50 + seed, seed))
    assert quality.main(common + ["--workdir", str(tmp_path / "b"), "--learning-rate", "5e-5",
                                  "--mixed-precision", "mixed_bfloat16"]) == 0
    capsys.readouterr()
    assert quality.main(["--compare", str(tmp_path / "a"), str(tmp_path / "b"),
                         "--workdir", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| 1 |") or line.startswith("| 2 |")]
    # Labelled by the two settings that differ, and by nothing they share (seq_len, batch, ...).
    assert "learning_rate 8e-05, mixed_precision float32 | 3 | 41.00 42.00 43.00 (seeds 1,2,3)" in rows[0]
    assert "learning_rate 5e-05, mixed_precision mixed_bfloat16 | 3 | 51.00 52.00 53.00" in rows[1]
    assert "seq_len" not in out
    # Means 42 and 52, both sd 1: t = 10 / sqrt(2/3) = 12.25.
    assert "t = 12.25, p = 0.000; a gap of 3.1 is found 80% of the time" in rows[1] and rows[0].endswith("| - |")
    with open(tmp_path / "cmp" / "compare.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit, match="nowhere/results.json not found"):
        quality.main(["--compare", str(tmp_path / "nowhere"), "--workdir", str(tmp_path / "cmp")])


def test_the_protocol_key_holds_the_study_settings_and_no_mode_flag():
    # A mode flag in the key (--only-report, --compare, ...) would make every study kept before
    # the flag existed look like another protocol and be set aside on resuming.
    assert set(quality._protocol_of(quality._parse_args([]))) == {
        "train_file", "train_questions", "eval_file", "eval_questions", "seq_len", "query_len",
        "doc_stride", "batch_size", "learning_rate", "epochs", "protocol"}


def test_fractional_epochs_train_that_many_steps_and_whole_ones_keep_their_key():
    whole = quality._parse_args(["--epochs", "2"])
    assert whole.epochs == 2 and isinstance(whole.epochs, int)
    # A whole number keeps the key studies were kept under (``{"epochs": 2}``, never 2.0).
    assert quality._protocol_of(whole)["epochs"] == 2
    assert quality._parse_args(["--epochs", "1.5"]).epochs == 1.5
    for bad in ("0", "-1"):
        with pytest.raises(SystemExit):
            quality._parse_args(["--epochs", bad])


def test_parity_runs_refuse_fractional_epochs():
    with pytest.raises(SystemExit, match="whole number"):
        quality.main(["--parity-steps", "3", "--epochs", "1.5"])


def test_compare_puts_a_kept_studys_label_first_and_skips_losses_not_kept(tmp_path, capsys):
    """Studies kept in benchmarks/results/ differ by code version, which no flag records: their
    "_label" names it. A seed whose loss was not kept counts in F1 and EM, not in the loss mean."""
    protocol = quality._protocol_of(quality._parse_args([]))
    for name, label, runs in [
            ("hf", "", {"1": {"f1": 40.0, "exact_match": 30.0, "mean_epoch_loss": 3.8},
                        "2": {"f1": 44.0, "exact_match": 32.0, "mean_epoch_loss": 3.6}}),
            ("old", "TF Hub layer", {"1": {"f1": 30.0, "exact_match": 20.0, "mean_epoch_loss": 4.0},
                                     "2": {"f1": 34.0, "exact_match": 22.0, "mean_epoch_loss": None}})]:
        (tmp_path / name).mkdir()
        row = "huggingface" if name == "hf" else "ours_huggingface"
        (tmp_path / name / "results.json").write_text(json.dumps(
            {"_protocol": protocol, "_label": label, "runs": {row: runs}}))
    assert quality.main(["--compare", str(tmp_path / "hf"), str(tmp_path / "old"),
                         "--workdir", str(tmp_path / "cmp")]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 2 |")]
    assert rows[0].startswith("| 2 | bert_qa, optimizer_recipe='huggingface' | TF Hub layer | 2 | 30.00 34.00"), rows
    assert "| 21.00 +- 1.41 | 32.00 +- 2.83 | 4.00 |" in rows[0]  # loss: seed 1's alone
    assert "t = -3.54" in rows[0]  # means 32 vs 42, both sd 2.83: t = -10 / 2.83


def test_tflite_scores_are_reported_per_seed_and_the_flag_keeps_the_protocol(tmp_path, monkeypatch, capsys):
    """``--tflite`` adds each seed's dynamic-range .tflite F1 and its drop; a study kept without
    the flag resumes with it (the flag is a measurement, not a protocol setting)."""
    monkeypatch.setattr(quality, "Protocol", lambda args: object())
    monkeypatch.setattr(quality, "run_ours", lambda protocol, recipe, seed: _result(40 + seed, seed))
    study = ["--workdir", str(tmp_path), "--rows", "ours_huggingface"]
    assert quality.main(study + ["--seeds", "1"]) == 0
    assert "dynamic-range .tflite F1" not in capsys.readouterr().out

    def with_tflite(protocol, recipe, seed):
        return {**_result(40 + seed, seed), "tflite_f1": 37.5 + seed, "tflite_exact_match": 27.0,
                "tflite_quantization": "dynamic", "tflite_bytes": 23_400_000}

    monkeypatch.setattr(quality, "run_ours", with_tflite)
    assert quality.main(study + ["--seeds", "1,2", "--tflite"]) == 0
    out = capsys.readouterr().out
    assert not list(tmp_path.glob("results.json.other-protocol-*"))
    assert "| bert_qa, optimizer_recipe='huggingface' | 2 | 42.00 | 39.50 | 2.50 | 23.4 |" in out
    assert "| 1 | 41.00 | 38.50" not in out  # seed 1 ran without --tflite: no row
