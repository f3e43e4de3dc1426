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
import re
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
    "bad_type.yaml": ("train:\n  epochs: many\n", ["train.epochs: expected a number"]),
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


# -- 5. `bertqa compile`: paths the cluster cannot read, refused at the command line -------------

COMPILE_REFUSALS = {
    # name: (flags, what the message must say)
    "local --train path": (["--train", "{tmp}/train.json"], ["data.train", "train.json' is a path on this machine"]),
    "gs:// train without a bucket": (["--train", "gs:///train.json"], ["data.train: 'gs:///train.json' names no bucket"]),
    "gs:// root without a bucket": (["--pipeline-root", "gs:///root"], ["--pipeline-root 'gs:///root' names no bucket"]),
    "http:// root (vertex)": (["--pipeline-root", "http://host/root"], ["'http://host/root' is not a gs:// URI"]),
    "http:// root (kfp)": (["--target", "kfp", "--pipeline-root", "http://host/root"],
                           ["--pipeline-root 'http://host/root'", "mounts only gs://, s3:// and minio://"]),
    "missing local encoder": (["--encoder", "/nonexistent/encoder"],
                              ["model.encoder: '/nonexistent/encoder' is a path on this machine"]),
    "empty --image": (["--image", ""], ["--image is empty"]),
}


@pytest.mark.parametrize("case", sorted(COMPILE_REFUSALS))
def test_compile_refuses_what_the_cluster_cannot_run(case, tmp_path, capsys):
    """Issue 22 case 6: exit 1 naming the flag or key, and nothing written."""
    flags, expected = COMPILE_REFUSALS[case]
    (tmp_path / "train.json").write_text("{}", encoding="utf-8")  # there, but not where the cluster is
    flags = [flag.format(tmp=tmp_path) for flag in flags]
    output = tmp_path / "pipeline.json"
    argv = ["compile", "--pipeline-root", "gs://bucket/root", "--image", "image", "--output", str(output), *flags]
    assert_bad_input(argv, capsys, *expected)
    assert not output.exists()


# -- 6. `bertqa submit` / `schedule`: every local check before credentials or network ------------

SPEC = {"pipelineInfo": {"name": "bert-qa"}, "schemaVersion": "2.1.0",
        "root": {"inputDefinitions": {"parameters": {"epochs": {"parameterType": "NUMBER_INTEGER",
                                                                "defaultValue": 2}}}}}


@pytest.fixture
def submission_files(tmp_path, monkeypatch):
    """A Vertex PipelineJob JSON, a Kubeflow PipelineSpec YAML and plain text under three names;
    credentials and the Kubeflow client fail loudly if a check lets a submission get that far."""
    import google.auth
    import yaml
    from google.auth.exceptions import DefaultCredentialsError

    from bert_qa_pipeline.kubeflow import kfp_submit

    calls = []

    def no_credentials(*args, **kwargs):
        calls.append("credentials")
        raise DefaultCredentialsError("not found")

    def no_client(*args, **kwargs):
        calls.append("kfp.Client")
        raise AssertionError("kfp.Client reached")

    monkeypatch.setattr(google.auth, "default", no_credentials)
    monkeypatch.setattr(kfp_submit, "_client", no_client)
    files = {"calls": calls}
    files["job"] = tmp_path / "job.json"
    files["job"].write_text(json.dumps({"displayName": "x", "pipelineSpec": SPEC}), encoding="utf-8")
    files["spec"] = tmp_path / "spec.yaml"
    files["spec"].write_text(yaml.safe_dump(SPEC), encoding="utf-8")
    for name in ("plain.json", "plain.yaml", "plain.txt"):
        files[name] = tmp_path / name
        files[name].write_text("hello world\n", encoding="utf-8")
    return files


VERTEX = ["--target", "vertex", "--project", "p", "--api-endpoint", "http://127.0.0.1:9"]
KFP = ["--target", "kfp", "--host", "http://127.0.0.1:9"]


