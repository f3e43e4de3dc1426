"""Encoder loading in BertQaSpec / MobileBertQaSpec: TF1 and TF2 Hub formats, hub handles, vocab.

References: a module's signature called directly (tensorflow_hub.load) for the TF1 'squad'
path; the encoder SavedModel called directly plus the span head's own weights for the TF2
path. The TF1 modules are built locally (tests/tf1_hub_fixtures.py) because no hub is
reachable and tensorflow_hub 0.16 cannot write TF1 modules.
"""
from __future__ import annotations

import filecmp
import io
import logging
import os
import shutil
import socket
import tarfile
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from bert_qa import _env  # noqa: F401
import tensorflow as tf
import tensorflow_hub as hub
import tf_keras
from official.nlp.data import squad_lib

from bert_qa import encoders, hub_format, input_pipeline
from bert_qa.errors import InputError
from bert_qa.hub_format import HubHandleError, TF1SignatureLayer
from bert_qa.spec import MOBILEBERT_URI, BertQaSpec, MobileBertQaSpec, qa_loss
from tests import fixtures, tf1_hub_fixtures

SEQ_LEN = 64
SHAPE = dict(seq_len=SEQ_LEN, query_len=16, doc_stride=32)
INPUT_NAMES = ["input_word_ids", "input_mask", "input_type_ids"]


@pytest.fixture(scope="module")
def tf1_module(tmp_path_factory):
    return tf1_hub_fixtures.make_tf1_hub_module(
        str(tmp_path_factory.mktemp("tf1") / "mobilebert_like"), seq_len=SEQ_LEN)


@pytest.fixture(scope="module")
def tf1_squad_module(tmp_path_factory):
    return tf1_hub_fixtures.make_tf1_hub_module(
        str(tmp_path_factory.mktemp("tf1_squad") / "mobilebert_squad_like"), seq_len=SEQ_LEN,
        with_squad=True, seed=1)


@pytest.fixture(scope="module")
def tf2_encoder(tmp_path_factory):
    return fixtures.make_tiny_tf2_encoder(str(tmp_path_factory.mktemp("tf2") / "encoder"))


@pytest.fixture(scope="module")
def train_examples(tmp_path_factory):
    """Ten real questions (new_wiki, first answer each, as training data has one answer)."""
    article = fixtures.new_wiki_articles()[0]
    paragraphs = [{**p, "qas": [{**q, "answers": q["answers"][:1]} for q in p["qas"]]}
                  for p in article["paragraphs"][:2]]
    path = fixtures.write_squad(str(tmp_path_factory.mktemp("squad") / "train.json"),
                                [{**article, "paragraphs": paragraphs}])
    return squad_lib.read_squad_examples(path, is_training=True, version_2_with_negative=False)


def write_train_records(spec, examples, path) -> str:
    features = []
    spec.convert_examples_to_features(examples, is_training=True, output_fn=features.append,
                                      batch_size=None)
    input_pipeline.write_features(features, path, is_training=True)
    return path


def random_inputs(batch: int = 3, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, 30000, size=(batch, SEQ_LEN), dtype=np.int32)
    lengths = rng.integers(10, SEQ_LEN, size=batch)
    mask = (np.arange(SEQ_LEN)[None] < lengths[:, None]).astype(np.int32)
    types = ((np.arange(SEQ_LEN)[None] > 8) & (mask == 1)).astype(np.int32)
    return {"input_word_ids": ids * mask, "input_mask": mask, "input_type_ids": types}


def tf1_layer(model) -> TF1SignatureLayer:
    found = [layer for layer in model.submodules if isinstance(layer, TF1SignatureLayer)]
    assert len(found) == 1, found
    return found[0]


# -- (a) TF1 Hub-format encoder (MobileBertQaSpec's default kind) -------------------------

