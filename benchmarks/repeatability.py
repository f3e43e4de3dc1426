"""Bit-for-bit repeatability of seeded training, on an idle machine and next to busy processes.

    uv run python benchmarks/repeatability.py [--steps N] [--precision float32|mixed_bfloat16]

Trains the real all-MiniLM-L6-v2 for N steps four times in separate processes, with the same
seed, features and recipe: with one TensorFlow inter-op thread (what ``bert_qa._env`` sets)
and with TensorFlow's default inter-op pool, each once on an otherwise idle machine and once
while two busy-looping processes compete for the cores. It prints, per setting, whether the
two runs' weights are identical and how far apart they are. Needs an idle machine to mean
anything (the "idle" runs must be idle).

Why this is a benchmark and not a test: the scheduling-dependent summation shows with a real
model's many concurrent kernels; the suite's tiny encoders (2 layers) do not show it, so a test
with them could not fail.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SETTINGS = (("1 (bert_qa._env's default)", "1"), ("TensorFlow's default pool", "0"))


def worker(args) -> int:
    """One training run; saves its final weights as .npz."""
    from bert_qa import _env  # noqa: F401
    import numpy as np
    import tf_keras

    from bert_qa import input_pipeline
    from benchmarks.training import windowed_features

    spec, data = windowed_features(args.workdir, args.seq_len, args.questions)
    spec.optimizer_recipe = "huggingface"
    spec.mixed_precision = args.precision
    spec.model_dir = tempfile.mkdtemp(dir=args.workdir)
    tf_keras.utils.set_random_seed(42)
    input_fn = input_pipeline.make_input_fn(spec, [data.tfrecord_file], True, 16, shuffle=True, seed=42)
    model = spec.train(input_fn, epochs=1, steps_per_epoch=args.steps, verbose=0)
    np.savez(args.out, *model.get_weights())
    return 0


def run(args, interop: str, loaded: bool, out: str) -> None:
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 if loaded else 0)]
    try:
        subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", "--out", out,
                        "--steps", str(args.steps), "--precision", args.precision,
                        "--seq-len", str(args.seq_len), "--questions", str(args.questions),
                        "--workdir", args.workdir],
                       check=True, env=dict(os.environ, TF_NUM_INTEROP_THREADS=interop))
    finally:
        for process in busy:
            process.kill()
            process.wait()


def compare(first: str, second: str):
    import numpy as np

    a, b = np.load(first), np.load(second)
    diffs = [float(np.max(np.abs(a[k].astype(np.float64) - b[k]))) for k in a.files]
    digest = hashlib.sha256(b"".join(a[k].tobytes() for k in a.files)).hexdigest()[:12]
    return sum(d > 0 for d in diffs), len(diffs), max(diffs), digest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--precision", default="float32", choices=("float32", "mixed_bfloat16"))
    parser.add_argument("--seq-len", type=int, default=192)
    parser.add_argument("--questions", type=int, default=400)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="bert_qa_repeatability_")
    os.makedirs(args.workdir, exist_ok=True)
    if args.worker:
        return worker(args)
    rows = []
    for label, interop in SETTINGS:
        files = []
        for loaded in (False, True):
            files.append(os.path.join(args.workdir, f"weights_{interop}_{'loaded' if loaded else 'idle'}.npz"))
            print(f"training: inter-op {label}, {'next to 2 busy processes' if loaded else 'idle'} ...",
                  file=sys.stderr, flush=True)
            run(args, interop, loaded, files[-1])
        rows.append((label, *compare(*files)))
    print(f"repeatability: all-MiniLM-L6-v2, {args.precision}, seq_len {args.seq_len}, batch 16, "
          f"{args.steps} steps, seed 42; run A idle, run B next to two busy processes")
    print()
    print("| inter-op threads | weights identical | tensors that differ | max abs difference | digest A |")
    print("|---|---|---|---|---|")
    for label, differing, total, largest, digest in rows:
        print(f"| {label} | {'yes' if differing == 0 else 'no'} | {differing} of {total} | {largest:.1e} | {digest} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