@pytest.mark.parametrize("argv,compiled,expected", [
    (["submit", *VERTEX, "--param", "bogus=3"], "job",
     ["unknown pipeline parameter(s) bogus; the pipeline declares: epochs"]),
    (["submit", *VERTEX, "--param", "epochs=abc"], "job", ["pipeline parameter epochs is an integer; got 'abc'"]),
    (["submit", *VERTEX, "--param", "epochs"], "job", ["--param 'epochs' must look like name=value"]),
    (["submit", *VERTEX], "spec", ["is a Kubeflow PipelineSpec YAML (compile --target kfp); Vertex AI takes the "
                                   "PipelineJob JSON"]),
    (["submit", *VERTEX], "plain.json", ["is not JSON (line 1, column 1"]),
    (["submit", *VERTEX, "--labels", "team"], "job", ["--labels must look like k=v"]),
    (["submit", *KFP, "--param", "bogus=3"], "spec", ["unknown pipeline parameter(s) bogus"]),
    (["submit", *KFP], "job", ["is JSON: the Vertex PipelineJob of compile --target vertex"]),
    (["submit", *KFP], "plain.json", ["holds no pipeline spec (plain text ('hello world'))"]),
    (["submit", *KFP], "plain.yaml", ["holds no pipeline spec (plain text ('hello world'))"]),
    (["submit", *KFP], "plain.txt", ["holds no pipeline spec (plain text ('hello world'))"]),
    (["submit", *KFP], "missing.yaml", ["compiled pipeline", "missing.yaml: not found"]),
    (["schedule", *VERTEX, "--cron", "61 25 * * *"], "job",
     ["cron expression '61 25 * * *': minute 61 is out of range: it must be 0-59"]),
    (["schedule", *VERTEX, "--cron", "0 25 * * *"], "job", ["hour 25 is out of range: it must be 0-23"]),
    (["schedule", *VERTEX, "--cron", "0 30 2 * * *"], "job", ["Vertex schedules take a 5-field cron"]),
    (["schedule", *VERTEX, "--cron", "TZ=Mars/Olympus 0 2 * * *"], "job", ["'Mars/Olympus' is not an IANA time zone"]),
    (["schedule", *KFP, "--cron", "61 25 * * *"], "spec",
     ["cron expression '61 25 * * *': minute 61 is out of range: it must be 0-59"]),
    (["schedule", *KFP, "--cron", "0 2 * * 7"], "spec", ["day of week 7 is out of range: it must be 0-6"]),
    (["schedule", *KFP, "--cron", "TZ=UTC 0 2 * * *"], "spec", ["has no time zone prefix"]),
    (["schedule", *KFP, "--cron", "0 2 * * *", "--max-concurrent", "11"], "spec",
     ["max_concurrent must be an integer from 1 to 10"]),
    (["schedule", *VERTEX, "--cron", "0 2 * * *", "--max-concurrent", "0"], "job", ["--max-concurrent=0: must be >= 1"]),
])
def test_submission_refused_before_credentials_or_network(submission_files, capsys, argv, compiled, expected):
    """Issue 22 case 7: what is wrong, exit 1, before any credential lookup or request."""
    path = submission_files.get(compiled) or (submission_files["job"].parent / compiled)
    output = assert_bad_input([*argv, "--compiled", str(path)], capsys, *expected)
    assert submission_files["calls"] == [], output
    if argv[2] == "kfp" and compiled.startswith("plain"):
        assert "is JSON" not in output  # plain text called .json is not "the Vertex PipelineJob"