def test_mobilebert_spec_builds_from_tf1_module(tf1_module):
    spec = MobileBertQaSpec(uri=tf1_module, **SHAPE)
    assert (spec.is_tf2, spec.distribution_strategy, spec.default_batch_size) == (False, "off", 32)
    spec.build()
    assert spec.vocab_file == os.path.join(tf1_module, "assets", "vocab.txt")
    assert filecmp.cmp(spec.vocab_file, fixtures.minilm_vocab(), shallow=False)
    assert spec.tokenizer.tokenize("Who founded Wikipedia?") == ["who", "founded", "wikipedia", "?"]

    model = spec.create_model()
    assert [t.name.split(":")[0] for t in model.inputs] == INPUT_NAMES
    assert all(t.dtype == tf.int32 and t.shape.as_list() == [None, SEQ_LEN] for t in model.inputs)
    assert [t.shape.as_list() for t in model.outputs] == [[None, SEQ_LEN], [None, SEQ_LEN]]
    layer = tf1_layer(model)
    module_vars = {v.name for v in hub.load(tf1_module).variables}
    assert {v.name for v in layer.trainable_weights} == module_vars
    assert module_vars <= {v.name for v in model.trainable_variables}

    frozen = MobileBertQaSpec(uri=tf1_module, trainable=False, **SHAPE).create_model()
    assert not {v.name for v in frozen.trainable_variables} & module_vars
    assert module_vars <= {v.name for v in frozen.non_trainable_variables}


