"""Train and evaluate through Model Maker's task API; metrics equal the official scorers."""
import glob
import json
import os

import numpy as np
import pytest
from official.nlp.tools import squad_evaluate_v1_1, squad_evaluate_v2_0

from bert_qa import BertQaSpec, DataLoader, question_answer
from tests import fixtures


@pytest.fixture(scope="module")
def spec_and_data(tiny_encoder, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train_eval")
    train_file = fixtures.write_squad(str(tmp / "train.json"),
                                      fixtures.squad_subset("english_tydiqa_train.json", 64, True))
    spec = BertQaSpec(uri=tiny_encoder, model_dir=str(tmp / "model_dir"), seq_len=128, query_len=32,
                      doc_stride=64, learning_rate=1e-3, distribution_strategy="off", default_batch_size=8)
    train = DataLoader.from_squad(train_file, spec, is_training=True, cache_dir=str(tmp / "cache"))
    evaluation = DataLoader.from_squad(train_file, spec, is_training=False, cache_dir=str(tmp / "cache"))
    return spec, train, evaluation, train_file, tmp


def test_fit_memorises_training_questions_and_scores_officially(spec_and_data):
    spec, train, evaluation, train_file, tmp = spec_and_data
    untrained = question_answer.create(train, spec, do_train=False)
    before = untrained.evaluate(evaluation)
    model = question_answer.create(train, spec, epochs=12, batch_size=8)
    losses = model.model.history.history["loss"]
    assert losses[-1] < 0.7 * losses[0]
    out_dir = str(tmp / "eval_out")
    after = model.evaluate(evaluation, output_dir=out_dir)
    # The model has seen these questions: it must do clearly better than its untrained self.
    assert after["f1"] > before["f1"] + 0.15, (before, after)
    predictions = json.load(open(os.path.join(out_dir, "predictions.json")))
    nbest = json.load(open(os.path.join(out_dir, "nbest_predictions.json")))
    dataset = json.load(open(train_file))["data"]
    qids = {qa["id"] for a in dataset for p in a["paragraphs"] for qa in p["qas"]}
    assert set(predictions) == qids == set(nbest)
    assert all(1 <= len(v) <= 20 for v in nbest.values())
    official = squad_evaluate_v1_1.evaluate(dataset, predictions)
    assert abs(after["exact_match"] - official["exact_match"]) < 1e-9
    assert abs(after["f1"] - official["final_f1"]) < 1e-9
    # The exported .tflite (float32, Task Library metadata) scores the same through predict_tflite.
    from bert_qa.export import QuantizationConfig, read_metadata
    written = model.export(str(tmp / "export"), quantization_config=QuantizationConfig.for_float32())
    assert read_metadata(written["tflite"]).do_lower_case is True
    lite = model.evaluate_tflite(written["tflite"], evaluation)
    assert abs(lite["f1"] - after["f1"]) < 0.01 and abs(lite["exact_match"] - after["exact_match"]) < 0.02
    assert open(written["vocab"]).read().splitlines()[101] == "[CLS]"
    # Model Maker's model_dir contract, plus checkpoints per epoch and TensorBoard logs.
    assert len(glob.glob(os.path.join(spec.model_dir, "checkpoints", "epoch-*.index"))) == 12
    assert glob.glob(os.path.join(spec.model_dir, "tensorboard", "train", "events.out.tfevents.*"))


def test_feature_cache_is_reused(spec_and_data):
    spec, train, _, train_file, tmp = spec_and_data
    again = DataLoader.from_squad(train_file, spec, is_training=True, cache_dir=str(tmp / "cache"))
    assert again.tfrecord_file == train.tfrecord_file and again.size == train.size
    assert again.features is None  # served from the cache
    assert train.num_questions == len(train.examples) + len(train.skipped)


def test_v2_null_odds_and_official_v2_metrics(tiny_encoder, tmp_path):
    data_file = fixtures.write_squad(str(tmp_path / "dev.json"),
                                     fixtures.squad_subset("english_tydiqa_dev.json", 40, negatives=True),
                                     version="2.0")
    spec = BertQaSpec(uri=tiny_encoder, seq_len=128, query_len=32, doc_stride=64, distribution_strategy="off")
    data = DataLoader.from_squad(data_file, spec, is_training=False, version_2_with_negative=True,
                                 cache_dir=str(tmp_path / "cache"))
    model = question_answer.create(data, spec, do_train=False)
    # Pick the threshold from a first pass so that it splits the questions: both branches are exercised.
    model.evaluate(data, output_dir=str(tmp_path / "first"))
    first_odds = sorted(json.load(open(tmp_path / "first" / "null_odds.json")).values())
    threshold = float(np.median(first_odds))
    metrics = model.evaluate(data, output_dir=str(tmp_path / "out"), null_score_diff_threshold=threshold)
    predictions = json.load(open(tmp_path / "out" / "predictions.json"))
    null_odds = json.load(open(tmp_path / "out" / "null_odds.json"))
    assert set(predictions) == set(null_odds)
    official = squad_evaluate_v2_0.evaluate(json.load(open(data_file))["data"], predictions, null_odds)
    for key in ("exact", "f1", "HasAns_f1", "NoAns_f1", "final_f1"):
        assert abs(metrics[key] - official[key]) < 1e-9, key
    # The threshold is applied as squad_lib applies it: null-odds above it give an empty answer;
    # an empty answer with lower null-odds only when no n-best entry has any text (squad_lib then
    # records the null score itself as the odds).
    nbest = json.load(open(tmp_path / "out" / "nbest_predictions.json"))
    for q in predictions:
        if null_odds[q] > threshold:
            assert predictions[q] == "", q
        elif predictions[q] == "":
            assert not any(entry["text"] for entry in nbest[q]), q
        else:
            assert predictions[q] == next(e["text"] for e in nbest[q] if e["text"]), q
    assert any(predictions[q] for q in predictions) and any(not predictions[q] for q in predictions)


def test_a_fraction_of_a_pass_trains_the_same_model_as_one_epoch_of_as_many_steps(spec_and_data, tiny_encoder):
    """``epochs=1.5`` runs ceil(1.5) = 2 checkpointed Keras epochs (settings.training_schedule);
    the input is one repeated shuffled stream, so that split changes no batch: the weights equal
    those of a single epoch of all the steps, to the bit."""
    import tf_keras
    from bert_qa.settings import training_schedule

    _, train, _, _, tmp = spec_and_data
    per_pass = len(train) // 8
    epochs, steps = training_schedule(1.5, per_pass)
    assert (epochs, steps) == (2, int(1.5 * per_pass) // 2)
    weights = {}
    for name, kwargs in (("split", {"epochs": 1.5}), ("one", {"epochs": 1, "steps_per_epoch": 2 * steps})):
        spec = BertQaSpec(uri=tiny_encoder, model_dir=str(tmp / f"fraction_{name}"), seq_len=128, query_len=32,
                          doc_stride=64, learning_rate=1e-3, distribution_strategy="off")
        tf_keras.utils.set_random_seed(7)
        model = question_answer.create(train, spec, batch_size=8, shuffle=True, **kwargs)
        assert model.model.optimizer.iterations.numpy() == 2 * steps
        weights[name] = [w.numpy() for w in model.model.weights]
    assert len(glob.glob(os.path.join(str(tmp / "fraction_split"), "checkpoints", "epoch-*.index"))) == 2
    assert len(weights["split"]) == len(weights["one"])
    for a, b in zip(weights["split"], weights["one"]):
        np.testing.assert_array_equal(a, b)


def test_training_schedule_counts_passes_as_hugging_face_does():
    from bert_qa.settings import SettingError, check_settings, training_schedule

    assert training_schedule(2, 235) == (2, 235)          # Model Maker's count
    assert training_schedule(2.0, 235) == (2, 235)
    assert training_schedule(1.5, 235) == (2, 176)        # int(1.5 x 235) = 352 steps
    assert training_schedule(0.5, 235) == (1, 117)
    assert training_schedule(2.5, 235) == (3, 195)        # 587 rounded down to 3 x 195
    with pytest.raises(SettingError, match="less than one step"):
        training_schedule(0.01, 10)
    for bad in (0, -1, True, "2", float("nan"), float("inf")):
        with pytest.raises(SettingError, match="epochs"):
            check_settings({"epochs": bad})
    check_settings({"epochs": 1.5})
