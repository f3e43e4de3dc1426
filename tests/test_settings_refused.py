"""Issue 22: bad settings are refused before any work, with exit 1 naming the key and its range.

One case per bound of ``bert_qa.settings.check_settings`` (the one check), then each entry
point that uses it: ``bertqa run`` / ``--print-config`` / ``compile``, ``export``, ``predict``,
``import-checkpoint``, the library's ``BertQaSpec`` and windowing, the executors; and the
``score`` / ``validate`` / ``import-checkpoint`` fixes of the same issue.
"""
from __future__ import annotations

import json
import os
import stat
import time

import pytest

from bert_qa import _env  # noqa: F401
from bert_qa.errors import EXIT_BAD_INPUT, InputError
from bert_qa.settings import SettingError, check_settings
from bert_qa_cli.main import main
from tests import fixtures
from tests.cli_helpers import QUERY_LEN, SEQ_LEN, assert_bad_input, cli
from tests.fixtures import TINY_HF_CONFIG, tiny_hf_weights, write_hf_checkpoint


def _unwritable_dir(tmp_path) -> str:
    """A directory this process cannot create files in: mode 0555, or (as root, who writes
    there anyway) /sys, which refuses even root."""
    path = tmp_path / "read-only"
    path.mkdir()
    path.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    try:
        probe = path / "probe"
        probe.write_text("")
        probe.unlink()
    except OSError:
        return str(path)
    return "/sys"


# -- 1. the one check: a case per bound -------------------------------------------------------------

WINDOW = dict(seq_len=192, query_len=32, doc_stride=128)

BOUNDS = {
    # name: (values, check_settings kwargs, message that names the key and its range)
    "query_len below 1": ({**WINDOW, "query_len": 0}, {}, r"query_len=0: must be >= 1"),
    "seq_len not an integer": ({**WINDOW, "seq_len": "abc"}, {}, r"seq_len='abc': must be an integer"),
    "seq_len 0": ({**WINDOW, "seq_len": 0}, {"max_positions": 512},
                  r"seq_len=0: leaves no room .* must be >= 36 and <= 512"),
    "seq_len negative": ({**WINDOW, "seq_len": -1}, {"max_positions": 512}, r"seq_len=-1: .* must be >= 36"),
    "seq_len under the query": ({**WINDOW, "seq_len": 35}, {"max_positions": 512},
                                r"seq_len=35: leaves no room for the context after query_len=32 and 3 special "
                                r"tokens: it must be >= 36 and <= 512"),
    "seq_len over the position table": ({**WINDOW, "seq_len": 10000}, {"max_positions": 512},
                                        r"seq_len=10000: is longer than the encoder's position table: "
                                        r"it must be >= 36 and <= 512"),
    "doc_stride 0": ({**WINDOW, "doc_stride": 0}, {}, r"doc_stride=0: must be >= 1 \(.*0 never moves on"),
    "doc_stride negative": ({**WINDOW, "doc_stride": -128}, {}, r"doc_stride=-128: must be >= 1"),
    "distribution_strategy": ({"distribution_strategy": "warp"}, {},
                              r"distribution_strategy must be one of \('off', .*'tpu'\), not 'warp'"),
    "mixed_precision": ({"mixed_precision": "fp8"}, {}, r"mixed_precision must be one of .*'auto'\), not 'fp8'"),
    "optimizer_recipe": ({"optimizer_recipe": "sgd"}, {}, r"optimizer_recipe must be one of"),
    "quantization": ({"quantization": ["dynamic", "int4"]}, {}, r"'int4' is not a quantization; choose from"),
    "no quantization": ({"quantization": []}, {}, r"give one or more of"),
    "batch_size 0": ({"batch_size": 0}, {}, r"batch_size=0: must be an integer >= 1"),
    "predict_batch_size 0": ({"predict_batch_size": 0}, {}, r"predict_batch_size=0: must be an integer >= 1"),
    "epochs 0": ({"epochs": 0}, {}, r"epochs=0: must be a number > 0"),
    "steps_per_epoch negative": ({"steps_per_epoch": -1}, {}, r"steps_per_epoch=-1: must be an integer >= 0"),
    "top_k 0": ({"top_k": 0}, {}, r"top_k=0: must be an integer >= 1"),
    "max_answer_length 0": ({"max_answer_length": 0}, {}, r"max_answer_length=0: must be an integer >= 1"),
    "num_threads 0": ({"num_threads": 0}, {}, r"num_threads=0: must be an integer >= 1"),
    "batch over the features": ({"batch_size": 16}, {"train_features": 3},
                                r"batch_size=16: must be at most 3, the training features"),
}


