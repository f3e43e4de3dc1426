"""One run per output directory, one trainer per resume state; a killed holder frees its lock."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from bert_qa import locks
from tests import fixtures


def test_a_second_owner_is_refused_with_the_holder_named(tmp_path):
    lock = str(tmp_path / "out" / ".lock")
    with locks.exclusive(lock, "output directory out"):
        with pytest.raises(locks.LockedError, match=rf"output directory out is in use by .*\"pid\": {os.getpid()}"):
            with locks.exclusive(lock, "output directory out"):
                pass
    with locks.exclusive(lock, "output directory out"):  # released on exit
        pass


def test_a_killed_holder_leaves_no_lock_behind(tmp_path):
    lock = str(tmp_path / ".lock")
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from bert_qa import locks
        with locks.exclusive({lock!r}, "state"):
            print("held", flush=True)
            time.sleep(600)
    """)], stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=fixtures.REPO_ROOT))
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(locks.LockedError, match=rf"\"pid\": {child.pid}"):
            with locks.exclusive(lock, "state"):
                pass
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        with locks.exclusive(lock, "state"):  # no stale lock to delete by hand
            pass
    finally:
        child.kill()


def test_second_bertqa_run_on_one_output_is_refused(tmp_path, capsys):
    from bert_qa_cli.main import main
    from bert_qa_pipeline.pipeline.runner import RUN_LOCK_FILE

    output = tmp_path / "run"
    with locks.exclusive(str(output / RUN_LOCK_FILE), f"output directory {output}"):
        assert main(["run", "--output", str(output)]) == 1  # the input (the directory) is busy
    err = capsys.readouterr().err
    assert f"output directory {output} is in use by" in err and "Traceback" not in err
    assert sorted(os.listdir(output)) == [RUN_LOCK_FILE]  # nothing of the run was started


def test_two_trainers_never_share_a_resume_state(tmp_path):
    from bert_qa_pipeline.components.qa_trainer.executor import owning

    state = str(tmp_path / "resume" / "abc")
    os.makedirs(state)
    with owning(state):
        with pytest.raises(locks.LockedError, match="training state"):
            with owning(state):
                pass