def test_good_submissions_get_as_far_as_the_credentials(submission_files, capsys):
    """The checks pass what the services take: the first refusal is the missing credentials."""
    job = str(submission_files["job"])
    for argv in (["submit", *VERTEX, "--param", "epochs=3", "--labels", "team=qa"],
                 ["schedule", *VERTEX, "--cron", "TZ=Europe/Paris 0 2 * * 7"],
                 ["schedule", *VERTEX, "--cron", "*/15 9-17 * JAN-MAR mon-fri"]):
        assert_bad_input([*argv, "--compiled", job], capsys, "no Google Cloud credentials")
    assert submission_files["calls"] == ["credentials"] * 3


def test_a_missing_target_flag_is_a_usage_error(submission_files, capsys):
    """Exit 2, argparse's status for a flag mistake (bert_qa_cli.exit_codes)."""
    from bert_qa.errors import EXIT_USAGE

    spec = str(submission_files["spec"])
    for argv, message in ((["submit", "--target", "vertex", "--compiled", spec], "--target vertex needs --project"),
                          (["submit", "--target", "kfp", "--compiled", spec], "--target kfp needs --host"),
                          (["submit", *KFP], "give --compiled FILE, or --pipeline-root and --image")):
        status, output = cli(argv, capsys)
        assert status == EXIT_USAGE and f"bertqa submit: error: {message}" in output, output
    assert submission_files["calls"] == []


def test_submit_refuses_a_bad_config_as_compile_does(tmp_path, capsys):
    """Issue 20: once exit 2 from submit for the configuration compile exits 1 for."""
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  epoch: 3\n", encoding="utf-8")
    for command in (["compile"], ["submit", *KFP], ["schedule", *KFP, "--cron", "0 2 * * *"]):
        assert_bad_input([*command, "--config", str(path), "--pipeline-root", "gs://b/r", "--image", "i"], capsys,
                         path, "train: unknown key(s) ['epoch']")


# -- 7. cron expressions, by each service's rules (kubeflow/cron.py) -----------------------------

@pytest.mark.parametrize("expr,kfp,vertex", [
    ("30 2 * * *", "0 30 2 * * *", "30 2 * * *"),
    ("0 30 2 * * *", "0 30 2 * * *", None),               # seconds first: Kubeflow only
    ("15 0 9 ? * 2-6", "15 0 9 ? * 2-6", None),
    ("*/15 9-17 * JAN-MAR mon-fri", "0 */15 9-17 * JAN-MAR mon-fri", "*/15 9-17 * JAN-MAR mon-fri"),
    ("5/10 * * * *", "0 5/10 * * * *", "5/10 * * * *"),
    ("0 0 1,15 * 7", None, "0 0 1,15 * 7"),               # Sunday as 7: unix cron, not robfig/cron
    ("TZ=Europe/Paris 0 2 * * *", None, "TZ=Europe/Paris 0 2 * * *"),
    ("CRON_TZ=America/New_York 1 * * * *", None, "CRON_TZ=America/New_York 1 * * * *"),
    ("61 25 * * *", None, None), ("0 24 * * *", None, None), ("0 2 0 * *", None, None),
    ("0 2 * 13 *", None, None), ("*/0 * * * *", None, None), ("0 2 5-1 * *", None, None),
    ("0 2 L * *", None, None), ("1-2-3 * * * *", None, None), ("@daily", None, None), ("", None, None),
    ("30 2 * *", None, None), ("60 0 2 * * *", None, None),
])
def test_cron_rules_of_each_service(expr, kfp, vertex):
    from bert_qa_pipeline.kubeflow.cron import CronError, kfp_cron, vertex_cron

    for check, expected in ((kfp_cron, kfp), (vertex_cron, vertex)):
        if expected is None:
            with pytest.raises(CronError, match=f"cron expression {re.escape(repr(expr))}"):
                check(expr)
        else:
            assert check(expr) == expected


# -- 8. `bertqa import-checkpoint`, and the one exit-status policy ----------------------------------

