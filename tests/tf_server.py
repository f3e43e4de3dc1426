"""A parameter-server or worker task of the ParameterServerStrategy test (tests/test_strategies.py).

Reads TF_CONFIG, starts a ``tf.distribute.Server`` for its task and serves until killed, which is
all the non-chief tasks of a parameter-server cluster do: the chief (the coordinator) places
variables on the 'ps' tasks and schedules training steps on the 'worker' tasks.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bert_qa import _env  # noqa: F401,E402
import tensorflow as tf  # noqa: E402


def main() -> int:
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    server = tf.distribute.Server(resolver.cluster_spec(), job_name=resolver.task_type,
                                  task_index=resolver.task_id, protocol="grpc", start=True)
    print(f"SERVING {resolver.task_type}:{resolver.task_id}", flush=True)
    server.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
