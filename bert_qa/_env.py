"""The one place that configures TensorFlow's process environment.

tf-models-official and ``hub.KerasLayer`` are tf_keras (Keras 2) code, while TF 2.21
defaults to Keras 3. ``TF_USE_LEGACY_KERAS`` must be set before TensorFlow is first
imported, so every entry point (the ``bert_qa`` package, the TFX executors, the CLI and
the tests) imports this module first. Container images set the same variable in their
environment because TFX's entrypoint imports TensorFlow before our code.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
