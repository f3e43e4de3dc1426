"""`bertqa export` scores its variants and refuses a bad one; calibration counts (issue 22).

A tiny span model (2-layer hidden-32 encoder, seq_len 64) is trained until it answers a dozen
real questions (F1 well above an untrained model's), so that a variant that computes something
else scores visibly lower and the gate has something to catch.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from tests import fixtures
from tests.cli_helpers import assert_bad_input, cli

SEQ_LEN, QUERY_LEN, DOC_STRIDE = 64, 24, 32
N_QUESTIONS = 12


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import tensorflow as tf
    import tf_keras

    from bert_qa import export, squad_data
    from bert_qa.spec import BertQaSpec

    root = tmp_path_factory.mktemp("gate")
    encoder = fixtures.make_tiny_tf2_encoder(str(root / "encoder"))
    articles = fixtures.squad_subset("new_wiki_train.json", N_QUESTIONS, first_answer=True)
    questions = squad_data.read_questions(fixtures.write_squad(str(root / "all.json"), articles))[:N_QUESTIONS]
    ids = {q.id for q in questions}
    kept = [dict(a, paragraphs=[dict(p, qas=[qa for qa in p["qas"] if qa["id"] in ids])
                                for p in a["paragraphs"]]) for a in articles]
    squad_path = fixtures.write_squad(str(root / "questions.json"), kept)

    def build(seed):
        tf_keras.utils.set_random_seed(seed)
        spec = BertQaSpec(uri=encoder, seq_len=SEQ_LEN, query_len=QUERY_LEN, doc_stride=DOC_STRIDE,
                          distribution_strategy="off", model_dir=str(root / f"model_dir{seed}"))
        return spec, spec.create_model()

    spec, model = build(0)
    examples, _ = squad_data.to_squad_examples(squad_data.read_questions(squad_path), True)
    feats = []
    spec.convert_examples_to_features(examples, True, lambda f, is_padding=False: is_padding or feats.append(f),
                                      batch_size=None)
    x = [np.array([getattr(f, n) for f in feats], np.int32) for n in ("input_ids", "input_mask", "segment_ids")]
    y = [np.array([f.start_position for f in feats]), np.array([f.end_position for f in feats])]
    model.compile(optimizer=tf_keras.optimizers.Adam(3e-3),
                  loss=[tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)] * 2)
    model.fit(x, y, epochs=150, batch_size=len(feats), verbose=0)
    saved = export.export_saved_model(model, str(root / "saved_model"), spec=spec)
    # The same architecture untrained: what a broken conversion would compute instead.
    untrained_spec, untrained_model = build(1)
    untrained = export.export_saved_model(untrained_model, str(root / "untrained"), spec=untrained_spec)
    del tf
    return dict(root=root, saved=saved, untrained=untrained, squad_path=squad_path)


@pytest.mark.parametrize("count", ["0", "-5"])
def test_calibration_count_below_one_is_refused_before_converting(trained, tmp_path, capsys, count):
    out = tmp_path / "out"
    assert_bad_input(["export", "--saved-model", trained["saved"], "--output-dir", str(out),
                      "--quantization", "int8", "--representative-data", trained["squad_path"],
                      "--num-calibration", count], capsys,
                     f"--num-calibration={count}", ">= 1")
    assert not out.exists() or not os.listdir(out)


def test_the_calibration_windows_used_are_reported(trained, tmp_path, capsys):
    status, output = cli(["export", "--saved-model", trained["saved"], "--output-dir", str(tmp_path),
                          "--quantization", "int8", "--representative-data", trained["squad_path"],
                          "--num-calibration", "100000"], capsys)
    assert status == 0, output
    from bert_qa.export.calibration import features_from_squad
    from bert_qa.export.tflite import saved_model_info

    vocab = saved_model_info(trained["saved"])["vocab_file"]
    windows = len(features_from_squad(trained["squad_path"], vocab, True, SEQ_LEN, QUERY_LEN, DOC_STRIDE,
                                      None)["input_word_ids"])
    assert windows < 100000
    assert (f"Calibrating int8 on {windows} windows from {trained['squad_path']} (asked for 100000; "
            f"the file has no more)") in output
    assert "were not scored" in output  # no --eval-data: said so


def _scores(output):
    """{variant: (EM, F1)} from the score lines."""
    rows = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) > 4 and parts[1] == "EM" and parts[3] == "F1":
            rows[parts[0]] = (float(parts[2]), float(parts[4]))
    return rows


def test_variants_are_scored_next_to_float(trained, tmp_path, capsys):
    status, output = cli(["export", "--saved-model", trained["saved"], "--output-dir", str(tmp_path),
                          "--quantization", "dynamic", "--eval-data", trained["squad_path"]], capsys)
    assert status == 0, output
    scores = _scores(output)
    assert set(scores) == {"float32", "dynamic"}, output
    assert scores["float32"][1] > 50, output  # trained: the gate has something to lose
    assert abs(scores["dynamic"][1] - scores["float32"][1]) <= 3.0, output
    assert f"{N_QUESTIONS} questions" in output and "limit: 3 F1 points" in output  # the pipeline's default
    assert os.listdir(tmp_path) == ["model_dynamic.tflite"]  # the float32 reference is not kept


@pytest.fixture
def broken_float16(trained, monkeypatch):
    """A planted bad quantization: "float16" converts the untrained model instead."""
    from bert_qa.export import tflite

    real = tflite.convert

    def convert(saved_model_dir, quantization="dynamic", *args, **kwargs):
        if quantization == "float16":
            saved_model_dir = trained["untrained"]
        return real(saved_model_dir, quantization, *args, **kwargs)

    monkeypatch.setattr(tflite, "convert", convert)


def test_a_variant_far_below_float_is_refused(trained, tmp_path, capsys, broken_float16):
    argv = ["export", "--saved-model", trained["saved"], "--output-dir", str(tmp_path),
            "--quantization", "float32,float16", "--eval-data", trained["squad_path"]]
    output = assert_bad_input(argv, capsys, "float16 (F1 ", "more than 3 F1 points below float32",
                              "deleted", "model_float16.tflite")
    scores = _scores(output)
    assert scores["float32"][1] - scores["float16"][1] > 3.0, output
    assert "REFUSED" in output
    assert os.listdir(tmp_path) == ["model_float32.tflite"]  # the refused file is not kept

    # --keep-refused: the same figures as a warning, exit 0, the file kept.
    status, output = cli(argv + ["--keep-refused"], capsys)
    assert status == 0, output
    assert "warning: float16 (F1 " in output and "do not ship them" in output
    assert sorted(os.listdir(tmp_path)) == ["model_float16.tflite", "model_float32.tflite"]


def test_the_threshold_is_a_parameter(trained, tmp_path, capsys, broken_float16):
    """A limit above the planted drop lets the same variant through: the refusal is the threshold's."""
    status, output = cli(["export", "--saved-model", trained["saved"], "--output-dir", str(tmp_path),
                          "--quantization", "float16", "--eval-data", trained["squad_path"],
                          "--max-f1-drop", "100"], capsys)
    assert status == 0, output
    assert "limit: 100 F1 points" in output
    assert_bad_input(["export", "--saved-model", trained["saved"], "--output-dir", str(tmp_path),
                      "--quantization", "float16", "--eval-data", trained["squad_path"],
                      "--max-f1-drop", "-1"], capsys, "--max-f1-drop")
    assert_bad_input(["export", "--saved-model", trained["saved"], "--output-dir", str(tmp_path),
                      "--quantization", "float16", "--eval-data", trained["squad_path"],
                      "--eval-sample", "0"], capsys, "--eval-sample")