def test_tf1_module_fine_tunes_through_spec_train(tf1_module, train_examples, tmp_path):
    """Gradients reach the TF1 module's variables; training lowers the loss; checkpoints hold them."""
    spec = MobileBertQaSpec(uri=tf1_module, model_dir=str(tmp_path / "model"),
                            learning_rate=1e-2, **SHAPE)
    record = write_train_records(spec, train_examples, str(tmp_path / "train.tfrecord"))
    input_fn = input_pipeline.make_input_fn(spec, [record], is_training=True, batch_size=8)
    x, y = next(iter(input_fn()))
    labels = [y["start_positions"], y["end_positions"]]

    def batch_loss(model):
        start, end = model(x, training=False)
        return float(0.5 * qa_loss(labels[0], start) + 0.5 * qa_loss(labels[1], end))

    class Probe(tf_keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            layer = tf1_layer(self.model)
            self.module_before = {v.name: v.numpy().copy() for v in layer.trainable_weights}
            with tf.GradientTape() as tape:
                start, end = self.model(x, training=True)
                loss = 0.5 * qa_loss(labels[0], start) + 0.5 * qa_loss(labels[1], end)
            grads = tape.gradient(loss, layer.trainable_weights)
            self.grad_norms = {v.name: 0.0 if g is None else float(tf.norm(tf.convert_to_tensor(g)))
                               for v, g in zip(layer.trainable_weights, grads)}
            self.loss_before = batch_loss(self.model)

    probe = Probe()
    model = spec.train(input_fn, epochs=2, steps_per_epoch=4, callbacks=[probe], verbose=0)

    for name in ("bert/embeddings/word_embeddings:0", "bert/encoder/dense/kernel:0",
                 "bert/encoder/dense/bias:0"):
        assert probe.grad_norms[name] > 0, (name, probe.grad_norms)
    layer = tf1_layer(model)
    after = {v.name: v.numpy() for v in layer.trainable_weights}
    for name in ("bert/embeddings/word_embeddings:0", "bert/embeddings/token_type_embeddings:0",
                 "bert/encoder/dense/kernel:0", "bert/encoder/dense/bias:0"):
        assert np.abs(after[name] - probe.module_before[name]).max() > 1e-3, name
    assert model.optimizer.iterations.numpy() == 8
    loss_after = batch_loss(model)
    assert loss_after < probe.loss_before - 0.05, (probe.loss_before, loss_after)

    # The epoch checkpoint holds the fine-tuned module variables: a fresh model restores them.
    restored = spec.create_model()
    restored.load_weights(os.path.join(spec.model_dir, "checkpoints", "epoch-002"))
    for v in tf1_layer(restored).trainable_weights:
        np.testing.assert_array_equal(v.numpy(), after[v.name], err_msg=v.name)
    np.testing.assert_allclose(batch_loss(restored), loss_after, rtol=1e-6)


def test_tf1_span_model_exports_to_tflite_with_model_maker_names(tf1_module, tmp_path):
    """The fine-tunable TF1 layer survives SavedModel export and TFLite conversion."""
    from bert_qa import export
    from bert_qa.tflite_runner import LiteRunner

    spec = MobileBertQaSpec(uri=tf1_module, **SHAPE)
    model = spec.create_model()
    saved = export.export_saved_model(model, str(tmp_path / "saved_model"))
    tflite_path = str(tmp_path / "model.tflite")
    with open(tflite_path, "wb") as f:
        f.write(export.convert(saved, "float32"))
    runner = LiteRunner(tflite_path, spec.reorder_input_details, spec.reorder_output_details)
    assert [d["name"] for d in runner.input_details] == [
        spec.tflite_input_name[k] for k in ("ids", "mask", "segment_ids")]
    assert [d["name"] for d in runner.output_details] == [
        spec.tflite_output_name[k] for k in ("start_logits", "end_logits")]
    inputs = random_inputs()
    start, end = model(inputs, training=False)
    lite_start, lite_end = runner.run(inputs)
    np.testing.assert_allclose(lite_start, start.numpy(), atol=1e-5)
    np.testing.assert_allclose(lite_end, end.numpy(), atol=1e-5)


# -- (b) init_from_squad_model ----------------------------------------------------------

def test_init_from_squad_model_gives_the_squad_signature_logits(tf1_squad_module):
    spec = MobileBertQaSpec(uri=tf1_squad_module, init_from_squad_model=True, **SHAPE)
    model = spec.create_model()
    assert [t.name.split(":")[0] for t in model.inputs] == INPUT_NAMES
    assert [t.shape.as_list() for t in model.outputs] == [[None, SEQ_LEN], [None, SEQ_LEN]]
    assert model.output_names == ["start_positions", "end_positions"]

    inputs = random_inputs()
    start, end = model(inputs, training=False)
    reference = hub.load(tf1_squad_module, tags=[]).signatures["squad"](
        input_ids=tf.constant(inputs["input_word_ids"]), input_mask=tf.constant(inputs["input_mask"]),
        segment_ids=tf.constant(inputs["input_type_ids"]))
    np.testing.assert_array_equal(start.numpy(), reference["start_logits"].numpy())
    np.testing.assert_array_equal(end.numpy(), reference["end_logits"].numpy())
    assert np.std(start.numpy()) > 1e-3  # not a constant: the comparison means something

    squad_vars = {v.name for v in hub.load(tf1_squad_module).variables}
    assert {"cls/squad/output_weights:0", "cls/squad/output_bias:0"} <= squad_vars
    assert squad_vars == {v.name for v in model.trainable_variables}


def test_init_from_squad_model_rejects_tf2_as_model_maker(tf1_squad_module, tf2_encoder):
    for uri in (tf1_squad_module, tf2_encoder):
        spec = MobileBertQaSpec(uri=uri, init_from_squad_model=True, is_tf2=True, **SHAPE)
        with pytest.raises(ValueError, match="TF1"):
            spec.create_model()


def test_tokens_only_module_has_no_squad_signature(tf1_module):
    spec = MobileBertQaSpec(uri=tf1_module, init_from_squad_model=True, **SHAPE)
    with pytest.raises(ValueError, match="no 'squad' signature"):
        spec.create_model()


# -- (c) TF2 Hub-format encoders -------------------------------------------------------------

def test_tf2_encoder_span_model_matches_encoder_and_head(tf2_encoder):
    spec = BertQaSpec(uri=tf2_encoder, distribution_strategy="off", **SHAPE)
    model = spec.create_model()
    assert [t.name.split(":")[0] for t in model.inputs] == INPUT_NAMES
    assert all(t.dtype == tf.int32 and t.shape.as_list() == [None, SEQ_LEN] for t in model.inputs)
    assert [t.shape.as_list() for t in model.outputs] == [[None, SEQ_LEN], [None, SEQ_LEN]]
    assert model.output_names == ["start_positions", "end_positions"]

    inputs = random_inputs()
    start, end = model(inputs, training=False)
    # Reference: the SavedModel called directly, then the span head's dense layer by hand.
    encoder = tf.saved_model.load(tf2_encoder)
    sequence = encoder({k: tf.constant(v) for k, v in inputs.items()}, training=False)["sequence_output"]
    kernel, bias = [w.numpy() for w in model.span_labeling.weights]
    logits = np.einsum("bsh,hk->bsk", sequence.numpy(), kernel) + bias
    np.testing.assert_allclose(start.numpy(), logits[..., 0], atol=1e-5)
    np.testing.assert_allclose(end.numpy(), logits[..., 1], atol=1e-5)

    encoder_vars = {v.name for v in encoder.trainable_variables}
    assert encoder_vars <= {v.name for v in model.trainable_variables}
    frozen = BertQaSpec(uri=tf2_encoder, trainable=False, distribution_strategy="off",
                        **SHAPE).create_model()
    assert {v.name for v in frozen.trainable_variables} == {
        v.name for v in frozen.span_labeling.trainable_weights}


def test_tf1_module_with_is_tf2_true_says_so(tf1_module):
    spec = BertQaSpec(uri=tf1_module, distribution_strategy="off", **SHAPE)
    with pytest.raises(ValueError, match="is_tf2=False"):
        spec.create_model()


# -- (d) TF Hub handles --------------------------------------------------------------------

def _urlopen_raising(error, calls=None):
    """A stand-in for urllib.request.urlopen (what tensorflow_hub downloads with)."""
    def urlopen(request, *args, **kwargs):
        if calls is not None:
            calls.append(getattr(request, "full_url", request))
        raise error
    return urlopen


def _urlopen_serving(payload: bytes):
    def urlopen(request, *args, **kwargs):
        return io.BytesIO(payload)
    return urlopen


def test_uncached_hub_handle_offline_fails_fast_with_instructions(tmp_path, monkeypatch):
    """Offline on purpose (whatever this machine's network): the download fails as it does
    with no DNS, and the user is told how to get the module here."""
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "empty_cache"))
    calls = []
    no_dns = urllib.error.URLError(socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    monkeypatch.setattr(urllib.request, "urlopen", _urlopen_raising(no_dns, calls))
    spec = MobileBertQaSpec()  # Model Maker's default uri, a tfhub.dev handle
    assert spec.uri == MOBILEBERT_URI
    started = time.monotonic()
    with pytest.raises(hub_format.HubDownloadError) as raised:
        spec.build()
    assert time.monotonic() - started < 10
    assert calls and calls[0].startswith(MOBILEBERT_URI)  # it did try to download
    assert isinstance(raised.value, HubHandleError) and isinstance(raised.value, InputError)
    message = str(raised.value)
    assert MOBILEBERT_URI in message and "Name or service not known" in message
    assert "cannot download" in message
    assert "pre-download" in message and f"hub.resolve('{MOBILEBERT_URI}')" in message
    assert "uri=<local directory" in message
    assert hub_format.hub_cache_location(MOBILEBERT_URI) in message
    assert not spec.is_built
    # The pipeline's FeatureWindowing asks for the vocab alone: the same error, not
    # tf.io.gfile's UnimplementedError for an https "file".
    with pytest.raises(hub_format.HubDownloadError, match="cannot download"):
        encoders.vocab_of(MOBILEBERT_URI)


def test_hub_failures_say_which_they_are(tmp_path, monkeypatch):
    """Not found (404), an HTTP error, a corrupt download and a corrupt cached copy are each
    reported as what they are, not as "cannot download"; unrelated errors are not relabelled."""
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "cache"))
    handle = "https://tfhub.dev/example/no-such-model/1"

    monkeypatch.setattr(urllib.request, "urlopen", _urlopen_raising(
        urllib.error.HTTPError(handle, 404, "Not Found", {}, None)))
    with pytest.raises(hub_format.HubHandleNotFoundError, match="does not exist.*HTTP 404") as raised:
        hub_format.resolve_uri(handle)
    assert "cannot download" not in str(raised.value)

    monkeypatch.setattr(urllib.request, "urlopen", _urlopen_raising(
        urllib.error.HTTPError(handle, 503, "Service Unavailable", {}, None)))
    with pytest.raises(hub_format.HubDownloadError, match="HTTP 503 Service Unavailable"):
        hub_format.resolve_uri(handle)

    # Not a tar archive (e.g. a truncated download): nothing is cached.
    monkeypatch.setattr(urllib.request, "urlopen", _urlopen_serving(b"<html>Oops</html>" * 50))
    with pytest.raises(hub_format.HubModuleCorruptError, match="not a TF Hub module archive") as raised:
        hub_format.resolve_uri(handle)
    assert hub_format.hub_cache_location(handle) in str(raised.value)
    assert "cannot download" not in str(raised.value)
    assert not os.path.exists(hub_format.hub_cache_location(handle))

    # A tar archive whose saved_model.pb is garbage: cached, and named with the cache path.
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        garbage = bytes(range(256)) * 40
        info = tarfile.TarInfo("saved_model.pb")
        info.size = len(garbage)
        tar.addfile(info, io.BytesIO(garbage))
    monkeypatch.setattr(urllib.request, "urlopen", _urlopen_serving(archive.getvalue()))
    cached = hub_format.hub_cache_location(handle)
    for _ in range(2):  # the download, then the cached copy
        with pytest.raises(hub_format.HubModuleCorruptError, match="corrupt or truncated") as raised:
            hub_format.resolve_uri(handle)
        assert os.path.join(cached, "saved_model.pb") in str(raised.value)
        assert f"delete {cached}" in str(raised.value)

    monkeypatch.setattr(urllib.request, "urlopen", _urlopen_raising(KeyError("unrelated")))
    with pytest.raises(KeyError, match="unrelated"):
        hub_format.resolve_uri(handle + "/other")


