"""GPU training speed: examples/s per GPU of the QA model, by encoder, precision and GPU count.

    uv run python benchmarks/gpu_speed.py                         # every cell, all GPUs here
    uv run python benchmarks/gpu_speed.py --encoders minilm --precisions mixed_float16

Cells (a table row each): the encoder, all-MiniLM-L6-v2 (the default: 6 layers, hidden 384)
and a BERT-base-shaped one (12 layers, hidden 768, 12 heads, intermediate 3072, random
weights: speed does not depend on them), at seq_len 384; float32 or mixed precision
(tf_keras's ``mixed_float16`` policy); 1 GPU (OneDeviceStrategy) or all of them
(MirroredStrategy, global batch = batch per GPU x GPUs).

Each cell trains the QA model as QaTrainer does (span labeler over the encoder, mean of the
start and end losses, the ``huggingface`` AdamW recipe with clipping) on synthetic windowed
features held in memory, so that the figure is the accelerators' and not the input
pipeline's: ``--warmup-steps`` untimed steps (tracing, autotuning), then ``--steps`` timed.

Precisions: ``float32`` trains exactly QaTrainer's model, the encoder's TF Hub-format export
loaded with ``hub.KerasLayer``. A SavedModel's graph computes in float32 whatever the Keras
policy, so ``mixed_float16`` builds the same encoder in this process (Model Garden's
BertEncoder; MiniLM with its checkpoint's weights, assigned as ``bert_qa.checkpoint_import``
does) under the policy, with float32 logits and dynamic loss scaling; ``float32-keras`` is that
in-process model in float32, so that the table separates the precision's effect from the
path's. Mixed precision pays off on GPUs with tensor cores (compute capability >= 7.0: V100,
T4, A100, L4, H100).

A cell that does not fit in GPU memory is reported as OOM (try a smaller --batch-per-gpu).
On a machine without a GPU the script says so and exits 0.
"""
from __future__ import annotations

import argparse
import gc
import glob
import os
import platform
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ENCODERS = ("minilm", "bert-base")
PRECISIONS = ("float32", "float32-keras", "mixed_float16")
GPU_COUNTS = ("1", "all")
# Per GPU; BERT-base at 384 tokens trains with 12 per 12 GB in float32 (google-research/bert).
DEFAULT_BATCH = {"minilm": 32, "bert-base": 12}
QUERY_LEN = 64
NO_GPU_MESSAGE = "gpu_speed: no GPU on this machine ({why}): nothing to measure; exiting."


