"""The one place that configures TensorFlow's process environment.

tf-models-official and ``hub.KerasLayer`` are tf_keras (Keras 2) code, while TF 2.21
defaults to Keras 3. ``TF_USE_LEGACY_KERAS`` must be set before TensorFlow is first
imported, so every entry point (the ``bert_qa`` package, the TFX executors, the CLI and
the tests) imports this module first. Container images set the same variables in their
environment because TFX's entrypoint imports TensorFlow before our code.

``TF_NUM_INTEROP_THREADS=1`` makes seeded CPU training repeatable bit for bit. With
TensorFlow's default inter-op pool, independent kernels of one training step run side by side
and their float32 gradients come out in an order that depends on scheduling: measured here,
two float32 runs of 20 steps, one on an idle machine and one next to two busy processes,
differed in 103 of 106 weights (by up to 4e-6). With one inter-op thread they are identical.
Kernels still use every core (intra-op threads). Float32 steps were 6% slower on 2 cores;
mixed_bfloat16 steps were not slower. Machines with an NVIDIA device keep TensorFlow's
default, because GPU steps rely on host-side kernels running side by side. Set the variable
yourself to override this.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if not os.path.exists("/dev/nvidiactl"):
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
