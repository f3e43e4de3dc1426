"""One training process for tests/test_strategies.py: a worker of the two-process
MultiWorkerMirroredStrategy test, or (``--strategy off``, no TF_CONFIG) one of the runs of the
same-seed-same-model test.

With the default strategy and TF_CONFIG set: builds a BertQaSpec with ``distribution_strategy=
'multi_worker_mirrored'`` and trains it with ``spec.train``. Worker i reads TFRecord shard i
(tf.data FILE auto-sharding) in per-replica batches of global_batch / num_workers. Prints
one JSON line prefixed ``RESULT `` (replicas, per-step losses as Keras logs them, weight
digest) and saves the final weights to --weights-out.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bert_qa import _env  # noqa: F401,E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--encoder", required=True)
    parser.add_argument("--train-records", required=True, help="comma-separated TFRecord shards")
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8, help="global batch size")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps-per-epoch", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0,
                        help="for the span head's initial weights, shuffling and dropout")
    parser.add_argument("--shuffle", action="store_true")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--weights-out", help="save the final weights here (.npz)")
    parser.add_argument("--strategy", default="multi_worker_mirrored")
    parser.add_argument("--mixed-precision", default="float32")
    args = parser.parse_args()
    shards = args.train_records.split(",")
    shape = dict(seq_len=args.seq_len, query_len=16, doc_stride=32)

    # MultiWorkerMirroredStrategy must exist before any other TF op runs in the process;
    # the spec's constructor creates it, so it comes first.
    from bert_qa.spec import BertQaSpec

    spec = BertQaSpec(uri=args.encoder, model_dir=args.model_dir, learning_rate=args.learning_rate,
                      distribution_strategy=args.strategy, mixed_precision=args.mixed_precision, **shape)

    import numpy as np
    import tf_keras
    from bert_qa import callbacks, input_pipeline

    class StepLosses(callbacks.LogsCallback):  # batch hooks allowed under parameter servers too
        def __init__(self):
            super().__init__()
            self.losses = []

        def on_train_batch_end(self, batch, logs=None):
            self.losses.append(callbacks.scalar(logs, "loss"))

    input_fn = input_pipeline.make_input_fn(spec, shards, is_training=True,
                                            batch_size=args.batch_size, shuffle=args.shuffle,
                                            seed=args.seed)
    tf_keras.utils.set_random_seed(args.seed)
    recorder = StepLosses()
    model = spec.train(input_fn, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
                       callbacks=[recorder], verbose=0)
    # Under a mixed policy spec.train returns the weights in a fresh float32 model (no optimizer,
    # default reduction): those two are reported for the model Keras trained only.
    trained_model_returned = spec.training_precision == "float32"
    weights = model.get_weights()
    digest = hashlib.sha256()
    for w in weights:
        digest.update(np.ascontiguousarray(w, dtype=np.float32).tobytes())
    if args.weights_out:
        np.savez(args.weights_out, *weights)
    tf_config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    print("RESULT " + json.dumps({
        "task_index": tf_config.get("task", {}).get("index"),
        "strategy": type(spec.strategy).__name__,
        "num_replicas_in_sync": spec.strategy.num_replicas_in_sync,
        "is_chief": spec.strategy.extended.should_checkpoint,
        "losses": recorder.losses,
        "precision": spec.training_precision,
        "distribute_reduction_method": model.distribute_reduction_method if trained_model_returned else None,
        "weights_sha256": digest.hexdigest(),
        "optimizer_iterations": int(model.optimizer.iterations.numpy()) if trained_model_returned else None,
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
