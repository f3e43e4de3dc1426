"""Reading an encoder and writing a serving SavedModel: bert_qa's way against TensorFlow's, side by side.

Every component that builds a spec reads the encoder's vocabulary; every native rebuild (training,
export) copies the encoder's weights; every trainer and export writes a serving SavedModel that the
TFLite converter, the evaluator and TF Serving then load. This times each, on the same files in one
process, both ways:

- vocabulary: ``tf.saved_model.load`` and read ``vocab_file`` / ``do_lower_case`` (the old
  ``find_vocab``), against ``hub_format.find_vocab`` (saved_model.pb's object graph and the
  variables checkpoint);
- weights: ``tf.saved_model.load(...).variables`` (the old native rebuild), against
  ``hub_format.saved_variables``;
- serving SavedModel: ``tf.saved_model.save`` with tf_keras' per-layer traces (the old
  ``export_saved_model``), against ``export_saved_model`` (the signature only); then loading
  each, and converting each to a float32 .tflite.

Before any figure it checks that both ways give the same answer: the same vocabulary and casing,
every weight equal to the bit, the same serving logits, and .tflite files of the same size.

    uv run --frozen python benchmarks/saved_model_io.py [--encoder default] [--seq-len 384] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bert_qa import _env  # noqa: F401,E402  (before TensorFlow)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def _timed(fn, repeats: int):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _save_with_traces(model, export_dir: str) -> None:
    """The old export_saved_model's save: tf_keras traces every layer's call functions."""
    from bert_qa.export.tflite import FEATURE_NAMES

    seq_len = int(model.inputs[0].shape[1])
    signature = {name: tf.TensorSpec([None, seq_len], tf.int32, name=name) for name in FEATURE_NAMES}

    @tf.function(input_signature=[signature])
    def serving(features):
        start, end = model([features[n] for n in model.input_names], training=False)
        return {"end_logits": end, "start_logits": start}

    tf.saved_model.save(model, export_dir, signatures={"serving_default": serving})


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", default="default", help="an encoder URI (default: packaged all-MiniLM-L6-v2)")
    parser.add_argument("--seq-len", type=int, default=384)
    parser.add_argument("--repeats", type=int, default=3, help="median of this many runs per row")
    args = parser.parse_args(argv)

    from bert_qa import encoders, hub_format
    from bert_qa.export.tflite import FEATURE_NAMES, export_saved_model
    from bert_qa.spec import BertQaSpec

    path = encoders.resolve(args.encoder)
    rows = []

    def old_vocab():
        loaded = tf.saved_model.load(path)
        return loaded.vocab_file.asset_path.numpy().decode(), bool(loaded.do_lower_case.numpy())

    old_t, old = _timed(old_vocab, args.repeats)
    new_t, new = _timed(lambda: hub_format.find_vocab(path), args.repeats)
    assert old == new, (old, new)
    rows.append(("vocabulary and casing", old_t, new_t))

    old_t, loaded = _timed(lambda: tf.saved_model.load(path), args.repeats)
    new_t, weights = _timed(lambda: hub_format.saved_variables(path), args.repeats)
    assert sorted(weights) == sorted(v.name for v in loaded.variables)
    assert all(np.array_equal(weights[v.name], v.numpy()) for v in loaded.variables)
    rows.append((f"encoder weights ({len(weights)} variables)", old_t, new_t))

    spec = BertQaSpec(uri=path, seq_len=args.seq_len, distribution_strategy="off")
    model = spec.create_native_float32_model()
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 2000, (2, args.seq_len)).astype("int32")
    inputs = {"input_word_ids": ids, "input_mask": np.ones_like(ids), "input_type_ids": np.zeros_like(ids)}
    work = tempfile.mkdtemp(prefix="saved_model_io_")
    dirs = {"old": [], "new": []}

    def save(kind):
        export_dir = os.path.join(work, f"{kind}_{len(dirs[kind])}")
        dirs[kind].append(export_dir)
        _save_with_traces(model, export_dir) if kind == "old" else export_saved_model(model, export_dir, spec=spec)
        return export_dir

    old_t, old_dir = _timed(lambda: save("old"), args.repeats)
    new_t, new_dir = _timed(lambda: save("new"), args.repeats)
    rows.append((f"save the serving SavedModel (seq {args.seq_len})", old_t, new_t))

    old_t, old_loaded = _timed(lambda: tf.saved_model.load(old_dir), args.repeats)
    new_t, new_loaded = _timed(lambda: tf.saved_model.load(new_dir), args.repeats)
    logits = [m.signatures["serving_default"](**{n: tf.constant(inputs[n]) for n in FEATURE_NAMES})
              for m in (old_loaded, new_loaded)]
    for key in ("start_logits", "end_logits"):
        np.testing.assert_array_equal(logits[0][key].numpy(), logits[1][key].numpy())
    rows.append(("load it", old_t, new_t))

    convert = lambda d: tf.lite.TFLiteConverter.from_saved_model(d).convert()  # noqa: E731
    old_t, old_tflite = _timed(lambda: convert(old_dir), args.repeats)
    new_t, new_tflite = _timed(lambda: convert(new_dir), args.repeats)
    assert abs(len(old_tflite) - len(new_tflite)) < 0.001 * len(old_tflite), (len(old_tflite), len(new_tflite))
    rows.append(("convert it to a float32 .tflite", old_t, new_t))

    size = {k: sum(os.path.getsize(os.path.join(d, f)) for d2 in v[:1] for d, _, fs in os.walk(d2) for f in fs)
            for k, v in dirs.items()}
    print(f"\nencoder {args.encoder} ({path}); median of {args.repeats}; SavedModel on disk: "
          f"{size['old'] / 1e6:.1f} MB with traces, {size['new'] / 1e6:.1f} MB without\n")
    print("| step | TensorFlow's way (s) | bert_qa (s) | speed-up |")
    print("|---|---:|---:|---:|")
    for name, old_s, new_s in rows:
        print(f"| {name} | {old_s:.2f} | {new_s:.2f} | {old_s / new_s:.1f}x |")


if __name__ == "__main__":
    main()