@pytest.mark.parametrize("case", sorted(BOUNDS))
def test_one_case_per_bound(case):
    values, kwargs, message = BOUNDS[case]
    with pytest.raises(SettingError, match=message) as raised:
        check_settings(values, **kwargs)
    assert isinstance(raised.value, InputError) and isinstance(raised.value, ValueError)


def test_the_edges_of_each_bound_are_accepted():
    check_settings({"seq_len": 36, "query_len": 32, "doc_stride": 1}, max_positions=512)
    check_settings({"seq_len": 512, "query_len": 32, "doc_stride": 477}, max_positions=512)
    # A stride beyond the window's context tokens skips nothing (squad_lib advances by one
    # window): Model Maker's BertQaSpec(seq_len=128) has stride 128 for 61 context tokens.
    check_settings({"seq_len": 128, "query_len": 64, "doc_stride": 128}, max_positions=512)
    check_settings({"batch_size": 16, "steps_per_epoch": 5}, train_features=3)  # batches repeat the data
    check_settings({"distribution_strategy": "Mirrored", "quantization": "int8", "num_threads": None})


def test_keys_are_named_as_their_user_knows_them():
    with pytest.raises(SettingError, match=r"^--doc-stride=0: must be >= 1"):
        check_settings({**WINDOW, "doc_stride": 0}, {"doc_stride": "--doc-stride", "query_len": "--query-len"})
    with pytest.raises(SettingError, match=r"^seq_len=40: leaves no room for the context after --query-len=40"):
        check_settings({**WINDOW, "seq_len": 40, "query_len": 40}, {"doc_stride": "--doc-stride", "query_len": "--query-len"})


def test_output_paths(tmp_path):
    from bert_qa.settings import check_output_dir, check_output_file

    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(SettingError, match=r"output .*file: is a file, not a directory"):
        check_output_dir(str(a_file), "output")
    with pytest.raises(SettingError, match=r"output .*file/sub: .*file is a file, not a directory"):
        check_output_dir(str(a_file / "sub"), "output")
    with pytest.raises(SettingError, match=r"cannot write in"):
        check_output_dir(os.path.join(_unwritable_dir(tmp_path), "new", "dir"), "output")
    with pytest.raises(SettingError, match=r"is a directory; give a file name"):
        check_output_file(str(tmp_path), "--output")
    check_output_dir(str(tmp_path / "a" / "b"), "output")  # creatable: fine, and not created
    check_output_file(str(tmp_path / "c" / "pipeline.json"), "--output")
    check_output_dir("gs://bucket/path", "output")  # the object store's business
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


def test_max_positions_come_from_the_encoder(tmp_path):
    from bert_qa.settings import max_positions_of

    assert max_positions_of("") == max_positions_of("default") == 512  # all-MiniLM-L6-v2's config.json
    assert max_positions_of("https://tfhub.dev/x/1") == 512
    encoder = tmp_path / "encoder"
    encoder.mkdir()
    (encoder / "bert_encoder_config.json").write_text(json.dumps({"max_position_embeddings": 128}))
    assert max_positions_of(str(encoder)) == 128


# -- 2. `bertqa run` / `--print-config` / `compile`: exit 1 naming the key, no work -----------------

RUN_CASES = {
    "seq_len 0": (["--set", "model.seq_len=0"], "model.seq_len=0: leaves no room"),
    "seq_len negative": (["--seq-len", "-8"], "model.seq_len=-8"),
    "seq_len under the query": (["--set", "model.seq_len=35"], "model.seq_len=35: leaves no room for the context "
                                                               "after model.query_len=32"),
    "seq_len over the encoder": (["--set", "model.seq_len=10000"], "<= 512 (the encoder's position table"),
    "seq_len not a number": (["--seq-len", "abc"], "model.seq_len: expected an integer, got 'abc'"),
    "doc_stride 0": (["--set", "model.doc_stride=0"], "model.doc_stride=0: must be >= 1"),
    "mixed_precision": (["--set", "model.mixed_precision=fp8"], "model.mixed_precision must be one of"),
    "distribution_strategy": (["--set", "model.distribution_strategy=warp"],
                              "model.distribution_strategy must be one of"),
    "epochs 0": (["--epochs", "0"], "train.epochs=0.0: must be a number > 0"),
    "epochs not a number": (["--epochs", "two"], "train.epochs: expected a number, got 'two'"),
    "batch 0": (["--batch-size", "0"], "train.batch_size=0: must be an integer >= 1"),
    "quantization": (["--set", "export.variants=[dynamic, int4]"], "export.variants"),
    "extra spec arg": (["--set", "model.extra_spec_args={default_batch_size: 0}"],
                       "model.extra_spec_args.default_batch_size=0: must be an integer >= 1"),
    "answer length": (["--set", "evaluation.max_answer_length=0"], "evaluation.max_answer_length=0"),
}