def test_unresponsive_hub_server_times_out(tmp_path, monkeypatch):
    """A server that accepts the connection but never answers (DNS works, traffic is dropped)."""
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "empty_cache"))
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the handshake; nobody ever reads or writes
        handle = f"http://127.0.0.1:{silent.getsockname()[1]}/models/encoder.tar.gz"
        started = time.monotonic()
        with pytest.raises(HubHandleError, match="timed out") as raised:
            hub_format.resolve_uri(handle, timeout=1.0)
        assert time.monotonic() - started < 10
    assert handle in str(raised.value)
    assert socket.getdefaulttimeout() is None  # restored


def test_cached_hub_handle_resolves_offline(tf1_module, tmp_path, monkeypatch):
    """A handle already in TF Hub's cache loads with no network, as hub.resolve does it."""
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(urllib.request, "urlopen", _urlopen_raising(
        AssertionError("a cached handle must not be downloaded")))
    cached = hub_format.hub_cache_location(MOBILEBERT_URI)
    assert os.path.dirname(cached) == str(tmp_path / "cache")
    shutil.copytree(tf1_module, cached)
    spec = MobileBertQaSpec(**SHAPE)
    spec.build()
    assert spec.module_path == cached
    assert spec.vocab_file == os.path.join(cached, "assets", "vocab.txt")
    assert [t.shape.as_list() for t in spec.create_model().outputs] == [[None, SEQ_LEN]] * 2