def test_import_checkpoint_refuses_a_file_or_nothing_as_the_checkpoint(tmp_path, capsys):
    a_file = tmp_path / "config.json"
    a_file.write_text("{}", encoding="utf-8")
    assert_bad_input(["import-checkpoint", str(a_file), str(tmp_path / "out")], capsys,
                     a_file, "is a file, not a directory")
    assert_bad_input(["import-checkpoint", str(tmp_path / "nowhere"), str(tmp_path / "out")], capsys,
                     "nowhere", "not found")
    assert not (tmp_path / "out").exists()


def test_exit_status_policy():
    from bert_qa.scoring import ScoringInputError
    from bert_qa.settings import SettingError
    from bert_qa_cli import exit_codes

    assert [exit_codes.status_of(err) for err in (
        InputError("x"), SettingError("k", "x"), ScoringInputError("x"), exit_codes.ServiceRefused("x"),
        exit_codes.UsageError("x"), ValueError("x"), RuntimeError("x"), KeyboardInterrupt())] == [
        1, 1, 1, 1, 2, 3, 3, 130]


def test_every_command_goes_through_the_policy(capsys, monkeypatch):
    """A tool failure is exit 3 and Ctrl-C 130 whichever the command; no command module
    imports another (what they share is bert_qa_cli.common)."""
    import ast
    import pathlib

    from bert_qa_cli.commands import score

    def crash(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(score, "run", crash)
    status, output = cli(["score", "--data", "d", "--predictions", "p"], capsys)
    assert status == EXIT_TOOL_FAILED and "bertqa score: failed: RuntimeError: boom" in output

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(score, "run", interrupted)
    status, output = cli(["score", "--data", "d", "--predictions", "p"], capsys)
    assert status == 130 and "bertqa score: interrupted" in output

    commands = pathlib.Path(score.__file__).parent
    imports = {}
    for path in commands.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bert_qa_cli.commands"):
                imports.setdefault(path.stem, []).append(node.module)
    assert imports == {}, imports
    # No command picks a status of its own: it returns 0 (or a name of bert_qa_cli.exit_codes)
    # and raises.
    own_statuses = []
    for path in commands.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Return) and isinstance(node.value, ast.Constant) and node.value.value not in (0, None):
                own_statuses.append((path.stem, node.lineno, node.value.value))
            if isinstance(node, ast.Attribute) and node.attr == "exit" and getattr(node.value, "id", "") == "sys":
                own_statuses.append((path.stem, node.lineno, "sys.exit"))
    assert own_statuses == [], own_statuses


# -- the one reader of a user's text file ---------------------------------------------------------

def test_read_utf8_file_names_the_file_and_the_problem(tmp_path):
    """Each problem a user can fix, with the file, and for bad bytes the line, byte and offset."""
    from bert_qa.errors import InputError, read_utf8_file

    good = tmp_path / "good.txt"
    good.write_text("caf\u00e9\n", encoding="utf-8")
    assert read_utf8_file(str(good), "context file") == "caf\u00e9\n"
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("one\ncaf\u00e9\n".encode("latin-1"))
    unreadable = tmp_path / "locked.txt"
    unreadable.write_text("x")
    unreadable.chmod(0)

    class OwnError(ValueError):
        pass

    cases = [(tmp_path / "missing.txt", InputError, "context file {}: not found"),
             (tmp_path, InputError, "context file {}: is a directory, not a file"),
             (latin1, InputError, "context file {}: line 2: not UTF-8 text (byte 0xe9 at offset 7); save it as UTF-8")]
    if os.geteuid() != 0:  # root reads a file whatever its mode
        cases.append((unreadable, InputError, "context file {}: cannot read it: Permission denied"))
    for path, error, message in cases:
        with pytest.raises(error) as raised:
            read_utf8_file(str(path), "context file")
        assert str(raised.value) == message.format(path)
    with pytest.raises(OwnError, match=r"^compiled pipeline .*latin1\.txt: line 2: .*; give it JSON$"):
        read_utf8_file(str(latin1), "compiled pipeline", OwnError, not_text_hint="give it JSON")
