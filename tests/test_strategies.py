"""Every distribution_strategy value the specs accept, trained or refused, on this CPU machine.

'off' (the default strategy) is the reference: 'one_device' and 'mirrored' (num_gpus=-1,
i.e. 0 GPUs here, so one CPU replica) must train to the same losses and weights from the
same seed. 'multi_worker_mirrored' runs as two worker processes on localhost
(tests/train_worker.py, TF_CONFIG); their gradients are all-reduced, so both end with
bit-identical weights, which must also equal a hand-written data-parallel reference run in
this process (no tf.distribute). 'parameter_server' runs a real localhost cluster (a ps and a
worker process serving, tests/tf_server.py, and a coordinating chief) and must train like 'off';
without a cluster it is refused, as 'tpu' is without a TPU. The encoder has dropout off so that
those comparisons are exact maths; with dropout on, two processes given the same seed must still
end with the same model.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from bert_qa import _env  # noqa: F401
import tensorflow as tf
import tf_keras
from official.nlp import optimization
from official.nlp.data import squad_lib

from bert_qa import input_pipeline
from bert_qa.distribution import StrategyError
from bert_qa.spec import BertQaSpec, MobileBertQaSpec, qa_loss
from tests import fixtures

SHAPE = dict(seq_len=64, query_len=16, doc_stride=32)
LEARNING_RATE = 1e-3
EPOCHS, STEPS_PER_EPOCH, GLOBAL_BATCH = 2, 3, 8
WORKER_SCRIPT = os.path.join(fixtures.REPO_ROOT, "tests", "train_worker.py")
WORKER_TIMEOUT_S = 240


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return fixtures.make_tiny_tf2_encoder(str(tmp_path_factory.mktemp("enc") / "encoder"),
                                          hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


@pytest.fixture(scope="module")
def train_shards(encoder, tmp_path_factory):
    """Real training features (new_wiki, first answers) in two TFRecord shards."""
    article = fixtures.new_wiki_articles()[0]
    paragraphs = [{**p, "qas": [{**q, "answers": q["answers"][:1]} for q in p["qas"]]}
                  for p in article["paragraphs"][:2]]
    tmp = tmp_path_factory.mktemp("records")
    path = fixtures.write_squad(str(tmp / "train.json"), [{**article, "paragraphs": paragraphs}])
    examples = squad_lib.read_squad_examples(path, is_training=True, version_2_with_negative=False)
    spec = BertQaSpec(uri=encoder, distribution_strategy="off", **SHAPE)
    features = []
    spec.convert_examples_to_features(examples, True, features.append, None)
    shards = [str(tmp / f"train-{i}-of-2.tfrecord") for i in range(2)]
    for i, shard in enumerate(shards):
        input_pipeline.write_features(features[i::2], shard, is_training=True)
    # Every step reads fresh records: no wrap-around inside the compared steps.
    assert len(features) // 2 >= EPOCHS * STEPS_PER_EPOCH * GLOBAL_BATCH // 2
    return shards


class StepLosses(tf_keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))


def train(spec, input_fn, seed: int = 0):
    tf_keras.utils.set_random_seed(seed)
    recorder = StepLosses()
    model = spec.train(input_fn, epochs=EPOCHS, steps_per_epoch=STEPS_PER_EPOCH,
                       callbacks=[recorder], verbose=0)
    return model, recorder.losses


# Weights trained along different float summation orders (another strategy's graph, the
# all-reduce, a parameter server) are compared per tensor, at the tensor's own scale:
#     max|got - want| <= WEIGHT_RTOL * max|want| + WEIGHT_NOISE_FLOOR,
# not element by element. Some parameters have a zero gradient in exact arithmetic (the attention
# key biases; the last LayerNorm's beta and the span head's bias, as softmax ignores a shift of
# all logits), so their values are float noise that Adam amplifies, ~1e-11 to 4e-7, and the
# summation order changes that noise (seen: 1.9e-7 vs 3.8e-7): no relative tolerance holds there.
# The floor, 2e-3 x the learning rate = 2e-6, is 5x that noise but far below what training moves:
# Adam moves an element with a real gradient by up to ~lr per step (lr/6 = 1.7e-4 at the last
# step; most tensors end up to 3.5e-3 from their initial values). Measured against the MWMS
# test's reference, each of these real bugs breaks the bound in 35 of the 42 tensors, the worst
# by the factor given: weights never updated (1600x), learning rate 10% off (300x), one worker's
# gradient dropped, i.e. no all-reduce (2200x), clipping after the all-reduce (1000x), the last
# update skipped (80x). The real two-worker run reaches 0.17 of it (the span head's bias), 0.001
# in the median tensor; the parameter-server run 0.075 (tensors with a real gradient: 1.9e-9
# off); one_device and mirrored match 'off' bit for bit.
WEIGHT_RTOL = 1e-5
WEIGHT_NOISE_FLOOR = 2e-3 * LEARNING_RATE


def assert_weights_close(got, want, names=None):
    fixtures.assert_weights_close(got, want, WEIGHT_RTOL, WEIGHT_NOISE_FLOOR, names)


# -- refused strategies ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ["bogus", "Mirrored_Strategy", "", False, None])
def test_unknown_strategy_is_a_value_error(name):
    with pytest.raises(ValueError, match="distribution_strategy must be one of"):
        BertQaSpec(uri="unused", distribution_strategy=name)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("tpu", ["", "local", "grpc://127.0.0.1:{port}"])
def test_tpu_without_a_tpu_fails_fast(tpu):
    tpu = tpu.format(port=closed_port())
    started = time.monotonic()
    with pytest.raises(StrategyError, match="none was found") as raised:
        BertQaSpec(uri="unused", distribution_strategy="tpu", tpu=tpu)
    assert time.monotonic() - started < 10
    assert "distribution_strategy='tpu' needs a reachable TPU" in str(raised.value)
    assert repr(tpu) in str(raised.value)


def test_local_tpu_refused_before_tensorflow_clears_the_process(monkeypatch):
    """TF's TPU initializer clears every eager cache and garbage-collects the process before it
    finds no TPU (bert_qa.distribution._check_local_tpu); without a TPU device it must not run."""
    from tensorflow.python.tpu import tpu_strategy_util

    called = []
    real = tpu_strategy_util.initialize_tpu_system_impl
    monkeypatch.setattr(tpu_strategy_util, "initialize_tpu_system_impl",
                        lambda *a, **k: called.append(a) or real(*a, **k))
    with pytest.raises(StrategyError, match="no TPU device"):
        BertQaSpec(uri="unused", distribution_strategy="tpu", tpu="local")
    assert called == []


@pytest.mark.parametrize("tf_config", [None, {"cluster": {"worker": ["localhost:1"]},
                                              "task": {"type": "worker", "index": 0}}])
def test_parameter_server_without_a_ps_cluster_fails_clearly(tf_config, monkeypatch):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    with pytest.raises(StrategyError, match="needs a TF_CONFIG cluster with 'ps'") as raised:
        MobileBertQaSpec(uri="unused", distribution_strategy="parameter_server")
    assert ("unset" if tf_config is None else "localhost:1") in str(raised.value)


# -- single-process strategies ----------------------------------------------------------------

def make_spec(encoder, name, model_dir):
    # num_gpus=-1 (the default): every GPU, i.e. none here, so the CPU is the one device.
    return BertQaSpec(uri=encoder, model_dir=model_dir, distribution_strategy=name,
                      learning_rate=LEARNING_RATE, **SHAPE)


@pytest.fixture(scope="module")
def reference_run(encoder, train_shards, tmp_path_factory):
    """'off' (the default strategy) trains the reference losses and weights."""
    spec = make_spec(encoder, "off", str(tmp_path_factory.mktemp("off")))
    assert spec.strategy is tf.distribute.get_strategy()
    assert not tf.distribute.has_strategy()
    input_fn = input_pipeline.make_input_fn(spec, train_shards, True, GLOBAL_BATCH)
    model, losses = train(spec, input_fn)
    assert model.optimizer.iterations.numpy() == EPOCHS * STEPS_PER_EPOCH
    assert os.path.exists(os.path.join(spec.model_dir, "checkpoints", f"epoch-{EPOCHS:03d}.index"))
    return losses, model.get_weights()


def test_off_trains_and_lowers_the_loss(reference_run):
    assert tf.config.list_physical_devices("GPU") == []
    losses, _ = reference_run
    assert len(losses) == EPOCHS * STEPS_PER_EPOCH
    assert np.mean(losses[-2:]) < np.mean(losses[:2]) - 0.01, losses


@pytest.mark.parametrize("name,strategy_class", [
    ("one_device", tf.distribute.OneDeviceStrategy),
    ("mirrored", tf.distribute.MirroredStrategy),
])
def test_cpu_strategy_trains_like_off(name, strategy_class, encoder, train_shards, reference_run,
                                      tmp_path):
    spec = make_spec(encoder, name, str(tmp_path / name))
    strategy = spec.strategy
    assert type(strategy) is strategy_class
    assert [d.split("/")[-1] for d in strategy.extended.worker_devices] == ["device:CPU:0"]
    assert strategy.num_replicas_in_sync == 1
    input_fn = input_pipeline.make_input_fn(spec, train_shards, True, GLOBAL_BATCH)
    model, losses = train(spec, input_fn)
    assert model.distribute_strategy is strategy
    assert model.optimizer.iterations.numpy() == EPOCHS * STEPS_PER_EPOCH
    if name == "mirrored":
        assert all(isinstance(v, tf.distribute.DistributedValues) for v in model.trainable_variables)
    assert os.path.exists(os.path.join(spec.model_dir, "checkpoints", f"epoch-{EPOCHS:03d}.index"))

    ref_losses, ref_weights = reference_run
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
    assert_weights_close(model.get_weights(), ref_weights)


# -- two worker processes ------------------------------------------------------------------

def launch_training(encoder: str, shards, model_dir: str, *extra: str, tf_config=None):
    """tests/train_worker.py in its own process, on the module's shape and schedule."""
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", PYTHONPATH=fixtures.REPO_ROOT)
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    cmd = [sys.executable, WORKER_SCRIPT, "--encoder", encoder,
           "--train-records", ",".join(shards), "--model-dir", model_dir,
           "--seq-len", str(SHAPE["seq_len"]), "--batch-size", str(GLOBAL_BATCH),
           "--epochs", str(EPOCHS), "--steps-per-epoch", str(STEPS_PER_EPOCH),
           "--learning-rate", str(LEARNING_RATE), *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def launch_worker(index: int, cluster: dict, encoder: str, shards, model_dir: str,
                  weights_out: str):
    return launch_training(encoder, shards, model_dir, "--weights-out", weights_out,
                           tf_config={"cluster": cluster, "task": {"type": "worker", "index": index}})


def collect(procs, deadline: float):
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            outputs.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    reports = []
    for index, (code, out, err) in enumerate(outputs):
        assert code == 0, f"worker {index} exited {code}:\n{err[-4000:]}"
        lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
        assert len(lines) == 1, out
        reports.append(json.loads(lines[0][len("RESULT "):]))
    return reports


def data_parallel_reference(encoder, shards):
    """Two replicas' maths by hand, in one process, with no tf.distribute.

    Replica i takes shard i's next per-replica batch; as in Keras + Model Garden's
    AdamWeightDecay, each replica's loss is divided by the replica count, its gradients
    are clipped to global norm 1 (before the all-reduce, TF1 style), and the optimizer
    applies their sum. Returns (losses as Keras logs them: running mean per epoch, weights).
    """
    spec = BertQaSpec(uri=encoder, distribution_strategy="off", learning_rate=LEARNING_RATE,
                      **SHAPE)
    tf_keras.utils.set_random_seed(0)  # the seed the workers use for the span head
    model = spec._training_model()  # the model spec.train fits
    total_steps = EPOCHS * STEPS_PER_EPOCH
    optimizer = optimization.create_optimizer(LEARNING_RATE, total_steps, int(total_steps * 0.1))
    replicas = len(shards)
    iterators = [iter(input_pipeline.make_input_fn(spec, [s], True, GLOBAL_BATCH // replicas)())
                 for s in shards]
    variables = model.trainable_variables
    step_losses, logged = [], []
    for step in range(total_steps):
        summed, step_loss = [None] * len(variables), 0.0
        for iterator in iterators:
            x, y = next(iterator)
            with tf.GradientTape() as tape:
                start, end = model(x, training=True)
                loss = (0.5 * qa_loss(y["start_positions"], start)
                        + 0.5 * qa_loss(y["end_positions"], end))
                scaled = loss / replicas
            # Dense, as the optimizer makes them (DenseGradientsAdamW), then clipped per replica.
            grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g
                     for g in tape.gradient(scaled, variables)]
            grads, _ = tf.clip_by_global_norm(grads, optimizer.gradient_clip_norm)
            grads = [None if g is None else tf.convert_to_tensor(g) for g in grads]
            summed = [g if s is None else s if g is None else s + g for s, g in zip(summed, grads)]
            step_loss += float(loss) / replicas
        optimizer.apply_gradients([(g, v) for g, v in zip(summed, variables) if g is not None],
                                  experimental_aggregate_gradients=False)
        step_losses.append(step_loss)
        epoch_start = step - step % STEPS_PER_EPOCH
        logged.append(float(np.mean(step_losses[epoch_start:])))
    return logged, model.get_weights()


def test_multi_worker_mirrored_two_processes(encoder, train_shards, tmp_path):
    ports = fixtures.free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    model_dir = str(tmp_path / "model")  # shared, as on GCS: non-chief writes go to temp dirs
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    procs = [launch_worker(i, cluster, encoder, train_shards, model_dir,
                           str(tmp_path / f"worker-{i}.npz")) for i in range(2)]
    try:
        ref_losses, ref_weights = data_parallel_reference(encoder, train_shards)
    finally:
        workers = collect(procs, deadline)

    assert [r["task_index"] for r in workers] == [0, 1]
    assert [r["is_chief"] for r in workers] == [True, False]
    for r in workers:
        assert r["strategy"] == "CollectiveAllReduceStrategy"  # MultiWorkerMirroredStrategy
        assert r["num_replicas_in_sync"] == 2
        assert r["optimizer_iterations"] == EPOCHS * STEPS_PER_EPOCH
        assert len(r["losses"]) == EPOCHS * STEPS_PER_EPOCH

    # All-reduced gradients: both workers end bit-identical, and equal to the reference.
    assert workers[0]["weights_sha256"] == workers[1]["weights_sha256"]
    assert workers[0]["losses"] == workers[1]["losses"]
    final = [np.load(tmp_path / f"worker-{i}.npz") for i in range(2)]
    assert len(final[0].files) == len(ref_weights)
    for key in final[0].files:
        np.testing.assert_array_equal(final[0][key], final[1][key], err_msg=key)
    assert_weights_close([final[0][key] for key in final[0].files], ref_weights,
                         names=final[0].files)
    # With distribute_reduction_method 'auto' (-> 'sum'), tf_keras's logs under
    # MultiWorkerMirroredStrategy add up the already all-reduced loss of every worker:
    # num_workers x the true mean ('first' logs the mean). The trained weights are unaffected.
    scale = 2 if workers[0]["distribute_reduction_method"] == "auto" else 1
    # (Clipping after the all-reduce instead would already differ by 4e-5 at step 2.)
    np.testing.assert_allclose(np.array(workers[0]["losses"]) / scale, ref_losses, rtol=1e-6)
    assert np.mean(ref_losses[-2:]) < np.mean(ref_losses[:2]) - 0.01, ref_losses

    # Only the chief's checkpoints remain in the shared model_dir.
    assert sorted(os.listdir(os.path.join(model_dir, "checkpoints"))) == [
        "checkpoint", "epoch-001.data-00000-of-00001", "epoch-001.index",
        "epoch-002.data-00000-of-00001", "epoch-002.index"]
    assert not [d for d in os.listdir(model_dir) if "worker" in d]


# -- repeatability ---------------------------------------------------------------------------

@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
def test_same_seed_gives_the_same_model_in_separate_processes(tiny_encoder, train_shards, tmp_path, precision):
    """Seeded runs repeat bit for bit, dropout (in the exported encoder, or under mixed_bfloat16
    the natively rebuilt one) and shuffling included."""
    def launch(seed, name):
        return launch_training(tiny_encoder, train_shards, str(tmp_path / name), "--strategy", "off",
                               "--seed", str(seed), "--shuffle", "--mixed-precision", precision)

    # Dropout is really active in training (else equal runs would prove little): the same
    # batch through the encoder in training mode twice gives different outputs.
    import tensorflow_hub as hub

    encoder = hub.KerasLayer(tiny_encoder, trainable=True)
    ids = tf.constant([[101, 2054, 2003, 1037, 3231, 102] + [0] * 10])
    inputs = dict(input_word_ids=ids, input_mask=tf.cast(ids > 0, tf.int32), input_type_ids=tf.zeros_like(ids))
    once, twice = (encoder(inputs, training=True)["sequence_output"] for _ in range(2))
    assert float(tf.reduce_max(tf.abs(once - twice))) > 1e-3
    inference = [encoder(inputs, training=False)["sequence_output"] for _ in range(2)]
    assert float(tf.reduce_max(tf.abs(inference[0] - inference[1]))) == 0.0

    procs = [launch(7, "a"), launch(7, "b"), launch(8, "c")]
    first, second, other = collect(procs, time.monotonic() + WORKER_TIMEOUT_S)
    assert first["strategy"] == "_DefaultDistributionStrategy"
    assert first["precision"] == second["precision"] == precision
    assert first["losses"] == second["losses"]
    assert first["weights_sha256"] == second["weights_sha256"]
    assert other["weights_sha256"] != first["weights_sha256"]
    assert other["losses"] != first["losses"]


def test_processes_get_one_inter_op_thread_unless_they_ask_otherwise():
    """bert_qa._env's TF_NUM_INTEROP_THREADS=1 (why: its docstring; the evidence, with the real
    model, is benchmarks/repeatability.py), skipped where an NVIDIA device exists, in cluster
    tasks, or where the user set it."""
    script = ("import os, runpy; runpy.run_path(os.path.join({root!r}, 'bert_qa', '_env.py')); "
              "print(os.environ.get('TF_NUM_INTEROP_THREADS'))").format(root=fixtures.REPO_ROOT)

    def value(**env):
        clean = {k: v for k, v in os.environ.items()
                 if k not in ("TF_NUM_INTEROP_THREADS", "TF_CONFIG", "BERT_QA_SET_TF_NUM_INTEROP_THREADS")}
        return subprocess.run([sys.executable, "-c", script], env={**clean, **env}, check=True,
                              capture_output=True, text=True).stdout.strip()

    assert value() == ("None" if os.path.exists("/dev/nvidiactl") else "1")
    assert value(TF_NUM_INTEROP_THREADS="4") == "4"
    # Cluster tasks keep TensorFlow's pool (one thread deadlocked the parameter-server test),
    # also when started from a process whose _env set it (they inherit its environment).
    cluster = '{"cluster": {"worker": ["localhost:1"]}}'
    assert value(TF_CONFIG=cluster) == "None"
    assert value(TF_CONFIG=cluster, TF_NUM_INTEROP_THREADS="1", BERT_QA_SET_TF_NUM_INTEROP_THREADS="1") == "None"
    assert value(TF_CONFIG=cluster, TF_NUM_INTEROP_THREADS="3") == "3"  # the user's own value stays


# -- parameter-server cluster on localhost ---------------------------------------------------

SERVER_SCRIPT = os.path.join(fixtures.REPO_ROOT, "tests", "tf_server.py")


def test_parameter_server_cluster_trains_like_off(encoder, train_shards, reference_run, tmp_path):
    """A real cluster: one 'ps' and one 'worker' process serving, this test's chief coordinating.

    The chief runs ``spec.train`` (variables on the ps, steps scheduled on the worker through
    tf_keras's DatasetCreator path). One worker reading unsharded data in global batches does
    the maths 'off' does, so the final weights must match the reference run.
    """
    ports = fixtures.free_ports(3)
    cluster = {"chief": [f"localhost:{ports[0]}"], "worker": [f"localhost:{ports[1]}"],
               "ps": [f"localhost:{ports[2]}"]}

    def task(task_type):
        return {"cluster": cluster, "task": {"type": task_type, "index": 0}}

    servers = [subprocess.Popen([sys.executable, SERVER_SCRIPT], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, TF_USE_LEGACY_KERAS="1",
                                         PYTHONPATH=fixtures.REPO_ROOT,
                                         TF_CONFIG=json.dumps(task(task_type))))
               for task_type in ("ps", "worker")]
    chief = launch_training(encoder, train_shards, str(tmp_path / "model"),
                            "--strategy", "parameter_server",
                            "--weights-out", str(tmp_path / "chief.npz"), tf_config=task("chief"))
    try:
        (report,) = collect([chief], time.monotonic() + WORKER_TIMEOUT_S)
    finally:
        for server in servers:
            server.kill()
            server.communicate()

    assert report["strategy"] == "ParameterServerStrategyV2"
    assert report["optimizer_iterations"] == EPOCHS * STEPS_PER_EPOCH
    assert os.path.exists(str(tmp_path / "model" / "checkpoints" / f"epoch-{EPOCHS:03d}.index"))
    ref_losses, ref_weights = reference_run
    # Batch hooks ran on the coordinator (LogsCallback fetches the workers' RemoteValues).
    np.testing.assert_allclose(report["losses"], ref_losses, rtol=1e-5)
    weights = np.load(str(tmp_path / "chief.npz"))
    got = [weights[f"arr_{i}"] for i in range(len(weights.files))]
    assert_weights_close(got, ref_weights)