def test_missing_local_directory_is_a_file_not_found_error(tmp_path):
    for uri in (str(tmp_path / "nope"), "relative/nope"):
        with pytest.raises(FileNotFoundError, match="not found"):
            BertQaSpec(uri=uri, distribution_strategy="off").build()


# -- (e) vocabulary discovery ------------------------------------------------------------------

def test_vocab_from_vocab_file_asset_and_lower_case_mismatch(tmp_path, caplog):
    """The `vocab_file` Asset wins (whatever its name); a do_lower_case disagreement warns."""
    renamed = str(tmp_path / "wordpieces.txt")
    shutil.copy(fixtures.minilm_vocab(), renamed)
    encoder = hub_format.build_bert_encoder(fixtures.tiny_encoder_config(num_hidden_layers=1))
    export_dir = hub_format.export_encoder(encoder, str(tmp_path / "cased"), renamed,
                                           do_lower_case=False)
    assert not os.path.exists(os.path.join(export_dir, "assets", "vocab.txt"))
    vocab, lower = hub_format.find_vocab(export_dir)
    assert (vocab, lower) == (os.path.join(export_dir, "assets", "wordpieces.txt"), False)
    # find_vocab reads both from the files (no SavedModel load): the same as TensorFlow's loader
    # gives, for this cased module and for a lower-cased one.
    for module in (export_dir, fixtures.make_tiny_tf2_encoder(str(tmp_path / "uncased"))):
        loaded = tf.saved_model.load(module)
        assert hub_format.find_vocab(module) == (loaded.vocab_file.asset_path.numpy().decode(),
                                                 bool(loaded.do_lower_case.numpy()))
        # So are the weights a native rebuild copies (hub_format.saved_variables): every one of
        # the loader's variables, by name, to the bit.
        weights = hub_format.saved_variables(module)
        assert sorted(weights) == sorted(v.name for v in loaded.variables) and len(weights) > 20
        for variable in loaded.variables:
            assert weights[variable.name].dtype == variable.dtype.as_numpy_dtype, variable.name
            np.testing.assert_array_equal(weights[variable.name], variable.numpy(), err_msg=variable.name)

    spec = BertQaSpec(uri=export_dir, do_lower_case=True, distribution_strategy="off", **SHAPE)
    with caplog.at_level(logging.WARNING, logger="bert_qa.spec"):
        spec.build()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("do_lower_case=False" in w and "do_lower_case=True" in w for w in warnings), warnings
    assert spec.tokenizer.tokenize("Hello World") == ["hello", "world"]  # the spec's value is used

    caplog.clear()
    cased = BertQaSpec(uri=export_dir, do_lower_case=False, distribution_strategy="off", **SHAPE)
    with caplog.at_level(logging.WARNING, logger="bert_qa.spec"):
        cased.build()
    assert not [r for r in caplog.records if "do_lower_case" in r.getMessage()]

    saved = str(tmp_path / "saved_vocab.txt")
    spec.save_vocab(saved)
    assert filecmp.cmp(saved, fixtures.minilm_vocab(), shallow=False)


