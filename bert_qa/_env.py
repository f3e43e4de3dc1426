"""The one place that configures TensorFlow's process environment.

tf-models-official and ``hub.KerasLayer`` are tf_keras (Keras 2) code, while TF 2.21
defaults to Keras 3. ``TF_USE_LEGACY_KERAS`` must be set before TensorFlow is first
imported, so every entry point (the ``bert_qa`` package, the TFX executors, the CLI and
the tests) imports this module first. Container images set the same variables in their
environment because TFX's entrypoint imports TensorFlow before our code.

``TF_NUM_INTEROP_THREADS=1`` makes seeded CPU training repeatable bit for bit. With
TensorFlow's default inter-op pool, independent kernels of one training step run side by side
and their float32 gradients come out in an order that depends on scheduling, so two seeded
runs differ; with one inter-op thread they are identical (benchmarks/repeatability.py; its
figures and the cost of one thread are in benchmarks/README.md, "Repeatability").
Kernels still use every core (intra-op threads). Two kinds of process keep TensorFlow's default
pool: machines with an NVIDIA device, because GPU steps rely on host-side kernels running side
by side; and cluster tasks (``TF_CONFIG`` set: parameter-server and multi-worker tasks), because
a kernel that waits on another task would hold the only thread (docs/reliability.md). Set the
variable yourself to override this.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Child processes inherit the environment, so the value this module set is marked as ours: a
# cluster task started from a process that set it (a test, a launcher) drops it again.
_OURS = "BERT_QA_SET_TF_NUM_INTEROP_THREADS"
if os.path.exists("/dev/nvidiactl") or os.environ.get("TF_CONFIG"):
    if os.environ.pop(_OURS, None):
        os.environ.pop("TF_NUM_INTEROP_THREADS", None)
elif "TF_NUM_INTEROP_THREADS" not in os.environ:
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    os.environ[_OURS] = "1"