@pytest.mark.parametrize("case", sorted(RUN_CASES))
def test_run_print_config_refuses(case, capsys):
    flags, message = RUN_CASES[case]
    assert_bad_input(["run", "--print-config", *flags], capsys, message)


def test_run_accepts_what_works(capsys):
    """The edges, and a stride beyond the window (--seq-len 128 keeps doc_stride 128 for 93
    context tokens: windows without overlap, nothing skipped)."""
    for flags in (["--seq-len", "128"], ["--set", "model.seq_len=36"], ["--set", "model.seq_len=512"],
                  ["--set", "model.doc_stride=1"], ["--epochs", "1", "--batch-size", "1"]):
        status, output = cli(["run", "--print-config", *flags], capsys)
        assert status == 0, (flags, output)


def test_run_refuses_before_any_work(tmp_path, capsys):
    """Once an endless loop (seq_len 0 or negative, doc_stride 0), or a failure (exit 3) 20 s
    into the trainer (fp8, warp, a window without room for the context, beyond 512 positions)."""
    out = tmp_path / "out"
    for flags, message in ((["--set", "model.seq_len=0"], "model.seq_len=0: leaves no room"),
                           (["--seq-len", "-8"], "model.seq_len=-8"),
                           (["--set", "model.doc_stride=0"], "model.doc_stride=0: must be >= 1"),
                           (["--set", "model.mixed_precision=fp8"], "model.mixed_precision must be one of"),
                           (["--set", "model.distribution_strategy=warp"],
                            "model.distribution_strategy must be one of"),
                           (["--set", "model.seq_len=35"], "model.seq_len=35: leaves no room for the context"),
                           (["--set", "model.seq_len=10000"], "<= 512 (the encoder's position table")):
        start = time.time()
        assert_bad_input(["run", "--output", str(out), *flags], capsys, message)
        assert time.time() - start < 30 and not out.exists()


def test_compile_refuses_its_settings_and_output(tmp_path, capsys):
    base = ["compile", "--pipeline-root", "gs://bucket/root", "--image", "image"]
    assert_bad_input([*base, "--seq-len", "0", "--output", str(tmp_path / "p.json")], capsys,
                     "model.seq_len=0: leaves no room")
    assert_bad_input([*base, "--output", str(tmp_path)], capsys, "--output", "is a directory")
    assert_bad_input([*base, "--output", os.path.join(_unwritable_dir(tmp_path), "p.json")], capsys,
                     "--output", "cannot write in")
    assert not (tmp_path / "p.json").exists()


