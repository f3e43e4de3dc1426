"""The components report through ``logging`` (no ``print``), and a local run shows their lines on
stderr as before: one message a line, once, whatever handler the root logger has."""
import ast
import glob
import logging
import os
import subprocess
import sys
import textwrap

from bert_qa_pipeline.pipeline import runner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_no_component_module_prints():
    printing = []
    for path in glob.glob(os.path.join(ROOT, "components", "**", "*.py"), recursive=True):
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                printing.append(f"{os.path.relpath(path, ROOT)}:{node.lineno}")
    assert not printing, f"report with logging.getLogger(__name__), not print: {printing}"


CHILD = textwrap.dedent("""
    import logging, sys
    logging.basicConfig()  # a root handler at WARNING, as TensorFlow's import leaves one
    from bert_qa_pipeline.pipeline import runner
    log = logging.getLogger("bert_qa_pipeline.components.qa_trainer.executor")
    log.info("before the run (not shown)")
    with runner.progress_on_stderr():
        log.info("QaTrainer: epoch 1/2 step 10/78 loss 5.1000")
        log.warning("SquadExampleGen: warning: 2 question ids occur in several splits")
        logging.getLogger("bert_qa_pipeline.components").debug("debug (not shown)")
    log.info("after the run (not shown)")
    log.warning("after the run, a warning")
""")


def test_a_run_shows_the_components_lines_once_as_printed_before():
    child = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr
    assert child.stdout == ""
    assert child.stderr.splitlines() == [
        "QaTrainer: epoch 1/2 step 10/78 loss 5.1000",
        "SquadExampleGen: warning: 2 question ids occur in several splits",
        "WARNING:bert_qa_pipeline.components.qa_trainer.executor:after the run, a warning",
    ]


def test_records_still_reach_caplog_outside_a_run(caplog):
    caplog.set_level(logging.INFO, logger=runner.PROGRESS_LOGGER)
    logging.getLogger("bert_qa_pipeline.components.tflite_pusher.executor").info("TflitePusher: pushed")
    assert [r.getMessage() for r in caplog.records] == ["TflitePusher: pushed"]