def test_vocab_from_assets_dir_and_missing_vocab(tf1_module, tmp_path):
    assert hub_format.find_vocab(tf1_module) == (os.path.join(tf1_module, "assets", "vocab.txt"), None)
    spec = MobileBertQaSpec(uri=tf1_module, **SHAPE)
    saved = str(tmp_path / "vocab.txt")
    spec.save_vocab(saved)
    assert filecmp.cmp(saved, fixtures.minilm_vocab(), shallow=False)

    bare = str(tmp_path / "no_vocab")
    tf.saved_model.save(tf.Module(), bare)
    with pytest.raises(FileNotFoundError, match="No vocabulary"):
        BertQaSpec(uri=bare, distribution_strategy="off").build()


def test_corrupt_saved_model_is_an_error_not_an_assets_vocab_fallback(tf2_encoder, tmp_path):
    """A TF2 encoder whose saved_model.pb (or variables) cannot be read must not be taken for a
    module whose vocabulary is whatever assets/vocab.txt holds."""
    assert os.path.isfile(os.path.join(tf2_encoder, "assets", "vocab.txt"))  # the old fallback
    corrupt = str(tmp_path / "corrupt_pb")
    shutil.copytree(tf2_encoder, corrupt)
    with open(os.path.join(corrupt, "saved_model.pb"), "r+b") as f:
        f.truncate(os.path.getsize(os.path.join(corrupt, "saved_model.pb")) // 2)
    pb = os.path.join(corrupt, "saved_model.pb")
    with pytest.raises(hub_format.CorruptEncoderError, match="corrupt or truncated") as raised:
        hub_format.find_vocab(corrupt)
    assert pb in str(raised.value) and isinstance(raised.value, InputError)
    spec = BertQaSpec(uri=corrupt, distribution_strategy="off", **SHAPE)
    with pytest.raises(hub_format.CorruptEncoderError, match=pb):
        spec.build()
    assert not spec.is_built

    truncated = str(tmp_path / "truncated_variables")
    shutil.copytree(tf2_encoder, truncated)
    data = [os.path.join(truncated, "variables", n) for n in os.listdir(os.path.join(truncated, "variables"))
            if ".data-" in n][0]
    with open(data, "r+b") as f:
        f.truncate(os.path.getsize(data) // 3)
    with pytest.raises(hub_format.CorruptEncoderError, match="cannot be loaded") as raised:
        hub_format.find_vocab(truncated)
    assert truncated in str(raised.value)

    not_a_model = str(tmp_path / "vocab_only")
    shutil.copytree(os.path.join(tf2_encoder, "assets"), os.path.join(not_a_model, "assets"))
    with pytest.raises(hub_format.CorruptEncoderError, match="not a SavedModel"):
        hub_format.find_vocab(not_a_model)