def test_run_refuses_an_output_it_cannot_write(tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert_bad_input(["run", "--output", str(a_file)], capsys, "output", "is a file, not a directory")
    assert_bad_input(["run", "--output", os.path.join(_unwritable_dir(tmp_path), "run")], capsys,
                     "output", "cannot write in")


def test_run_refuses_a_batch_larger_than_the_training_features(tmp_path, capsys):
    """3 training questions, batch 16: an epoch of 0 steps, found only in the trainer before."""
    article = fixtures.new_wiki_articles()[0]
    paragraph = dict(article["paragraphs"][0], qas=article["paragraphs"][0]["qas"][:3])
    train = fixtures.write_squad(str(tmp_path / "three.json"), [{"title": article["title"],
                                                                 "paragraphs": [paragraph]}])
    out = tmp_path / "out"
    assert_bad_input(["run", "--output", str(out), "--train", train, "--batch-size", "16"], capsys,
                     "train.batch_size=16: must be at most 3", "3 questions in data.train")
    assert not out.exists()
    status, output = cli(["run", "--print-config", "--train", train, "--batch-size", "3"], capsys)
    assert status == 0, output
    status, output = cli(["run", "--print-config", "--train", train, "--set", "train.steps_per_epoch=2"], capsys)
    assert status == 0, output  # the batches repeat the data: a batch of 16 fills


# -- 3. the library: BertQaSpec and the windowing -------------------------------------------------

def test_spec_refuses_impossible_values_and_keeps_model_maker_defaults():
    from bert_qa import BertQaSpec, MobileBertQaSpec

    for kwargs, message in (({"seq_len": 0}, "seq_len=0: leaves no room"),
                            ({"seq_len": 1024}, "<= 512"),
                            ({"doc_stride": 0}, "doc_stride=0: must be >= 1"),
                            ({"query_len": 0}, "query_len=0"),
                            ({"mixed_precision": "fp8"}, "mixed_precision must be one of"),
                            ({"distribution_strategy": "warp"}, "distribution_strategy must be one of"),
                            ({"default_batch_size": 0}, "default_batch_size=0")):
        with pytest.raises(SettingError, match=message):
            BertQaSpec(**{"distribution_strategy": "off", **kwargs})
    # Model Maker accepts these, and so do we: a stride beyond the window (61 context tokens).
    assert BertQaSpec(seq_len=128, distribution_strategy="off").doc_stride == 128
    assert MobileBertQaSpec().seq_len == 384


def test_spec_bound_is_the_encoders_recorded_table(tmp_path):
    from bert_qa import BertQaSpec

    encoder = fixtures.make_tiny_tf2_encoder(str(tmp_path / "encoder"), max_position_embeddings=64)
    BertQaSpec(uri=encoder, seq_len=64, query_len=16, doc_stride=32, distribution_strategy="off")
    with pytest.raises(SettingError, match=r"seq_len=96: is longer than the encoder's position table: .*<= 64"):
        BertQaSpec(uri=encoder, seq_len=96, query_len=16, doc_stride=32, distribution_strategy="off")


def _examples_and_tokenizer(tmp_path, words=("[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "sat", "?")):
    from bert_qa import squad_data
    from bert_qa.tokenization import CachedFullTokenizer

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(words) + "\n", encoding="utf-8")
    question = squad_data.Question(id="q", title="", context=" ".join(["the cat sat"] * 100),
                                   question="the cat ?", answer_texts=(), answer_starts=())
    examples, _ = squad_data.to_squad_examples([question], is_training=False)
    return examples, CachedFullTokenizer(str(vocab), True)


@pytest.mark.parametrize("seq_len,query_len,doc_stride,message", [
    (32, 8, 0, r"doc_stride=0: must be >= 1"),
    (0, 8, 16, r"max_seq_length=0: leaves no room for the context after max_query_length=8"),
    (-4, 8, 16, r"max_seq_length=-4"),
    (32, 0, 16, r"max_query_length=0: must be >= 1"),
])
def test_windowing_cannot_run_away(tmp_path, seq_len, query_len, doc_stride, message):
    """squad_lib (and our windowing before) looped appending windows until memory ran out."""
    from bert_qa import windowing

    examples, tokenizer = _examples_and_tokenizer(tmp_path)
    start = time.time()
    with pytest.raises(SettingError, match=message):
        windowing.convert_examples_to_features(examples, tokenizer, seq_len, doc_stride, query_len, False,
                                               lambda feature, is_padding=False: None, batch_size=8)
    assert time.time() - start < 5
    with pytest.raises(ValueError, match="both must be >= 1"):
        windowing._doc_spans(300, 10, 0)
    with pytest.raises(ValueError, match="both must be >= 1"):
        windowing._doc_spans(300, -5, 10)


def test_windowing_refuses_a_vocabulary_without_cls(tmp_path):
    from bert_qa import windowing

    examples, tokenizer = _examples_and_tokenizer(tmp_path, words=("[PAD]", "[UNK]", "[SEP]", "the", "cat"))
    with pytest.raises(InputError, match=r"has no \[CLS\]: not a BERT WordPiece vocabulary"):
        windowing.convert_examples_to_features(examples, tokenizer, 32, 8, 8, False,
                                               lambda feature, is_padding=False: None, batch_size=8)


# -- 4. the executors -------------------------------------------------------------------------------

def test_feature_windowing_executor_refuses_before_reading(tmp_path):
    from tfx.dsl.components.base import base_beam_executor
    from tfx.types import standard_artifacts

    from bert_qa_pipeline.components.feature_windowing import executor

    examples, features = standard_artifacts.Examples(), standard_artifacts.Examples()
    examples.uri, features.uri = str(tmp_path / "nowhere"), str(tmp_path / "features")
    examples.split_names = '["train"]'
    properties = {"encoder_uri": "default", "do_lower_case": 1, "seq_len": 64, "query_len": 16,
                  "doc_stride": 0, "training_splits": '["train"]', "version_2_with_negative": 0,
                  "multi_answer": "first", "num_shards": 0}
    run = executor.Executor(base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=[])).Do
    with pytest.raises(SettingError, match=r"model.doc_stride \(FeatureWindowing doc_stride\)=0: must be >= 1"):
        run({"examples": [examples]}, {"features": [features]}, properties)
    with pytest.raises(SettingError, match=r"seq_len\)=600: is longer .*<= 512"):
        run({"examples": [examples]}, {"features": [features]}, {**properties, "seq_len": 600, "doc_stride": 32})
    assert not features.uri or not os.path.exists(features.uri)


def test_trainer_executor_refuses_a_batch_larger_than_the_features(tmp_path):
    """Once a ValueError 20 s into the step (exit 3); the compiled pipeline's runtime
    parameters (epochs, batch_size) arrive here unchecked."""
    from tfx.types import standard_artifacts

    from bert_qa_pipeline.components.qa_trainer import executor

    features = standard_artifacts.Examples()
    features.uri = str(tmp_path / "features")
    features.split_names = '["train"]'
    for name, value in (("seq_len", 64), ("query_len", 16), ("doc_stride", 32), ("do_lower_case", 1),
                        ("num_features_train", 3)):
        features.set_int_custom_property(name, value)
    model, model_run = standard_artifacts.Model(), standard_artifacts.ModelRun()
    model.uri, model_run.uri = str(tmp_path / "model"), str(tmp_path / "model_run")
    properties = {"spec": "BertQaSpec", "spec_args": json.dumps({"uri": "/nonexistent", "distribution_strategy": "off"}),
                  "epochs": 1, "batch_size": 16, "steps_per_epoch": 0, "shuffle": 1, "seed": 7,
                  "train_split": "train", "checkpoint_root": str(tmp_path / "resume")}
    do = executor.Executor().Do
    with pytest.raises(SettingError, match=r"train.batch_size \(batch_size\)=16: must be at most 3, the training "
                                           r"features of the 'train' split"):
        do({"features": [features]}, {"model": [model], "model_run": [model_run]}, properties)
    with pytest.raises(SettingError, match=r"train.epochs \(epochs\)=0.0: must be a number > 0"):
        do({"features": [features]}, {"model": [model], "model_run": [model_run]}, {**properties, "epochs": 0})
    with pytest.raises(SettingError, match=r"train.epochs \(epochs\)=0.1: 0.1 x 3 steps a pass is less than one step"):
        do({"features": [features]}, {"model": [model], "model_run": [model_run]},
           {**properties, "epochs": 0.1, "batch_size": 1})
    spec_args = json.dumps({"uri": "/nonexistent", "distribution_strategy": "warp"})
    with pytest.raises(SettingError, match="distribution_strategy must be one of"):
        do({"features": [features]}, {"model": [model], "model_run": [model_run]},
           {**properties, "spec_args": spec_args})
    assert not os.path.exists(model.uri)


# -- 5. `bertqa export` -----------------------------------------------------------------------------

def test_export_refuses_its_settings_and_output_before_converting(tiny_tflite, tmp_path, capsys):
    saved = tiny_tflite["saved"]
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    start = time.time()
    assert_bad_input(["export", "--saved-model", saved, "--output-dir", str(a_file)], capsys,
                     "--output-dir", "is a file, not a directory")
    assert_bad_input(["export", "--saved-model", saved, "--output-dir",
                      os.path.join(_unwritable_dir(tmp_path), "out")], capsys, "--output-dir", "cannot write in")
    out = str(tmp_path / "out")
    assert_bad_input(["export", "--saved-model", saved, "--output-dir", out, "--quantization", "int4"], capsys,
                     "--quantization", "'int4' is not a quantization; choose from")
    assert_bad_input(["export", "--saved-model", saved, "--output-dir", out, "--doc-stride", "0"], capsys,
                     "--doc-stride=0: must be >= 1")
    assert_bad_input(["export", "--saved-model", saved, "--output-dir", out, "--query-len", str(SEQ_LEN)],
                     capsys, f"seq_len={SEQ_LEN}: leaves no room for the context after --query-len={SEQ_LEN}")
    assert_bad_input(["export", "--saved-model", saved, "--output-dir", out, "--doc-stride", "x"], capsys,
                     "--doc-stride='x': must be an integer")
    assert time.time() - start < 60 and not os.path.exists(out)


# -- 6. `bertqa predict` ----------------------------------------------------------------------------

def _predict(tiny, tmp_path, *extra, question="who sat ?"):
    context = tmp_path / "context.txt"
    context.write_text("the cat sat on the mat", encoding="utf-8")
    return ["predict", "--model", str(tiny["path"]), "--context-file", str(context), "--question", question, *extra]


@pytest.mark.parametrize("extra,question,message", [
    ((), "", "--question: the question is empty"),
    ((), "   \t", "--question: the question is empty"),
    ((), "\u200b", "--question: the question has no tokens"),
    (("--top-k", "-3"), "who sat ?", "--top-k=-3: must be an integer >= 1"),
    (("--top-k", "0"), "who sat ?", "--top-k=0: must be an integer >= 1"),
    (("--top-k", "abc"), "who sat ?", "--top-k='abc': must be an integer"),
    (("--max-answer-length", "0"), "who sat ?", "--max-answer-length=0: must be an integer >= 1"),
    (("--threads", "0"), "who sat ?", "--threads=0: must be an integer >= 1"),
])
def test_predict_refuses_nonsense_settings(tiny_tflite, tmp_path, capsys, extra, question, message):
    output = assert_bad_input(_predict(tiny_tflite, tmp_path, *extra, question=question), capsys, message)
    assert "corrupt" not in output and "Q:" not in output


def test_predict_says_when_it_truncates_the_question(tiny_tflite, tmp_path, capsys):
    long_question = "who sat on the mat the cat sat on the mat ?"  # 12 tokens, query_len 8
    status, output = cli(_predict(tiny_tflite, tmp_path, "--top-k", "2", question=long_question), capsys)
    assert status == 0, output
    assert (f"bertqa predict: warning: --question has 12 tokens, more than the model's query_len {QUERY_LEN}: "
            f"it was truncated to its first {QUERY_LEN} tokens") in output
    assert len([line for line in output.splitlines() if "probability" in line]) == 2
    status, output = cli(_predict(tiny_tflite, tmp_path, question="who sat ?"), capsys)
    assert status == 0 and "warning" not in output


def test_library_answerer_refuses_and_warns(tiny_tflite):
    from bert_qa.answering import QuestionTruncatedWarning, TfliteQuestionAnswerer

    with pytest.raises(SettingError, match="num_threads=0"):
        TfliteQuestionAnswerer(tiny_tflite["path"], num_threads=0)
    answerer = TfliteQuestionAnswerer(tiny_tflite["path"])
    for kwargs, message in (({"top_k": -3}, "top_k=-3"), ({"max_answer_length": 0}, "max_answer_length=0")):
        with pytest.raises(SettingError, match=message):
            answerer.answer("the cat sat", "who sat ?", **kwargs)
    with pytest.raises(InputError, match="the question is empty"):
        answerer.answer("the cat sat", "  ")
    with pytest.warns(QuestionTruncatedWarning, match="has 12 tokens.*truncated to its first 8 tokens"):
        answerer.answer("the cat sat", "who sat on the mat the cat sat on the mat ?")


# -- 7. `bertqa score` ------------------------------------------------------------------------------

def _write(tmp_path, name, value) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(value), encoding="utf-8")
    return str(path)


