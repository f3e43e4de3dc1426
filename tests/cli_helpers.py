"""`bertqa` run in-process, and the tiny .tflite its bad-input tests use.

Shared by tests/test_cli_errors.py and tests/test_settings_refused.py (and the ``tiny_tflite``
fixture of tests/conftest.py). Not a test module: importing it builds nothing.
"""
from __future__ import annotations

from bert_qa import _env  # noqa: F401
from bert_qa.errors import EXIT_BAD_INPUT
from bert_qa_cli.main import main

# The tiny .tflite's shape and vocabulary.
SEQ_LEN = 32
QUERY_LEN = 8
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "sat", "on", "mat", "who", "?"]


def cli(argv, capsys):
    """(status, stdout + stderr) of one `bertqa` call; a traceback anywhere fails the test."""
    status = main(argv)
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert "Traceback" not in output, output
    return status, output


def assert_bad_input(argv, capsys, *expected):
    status, output = cli(argv, capsys)
    assert status == EXIT_BAD_INPUT, output
    assert f"bertqa {argv[0]}: error: " in output, output
    for text in expected:
        assert str(text) in output, (text, output)
    return output


def make_tiny_tflite(root) -> dict:
    """A real QA .tflite with Task Library metadata (tiny: an embedding and a dense layer), and
    the same model without metadata, under ``root``."""
    import tensorflow as tf
    import tf_keras

    from bert_qa.export import export_saved_model, export_tflite

    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(WORDS) + "\n", encoding="utf-8")
    tf_keras.utils.set_random_seed(0)
    inputs = [tf_keras.Input((SEQ_LEN,), dtype=tf.int32, name=name)
              for name in ("input_word_ids", "input_mask", "input_type_ids")]
    logits = tf_keras.layers.Dense(2)(tf_keras.layers.Embedding(len(WORDS), 4)(inputs[0]))
    start = tf_keras.layers.Lambda(lambda x: x[..., 0])(logits)
    end = tf_keras.layers.Lambda(lambda x: x[..., 1])(logits)
    model = tf_keras.Model(inputs, [start, end])
    saved = export_saved_model(model, str(root / "saved_model"), vocab_file=str(vocab),
                               query_len=QUERY_LEN, doc_stride=8)
    path = export_tflite(saved, str(root / "model.tflite"), "float32", vocab_file=str(vocab),
                         metadata_options={"query_len": QUERY_LEN, "doc_stride": 8})
    bare = export_tflite(saved, str(root / "bare.tflite"), "float32", metadata=False)
    return dict(root=root, saved=saved, path=path, bare=bare, vocab=str(vocab))