def quick_no_gpu_reason():
    """Why there is certainly no usable NVIDIA GPU here, without importing TensorFlow; or None."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU"
    if not glob.glob("/dev/nvidia[0-9]*") and not shutil.which("nvidia-smi"):
        return "no /dev/nvidia* device and no nvidia-smi"
    return None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoders", default=",".join(ENCODERS),
                        help=f"comma-separated, among {ENCODERS} (default: both)")
    parser.add_argument("--precisions", default=",".join(PRECISIONS),
                        help=f"comma-separated, among {PRECISIONS} (default: all)")
    parser.add_argument("--gpus", default=",".join(GPU_COUNTS),
                        help="comma-separated GPU counts: 1 (OneDeviceStrategy), all (MirroredStrategy "
                             "over every visible GPU), or a number (default: 1,all)")
    parser.add_argument("--seq-len", type=int, default=384, help="tokens per window (default 384)")
    parser.add_argument("--batch-per-gpu", type=int, default=0,
                        help=f"examples per GPU per step (default per encoder: {DEFAULT_BATCH})")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per cell (default 40)")
    parser.add_argument("--warmup-steps", type=int, default=10, help="untimed steps first (default 10)")
    parser.add_argument("--cpu", action="store_true",
                        help="run the cells on the CPU when there is no GPU (checks the script; the "
                             "figures are not GPU figures)")
    args = parser.parse_args(argv)
    args.encoders = _choices(args.encoders, ENCODERS, "--encoders", parser)
    args.precisions = _choices(args.precisions, PRECISIONS, "--precisions", parser)
    args.gpus = [g.strip() for g in args.gpus.split(",") if g.strip()]
    for g in args.gpus:
        if g != "all" and not (g.isdigit() and int(g) >= 1):
            parser.error(f"--gpus: {g!r} is not 'all' or a count >= 1")
    if args.seq_len < QUERY_LEN + 8 or args.steps < 1 or args.warmup_steps < 1:
        parser.error(f"--seq-len must be >= {QUERY_LEN + 8}, --steps and --warmup-steps >= 1")
    return args


def _choices(text, allowed, flag, parser):
    values = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        parser.error(f"{flag}: {bad or text!r} not among {allowed}")
    return values


def main(argv=None) -> int:
    args = parse_args(argv)
    reason = None if args.cpu else quick_no_gpu_reason()
    if reason:
        print(NO_GPU_MESSAGE.format(why=reason))
        return 0

    from bert_qa import _env  # noqa: F401
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and not args.cpu:
        why = ("TensorFlow sees none" if tf.test.is_built_with_cuda() else
               "this TensorFlow has no CUDA support: install the project's gpu extra, "
               "`uv sync --extra gpu`")
        print(NO_GPU_MESSAGE.format(why=why))
        return 0
    for gpu in gpus:  # allocate as needed: cells run one after another in this process
        tf.config.experimental.set_memory_growth(gpu, True)
    return measure(args, gpus)


# -- the cells ----------------------------------------------------------------------------------

class Encoder:
    """One encoder: its TF Hub-format export (float32 cells) and an in-process builder."""

    def __init__(self, name: str, workdir: str):
        from bert_qa import checkpoint_import, hub_format, pretrained

        self.name = name
        ckpt = pretrained.minilm_checkpoint_dir()
        self.vocab_file = os.path.join(ckpt, "vocab.txt")
        if name == "minilm":
            self.config = checkpoint_import.encoder_config_from_hf(checkpoint_import.read_config(ckpt))
            self.hub_dir = pretrained.default_encoder_dir()
            self._checkpoint = ckpt
        else:  # BERT-base's shape, random weights; MiniLM's vocab is bert-base-uncased's
            self.config = hub_format.EncoderConfig(hidden_size=768, num_hidden_layers=12,
                                                   num_attention_heads=12, intermediate_size=3072)
            self.hub_dir = os.path.join(workdir, "bert_base_random")
            hub_format.export_encoder(hub_format.build_bert_encoder(self.config), self.hub_dir,
                                      self.vocab_file, True)
            self._checkpoint = None

    def qa_model(self, precision: str, seq_len: int):
        """QaTrainer's model ("float32"), or the same built in-process under the policy
        ("float32-keras": float32, "mixed_float16")."""
        import tensorflow as tf
        import tf_keras
        from official.nlp.modeling import models

        from bert_qa import checkpoint_import, hub_format, modeling

        if precision == "float32":
            return modeling.create_qa_model(self.hub_dir, seq_len)[0]
        encoder = hub_format.build_bert_encoder(self.config)
        inputs = [tf_keras.layers.Input(shape=(seq_len,), dtype=tf.int32, name=n) for n in modeling.INPUT_NAMES]
        outputs = encoder(dict(zip(modeling.INPUT_NAMES, inputs)))
        if self._checkpoint:  # the real MiniLM weights, as the conversion assigns them
            checkpoint_import.assign_weights(encoder, self.config,
                                             checkpoint_import.load_hf_tensors(self._checkpoint))
        core = tf_keras.Model(inputs=inputs, outputs=[outputs["sequence_output"], outputs["pooled_output"]])
        labeler = models.BertSpanLabeler(
            network=core, initializer=tf_keras.initializers.TruncatedNormal(stddev=self.config.initializer_range))
        start, end = labeler(inputs)
        # float32 logits (Keras's mixed-precision advice: the loss in float32)
        start = tf_keras.layers.Activation("linear", dtype="float32", name="start_positions")(start)
        end = tf_keras.layers.Activation("linear", dtype="float32", name="end_positions")(end)
        return tf_keras.Model(inputs=inputs, outputs=[start, end])


def synthetic_dataset(global_batch: int, seq_len: int, vocab_size: int, examples: int = 1024):
    """Windowed training features' shapes and value ranges (query, then context, then padding)."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    lengths = rng.integers(max(seq_len // 2, QUERY_LEN + 8), seq_len + 1, size=examples)
    positions = np.arange(seq_len)[None, :]
    mask = (positions < lengths[:, None]).astype(np.int32)
    ids = rng.integers(1000, vocab_size, size=(examples, seq_len)).astype(np.int32) * mask
    types = ((positions >= QUERY_LEN) & (mask == 1)).astype(np.int32)
    start = rng.integers(QUERY_LEN, lengths).astype(np.int32)
    end = np.minimum(start + rng.integers(0, 10, size=examples), lengths - 1).astype(np.int32)
    x = {"input_word_ids": ids, "input_mask": mask, "input_type_ids": types}
    y = {"start_positions": start, "end_positions": end}
    return (tf.data.Dataset.from_tensor_slices((x, y)).cache().repeat()
            .batch(global_batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE))


