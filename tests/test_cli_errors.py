"""Bad input gets exit status 1 and one line naming the file at fault, never a traceback.

Each test runs ``bert_qa_cli.main.main`` in-process on a broken file of one kind (a
configuration, a context, a .tflite model, a Hugging Face checkpoint, a SavedModel) and checks
the status, that the message names the file (and line/column or key where there is one) and
that no traceback was printed. The library-level counterparts (TF Hub failures, a corrupt
encoder SavedModel) are in tests/test_spec_encoders.py.
"""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from bert_qa import _env  # noqa: F401
from bert_qa.errors import EXIT_TOOL_FAILED, InputError
from tests.cli_helpers import assert_bad_input, cli
from tests.fixtures import TINY_HF_CONFIG, tiny_hf_weights, write_hf_checkpoint


# -- 1. configuration files (`bertqa run` / `bertqa compile`) ------------------------------------

BROKEN_CONFIGS = {
    # name: (file text, what the message must say besides the file name)
    "syntax.yaml": ("train:\n  epochs: [1, 2\n  batch_size: 3\n", ["line 3, column 13", "not valid YAML"]),
    "tab.yml": ("train:\n\tepochs: 2\n", ["line 2, column 1", "not valid YAML"]),
    "syntax.toml": ("[train]\nepochs = \n", ["line 2, column 10", "not valid TOML"]),
    "table.toml": ("[train\nepochs = 2\n", ["line 1", "not valid TOML"]),
    "list.yaml": ("- train\n- eval\n", ["top level must be a mapping", "list"]),
    "scalar.yaml": ("0\n", ["top level must be a mapping", "int 0"]),
    "unknown_key.yaml": ("train:\n  epoch: 3\n", ["train: unknown key(s) ['epoch']"]),
    "unknown_key.toml": ("[model]\nencodr = 'x'\n", ["model: unknown key(s) ['encodr']"]),
    "bad_type.yaml": ("train:\n  epochs: many\n", ["train.epochs: expected an integer"]),
    "data_list.yaml": ("data: [a.json]\n", ["data: expected a table/mapping"]),
    "data_paths.yaml": ("data:\n  train: [1, 2]\n", ["data.train: expected a path or a list of paths"]),
    "output.yaml": ("output: 5\n", ["output: expected a directory path"]),
    "keys.yaml": ("1: 2\n", ["keys must be names"]),
}


@pytest.mark.parametrize("command", ["run", "compile"])
@pytest.mark.parametrize("name", sorted(BROKEN_CONFIGS))
def test_broken_config_file(command, name, tmp_path, capsys):
    text, expected = BROKEN_CONFIGS[name]
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    argv = [command, "--config", str(path)]
    argv += ["--print-config"] if command == "run" else ["--pipeline-root", "gs://b/r", "--image", "i"]
    assert_bad_input(argv, capsys, path, *expected)


@pytest.mark.parametrize("command", ["run", "compile"])
def test_missing_and_non_utf8_config_file(command, tmp_path, capsys):
    extra = ["--print-config"] if command == "run" else ["--pipeline-root", "gs://b/r", "--image", "i"]
    missing = tmp_path / "nowhere.yaml"
    assert_bad_input([command, "--config", str(missing), *extra], capsys, missing, "not found")
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("name: ok\ndescription: caf\u00e9\n".encode("latin-1"))
    assert_bad_input([command, "--config", str(latin1), *extra], capsys, latin1, "line 2",
                     "not UTF-8")
    assert_bad_input([command, "--config", str(tmp_path), *extra], capsys, tmp_path, "is a directory")


def test_an_empty_config_file_is_all_defaults(tmp_path, capsys):
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing set\n", encoding="utf-8")
    status, output = cli(["run", "--config", str(empty), "--print-config"], capsys)
    assert status == 0 and json.loads(output)["train"]["epochs"] >= 1


# -- 2. `bertqa predict`: context files and .tflite models ----------------------------------------

# `tiny_tflite` (a real QA .tflite with Task Library metadata, and one without) is a module
# fixture of tests/conftest.py: test_settings_refused.py uses it too.


def _predict(model, context_file, question="who sat ?"):
    return ["predict", "--model", str(model), "--context-file", str(context_file),
            "--question", question]


def test_predict_answers_from_a_good_model(tiny_tflite, tmp_path, capsys):
    context = tmp_path / "context.txt"
    context.write_text("the cat sat on the mat", encoding="utf-8")
    status, output = cli(_predict(tiny_tflite["path"], context), capsys)
    assert status == 0 and output.startswith("Q: who sat ?"), output


def test_predict_context_file_missing_empty_or_not_utf8(tiny_tflite, tmp_path, capsys):
    model = tiny_tflite["path"]
    missing = tmp_path / "missing.txt"
    assert_bad_input(_predict(model, missing), capsys, missing, "not found")
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    assert_bad_input(_predict(model, empty), capsys, empty, "empty")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("the cat\nsat on the caf\u00e9 mat".encode("latin-1"))
    assert_bad_input(_predict(model, latin1), capsys, latin1, "not UTF-8", "line 2")
    assert_bad_input(_predict(model, tmp_path), capsys, tmp_path, "is a directory")