def _v2_data():
    qas = [{"id": "a", "question": "Where?", "answers": [{"text": "Paris", "answer_start": 0}]},
           {"id": "b", "question": "Why?", "is_impossible": True, "answers": []}]
    return {"version": "2.0", "data": [{"title": "t", "paragraphs": [{"context": "Paris is in France.",
                                                                     "qas": qas}]}]}


def test_score_ignores_prediction_ids_not_in_the_data_as_the_official_scripts_do(tmp_path, capsys):
    """v2.0 without --na-prob: an extra id was a KeyError (exit 3) in Model Garden's copy of the
    official script; the official v1.1 and v2.0 scripts score the data's questions only."""
    def score(data, predictions):
        status = main(["score", "--data", data, "--predictions", predictions])
        captured = capsys.readouterr()
        assert status == 0 and "Traceback" not in captured.err, captured.err
        return json.loads(captured.out), captured.err

    data = _write(tmp_path, "d.json", _v2_data())
    plain = _write(tmp_path, "p.json", {"a": "Paris", "b": ""})
    extra = _write(tmp_path, "p_extra.json", {"a": "Paris", "b": "", "zzz": "London"})
    expected, _ = score(data, plain)
    metrics, warning = score(data, extra)
    assert metrics == expected and metrics["exact"] == 100.0 and metrics["total"] == 2
    assert "warning: 1 prediction(s)" in warning and "['zzz']" in warning and "ignored" in warning
    answerable = _v2_data()["data"][0]["paragraphs"][0]["qas"][0]
    v1 = _write(tmp_path, "v1.json", {"data": [{"paragraphs": [{"context": "Paris", "qas": [answerable]}]}]})
    metrics, warning = score(v1, extra)
    assert metrics["exact_match"] == 1.0 and "warning: 2 prediction(s)" in warning


