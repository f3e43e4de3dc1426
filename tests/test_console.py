"""`bertqa` shows its own lines and real warnings; the libraries' start-up chatter only with --verbose."""
from __future__ import annotations

import os
import subprocess
import sys

from bert_qa_cli import console
from tests import fixtures


def _bertqa(*args):
    return subprocess.run([sys.executable, "-m", "bert_qa_cli.main", *args], capture_output=True, text=True,
                          timeout=300, cwd=fixtures.REPO_ROOT, env=dict(os.environ, PYTHONPATH=fixtures.REPO_ROOT))


def test_quiet_by_default_everything_with_verbose(tmp_path):
    # `export` imports TensorFlow, then refuses the missing SavedModel: our line must get through.
    quiet = _bertqa("export", "--saved-model", str(tmp_path / "none"), "--output-dir", str(tmp_path / "x"))
    loud = _bertqa("--verbose", "export", "--saved-model", str(tmp_path / "none"), "--output-dir", str(tmp_path / "x"))
    for run in (quiet, loud):
        assert run.returncode == 1
        assert f"bertqa export: error: SavedModel directory not found: {tmp_path / 'none'}" in run.stderr
    assert "I0000" in loud.stderr and "absl::InitializeLog" in loud.stderr  # what there is to hide
    assert "I0000" not in quiet.stderr and "absl::InitializeLog" not in quiet.stderr, quiet.stderr
    assert quiet.stderr.strip().splitlines() == [
        f"bertqa export: error: SavedModel directory not found: {tmp_path / 'none'}"]


def test_only_known_lines_are_dropped():
    cu_init = ("E0000 00:00:1795852688.710605   18377 cuda_platform.cc:52] failed call to cuInit: "
               "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n")
    assert console.is_noise(cu_init, nvidia_driver=False)
    assert not console.is_noise(cu_init, nvidia_driver=True)  # with a driver it is a real problem
    assert console.is_noise("I0000 00:00:1795852675.500905   18377 port.cc:153] oneDNN custom operations "
                            "are on.\n", nvidia_driver=False)
    for real in ("W0000 00:00:1795852675.5 18377 something.cc:1] a real warning\n",
                 "E0000 00:00:1795852675.5 18377 op_kernel.cc:1] OOM when allocating tensor\n",
                 "QaTrainer: epoch 1/2 step 10/78 loss 5.1\n", "UserWarning: your data has 3 empty contexts\n"):
        assert not console.is_noise(real, nvidia_driver=False), real


def test_known_records_and_warnings_are_dropped_at_their_source():
    """The library lines a run printed though the README said they were hidden (issue 22)."""
    import logging
    import warnings

    console._filter_python_side()
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Keep()
    for name in ("absl", "tensorflow"):
        logging.getLogger(name).addHandler(handler)
    try:
        logging.getLogger("absl").error("Execution %d failed.", 7)
        logging.getLogger("tensorflow").warning("Compiled the loaded model, but the compiled metrics have yet "
                                                "to be built. `model.compile_metrics` will be empty")
        logging.getLogger("absl").error("Something else failed")  # kept: not a known line
        logging.getLogger("tensorflow").warning("Compiled the model wrongly")
    finally:
        for name in ("absl", "tensorflow"):
            logging.getLogger(name).removeHandler(handler)
    assert records == ["Something else failed", "Compiled the model wrongly"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        console._filter_python_side()
        warnings.warn("    Warning: tf.lite.Interpreter is deprecated and is scheduled for deletion", UserWarning)
        warnings.warn("a real warning", UserWarning)
    assert [str(w.message) for w in caught] == ["a real warning"]