def strategy_for(count, gpus, cpu: bool):
    """(strategy, devices, name); None when the machine has fewer GPUs than asked."""
    import tensorflow as tf

    if cpu and not gpus:
        return (tf.distribute.OneDeviceStrategy("/cpu:0"), 1, "OneDevice(CPU)") if count == "1" else None
    n = len(gpus) if count == "all" else int(count)
    if n > len(gpus):
        return None
    if n == 1:
        return tf.distribute.OneDeviceStrategy("/gpu:0"), 1, "OneDevice"
    return tf.distribute.MirroredStrategy([f"/gpu:{i}" for i in range(n)]), n, f"Mirrored({n})"


def run_cell(encoder: Encoder, precision: str, strategy, batch_per_device: int, devices: int, args) -> float:
    """Training examples/s over the timed steps."""
    import tensorflow as tf
    import tf_keras

    from bert_qa import optimization
    from bert_qa.spec import qa_loss

    class StepTimer(tf_keras.callbacks.Callback):  # numpy logs: each step waits for the devices
        def on_train_batch_begin(self, batch, logs=None):
            if batch == args.warmup_steps:
                self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.end = time.perf_counter()

    global_batch = batch_per_device * devices
    total = args.warmup_steps + args.steps
    tf_keras.backend.clear_session()
    gc.collect()
    tf_keras.mixed_precision.set_global_policy("mixed_float16" if precision == "mixed_float16" else "float32")
    try:
        with strategy.scope():
            model = encoder.qa_model(precision, args.seq_len)
            optimizer = optimization.create_optimizer("huggingface", 1e-4, total,
                                                      optimization.warmup_steps(total))
            if precision == "mixed_float16":
                optimizer = tf_keras.mixed_precision.LossScaleOptimizer(optimizer)
            model.compile(optimizer=optimizer, loss=qa_loss, loss_weights=[0.5, 0.5])
        timer = StepTimer()
        model.fit(synthetic_dataset(global_batch, args.seq_len, encoder.config.vocab_size),
                  steps_per_epoch=total, epochs=1, verbose=0, callbacks=[timer])
        return args.steps * global_batch / (timer.end - timer.start)
    finally:
        tf_keras.mixed_precision.set_global_policy("float32")
        gc.collect()


def measure(args, gpus) -> int:
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # e.g. "no gradients for pooler_transform": the span head ignores it
    details = []
    for gpu in gpus:
        d = tf.config.experimental.get_device_details(gpu)
        cc = d.get("compute_capability")
        details.append(f"{d.get('device_name', gpu.name)}" + (f" (cc {cc[0]}.{cc[1]})" if cc else ""))
    where = ", ".join(details) if gpus else f"CPU only ({platform.processor() or platform.machine()})"
    print(f"gpu_speed: {len(gpus)} GPU(s): {where}; TensorFlow {tf.__version__}; seq_len {args.seq_len}; "
          f"{args.warmup_steps} warm-up + {args.steps} timed steps per cell", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="gpu_speed_") as workdir:
        for name in args.encoders:
            encoder = Encoder(name, workdir)
            batch = args.batch_per_gpu or DEFAULT_BATCH[name]
            for precision in args.precisions:
                for count in args.gpus:
                    chosen = strategy_for(count, gpus, args.cpu)
                    if chosen is None:
                        rows.append((name, precision, count, "-", batch, "-", None, None, "fewer GPUs"))
                        continue
                    strategy, devices, label = chosen
                    print(f"gpu_speed: {name} {precision} {label} batch {batch}/device ...", flush=True)
                    try:
                        speed = run_cell(encoder, precision, strategy, batch, devices, args)
                        note = ""
                    except tf.errors.ResourceExhaustedError:
                        speed, note = None, "OOM: lower --batch-per-gpu"
                    rows.append((name, precision, str(devices), label, batch, batch * devices, speed,
                                 speed / devices if speed else None, note))
    print()
    print("| encoder | precision | GPUs | strategy | batch/GPU | global batch | examples/s | examples/s per GPU "
          "| vs 1 GPU float32 | note |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    baselines = {row[0]: row[6] for row in rows if row[1] == "float32" and row[2] == "1" and row[6]}
    for row in rows:
        name, precision, devices, label, batch, global_batch, speed, per_gpu, note = row
        ratio = f"{speed / baselines[name]:.2f}x" if speed and name in baselines else "-"
        print(f"| {name} | {precision} | {devices} | {label} | {batch} | {global_batch} | "
              f"{f'{speed:,.1f}' if speed else '-'} | {f'{per_gpu:,.1f}' if per_gpu else '-'} | {ratio} | {note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