def test_predict_model_missing_corrupt_truncated_or_without_metadata(tiny_tflite, tmp_path, capsys):
    context = tmp_path / "context.txt"
    context.write_text("the cat sat on the mat", encoding="utf-8")
    with open(tiny_tflite["path"], "rb") as f:
        good = f.read()
    rng = np.random.default_rng(0)
    broken = {
        "random.tflite": (rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(), "not a valid TFLite model"),
        "half.tflite": (good[:len(good) // 2], "not a valid TFLite model"),
        # The flatbuffer is whole; the vocabulary packed at the end of the file is cut short.
        "tail.tflite": (good[:-10], "'vocab.txt'"),
        "empty.tflite": (b"", "not a valid TFLite model"),
    }
    for name, (content, reason) in broken.items():
        path = tmp_path / name
        path.write_bytes(content)
        assert_bad_input(_predict(path, context), capsys, path, reason)
    missing = tmp_path / "missing.tflite"
    assert_bad_input(_predict(missing, context), capsys, missing, "model file not found")
    assert_bad_input(_predict(tiny_tflite["bare"], context), capsys, tiny_tflite["bare"],
                     "has no TFLite metadata")


def test_predict_tool_failure_is_exit_3_not_blamed_on_the_input(tiny_tflite, tmp_path, capsys,
                                                               monkeypatch):
    from bert_qa import answering

    def broken(*args, **kwargs):
        raise RuntimeError("interpreter crashed")

    monkeypatch.setattr(answering.TfliteQuestionAnswerer, "answer", broken)
    context = tmp_path / "context.txt"
    context.write_text("the cat sat on the mat", encoding="utf-8")
    status, output = cli(_predict(tiny_tflite["path"], context), capsys)
    assert status == EXIT_TOOL_FAILED and "failed: RuntimeError: interpreter crashed" in output


# -- 3. `bertqa import-checkpoint`: Hugging Face checkpoints --------------------------------------

@pytest.fixture
def checkpoint(tmp_path):
    """A valid tiny uncased checkpoint directory to break one file of."""
    return write_hf_checkpoint(tmp_path / "tiny-uncased", tiny_hf_weights(TINY_HF_CONFIG))


def _import(checkpoint_dir, tmp_path):
    return ["import-checkpoint", str(checkpoint_dir), str(tmp_path / "out")]


def _write_config(checkpoint_dir, config) -> str:
    path = os.path.join(checkpoint_dir, "config.json")
    with open(path, "w", encoding="utf-8") as f:
        f.write(config if isinstance(config, str) else json.dumps(config))
    return path


BAD_CONFIGS = {
    "not_json": ('{"model_type": "bert",\n "hidden_size": 32,,}', "not valid JSON"),
    "a_list": ([TINY_HF_CONFIG], "must hold a JSON object"),
    "missing_hidden_size": ({k: v for k, v in TINY_HF_CONFIG.items() if k != "hidden_size"},
                            "missing key(s) ['hidden_size']"),
    "string_size": ({**TINY_HF_CONFIG, "hidden_size": "32"}, "hidden_size must be a positive integer"),
    "float_layers": ({**TINY_HF_CONFIG, "num_hidden_layers": 2.5},
                     "num_hidden_layers must be a positive integer"),
    "zero_heads": ({**TINY_HF_CONFIG, "num_attention_heads": 0},
                   "num_attention_heads must be a positive integer"),
    "indivisible_heads": ({**TINY_HF_CONFIG, "num_attention_heads": 3},
                          "hidden_size 32 is not divisible by num_attention_heads 3"),
    "bool_vocab": ({**TINY_HF_CONFIG, "vocab_size": True}, "vocab_size must be a positive integer"),
    "dropout": ({**TINY_HF_CONFIG, "hidden_dropout_prob": "0.1"},
                "hidden_dropout_prob must be a non-negative number"),
    "activation_type": ({**TINY_HF_CONFIG, "hidden_act": 5}, "hidden_act must be a string"),
    "activation": ({**TINY_HF_CONFIG, "hidden_act": "swishy"}, "hidden_act 'swishy'"),
    "layer_norm_eps": ({**TINY_HF_CONFIG, "layer_norm_eps": 1e-5}, "layer_norm_eps 1e-05 is not supported"),
    "model_type": ({**TINY_HF_CONFIG, "model_type": "roberta"}, "model_type 'roberta' is not BERT"),
}


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_import_checkpoint_malformed_config_json(name, checkpoint, tmp_path, capsys):
    config, reason = BAD_CONFIGS[name]
    path = _write_config(checkpoint, config)
    output = assert_bad_input(_import(checkpoint, tmp_path), capsys, path, reason)
    if name == "not_json":
        assert "line 2, column" in output
    assert not os.path.exists(tmp_path / "out")


def test_import_checkpoint_truncated_or_missing_safetensors(checkpoint, tmp_path, capsys):
    weights = os.path.join(checkpoint, "model.safetensors")
    size = os.path.getsize(weights)
    with open(weights, "r+b") as f:
        f.truncate(size // 2)
    assert_bad_input(_import(checkpoint, tmp_path), capsys, weights, "truncated or corrupt")
    with open(weights, "wb") as f:
        f.write(b"\x00" * 4)
    assert_bad_input(_import(checkpoint, tmp_path), capsys, weights, "not a readable safetensors file")
    os.remove(weights)
    assert_bad_input(_import(checkpoint, tmp_path), capsys, "No model.safetensors", checkpoint)
    assert not os.path.exists(tmp_path / "out")


def test_import_checkpoint_bad_tokenizer_config_and_vocab(checkpoint, tmp_path, capsys):
    tokenizer_config = os.path.join(checkpoint, "tokenizer_config.json")
    with open(tokenizer_config, "w", encoding="utf-8") as f:
        f.write("{do_lower_case: true}")
    assert_bad_input(_import(checkpoint, tmp_path), capsys, tokenizer_config, "not valid JSON")
    with open(tokenizer_config, "w", encoding="utf-8") as f:
        json.dump({"do_lower_case": "yes"}, f)
    assert_bad_input(_import(checkpoint, tmp_path), capsys, tokenizer_config, "true or false")
    os.remove(tokenizer_config)
    vocab = os.path.join(checkpoint, "vocab.txt")
    with open(vocab, "ab") as f:
        f.write("caf\u00e9\n".encode("latin-1"))
    assert_bad_input(_import(checkpoint, tmp_path), capsys, vocab, "not UTF-8")


# -- 4c. `bertqa export` and export_tflite: metadata is not optional by accident -------------------

def test_export_without_vocab_is_an_error_unless_asked(tiny_tflite, tmp_path, monkeypatch):
    from bert_qa.export import ExportInputError, export_tflite, read_metadata
    from bert_qa.export import metadata as qa_metadata

    target = tmp_path / "model.tflite"
    with pytest.raises(ValueError, match="no vocab_file.*metadata=False"):
        export_tflite(tiny_tflite["saved"], str(target), "float32")
    with pytest.raises(ExportInputError, match="vocabulary file not found: .*nowhere.txt"):
        export_tflite(tiny_tflite["saved"], str(target), "float32",
                      vocab_file=str(tmp_path / "nowhere.txt"))
    assert not os.listdir(tmp_path)  # nothing written, not even a partial file

    def failing(*args, **kwargs):
        raise RuntimeError("metadata writer failed")

    with monkeypatch.context() as patch:  # a failure to write the metadata is not a warning
        patch.setattr(qa_metadata, "add_metadata", failing)
        with pytest.raises(RuntimeError, match="metadata writer failed"):
            export_tflite(tiny_tflite["saved"], str(target), "float32",
                          vocab_file=tiny_tflite["vocab"])
    assert not os.listdir(tmp_path)
    # Asked for explicitly, a bare model is written (and says it has no metadata).
    export_tflite(tiny_tflite["saved"], str(target), "float32", metadata=False)
    with pytest.raises(InputError, match="has no TFLite metadata"):
        read_metadata(str(target))


def test_export_command_bad_saved_model_or_vocab(tiny_tflite, tmp_path, capsys):
    out = str(tmp_path / "out")
    missing = tmp_path / "no_saved_model"
    assert_bad_input(["export", "--saved-model", str(missing), "--output-dir", out], capsys,
                     missing, "not found")
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_tflite["saved"], corrupt)
    pb = corrupt / "saved_model.pb"
    pb.write_bytes(pb.read_bytes()[:len(pb.read_bytes()) // 2])
    assert_bad_input(["export", "--saved-model", str(corrupt), "--output-dir", out], capsys,
                     corrupt, "saved_model.pb is corrupt or truncated")
    not_a_model = tmp_path / "not_a_model"
    not_a_model.mkdir()
    assert_bad_input(["export", "--saved-model", str(not_a_model), "--output-dir", out], capsys,
                     not_a_model, "not a SavedModel")
    record = tmp_path / "bad_record"
    shutil.copytree(tiny_tflite["saved"], record)
    (record / "assets.extra" / "bert_qa_export.json").write_text("{not json", encoding="utf-8")
    assert_bad_input(["export", "--saved-model", str(record), "--output-dir", out], capsys,
                     "bert_qa_export.json is not valid JSON")
    nowhere = tmp_path / "nowhere.txt"
    assert_bad_input(["export", "--saved-model", tiny_tflite["saved"], "--output-dir", out,
                      "--vocab", str(nowhere)], capsys, nowhere, "not found")
    assert not os.path.exists(out)