def test_score_messages_name_the_flag_and_the_missing_id(tmp_path, capsys):
    data = _write(tmp_path, "d.json", _v2_data())
    predictions = _write(tmp_path, "p.json", {"a": "Paris"})
    assert_bad_input(["score", "--data", data, "--predictions", predictions], capsys,
                     "pass --allow-missing")
    both = _write(tmp_path, "p2.json", {"a": "Paris", "b": ""})
    na = _write(tmp_path, "na.json", {"a": 0.1})
    output = assert_bad_input(["score", "--data", data, "--predictions", both, "--na-prob", na], capsys,
                              "question b has no null odds", "1 of 2 questions are missing")
    assert "not None" not in output


# -- 8. `bertqa import-checkpoint` and `bertqa validate` -----------------------------------------------

def test_import_checkpoint_refuses_a_vocab_without_cls_and_an_unwritable_export(tmp_path, capsys):
    checkpoint = write_hf_checkpoint(tmp_path / "tiny-uncased", tiny_hf_weights(TINY_HF_CONFIG))
    vocab = os.path.join(checkpoint, "vocab.txt")
    with open(vocab, encoding="utf-8") as f:
        lines = f.read().splitlines()
    with open(vocab, "w", encoding="utf-8") as f:
        f.write("\n".join(line for line in lines if line != "[CLS]") + "\n")
    assert_bad_input(["import-checkpoint", checkpoint, str(tmp_path / "out")], capsys, vocab,
                     "has no [CLS] token: not a BERT WordPiece vocabulary")
    assert not (tmp_path / "out").exists()
    with open(vocab, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert_bad_input(["import-checkpoint", checkpoint, str(a_file)], capsys, "is a file, not a directory")
    start = time.time()
    assert_bad_input(["import-checkpoint", checkpoint, os.path.join(_unwritable_dir(tmp_path), "enc")], capsys,
                     "export directory", "cannot write in")
    assert time.time() - start < 10


def test_validate_refuses_a_nul_in_a_question_and_names_duplicate_keys(tmp_path, capsys):
    text = ('{"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": "Paris is in France.", "qas": ['
            '{"id": "nul", "question": "Which\\u0000 country?", "answers": [{"text": "France", "answer_start": 12}]},'
            '{"id": "blank", "question": "\\u200b\\u0000", "answers": [{"text": "France", "answer_start": 12}]},'
            '{"id": "dup", "question": "Which country?",'
            ' "answers": [{"text": "France", "answer_start": 12, "answer_start": 0}]}]}]}]}')
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    status, output = cli(["validate", str(path)], capsys)
    assert status == EXIT_BAD_INPUT, output
    assert "question 'nul': 'question' has a NUL character (U+0000) at offset 5" in output
    assert "question 'blank': 'question' has a NUL character" in output
    assert "question 'dup': duplicate JSON key 'answer_start' (2 times): the last value, 0, is used" in output
    assert ("is not at answer_start 0 (context there: 'Paris '); the text occurs at 12; note: duplicate JSON key "
            "'answer_start' in this answer (2 times: the last, 0, is used; before it: 12)") in output
