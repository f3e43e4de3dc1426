"""The import contracts of pyproject.toml (``[tool.importlinter]``) hold, and can fail.

``bin/lint-imports`` runs import-linter over the code as it is imported (``bert_qa_pipeline.*``;
the script says why it needs a directory of links). It passes today; each contract is also shown
to break on one import that violates it, in a copy of that directory with a probe module added,
so the check is not vacuous (a contract naming modules grimp never found would not even run).
By hand: adding ``import tfx`` to ``bert_qa/windowing_params.py`` made ``bin/lint-imports`` exit 1
with "The library knows nothing of TFX, Beam, KFP or TFMA BROKEN" (then reverted).
"""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINT_IMPORTS = os.path.join(os.path.dirname(sys.executable), "lint-imports")
PIPELINE_FOLDERS = ("components", "pipeline", "kubeflow")


def _run(args, cwd):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "LINT_IMPORTS": LINT_IMPORTS})


def test_contracts_kept():
    result = _run([os.path.join(ROOT, "bin", "lint-imports")], ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout, result.stdout
    analyzed = int(result.stdout.split("Analyzed ", 1)[1].split(" files", 1)[0])
    assert analyzed > 100, result.stdout  # the three orchestration folders were found


def _mirror(source: str, target: str) -> None:
    """``source``'s tree as real folders of linked files (so probes can be added beside them)."""
    for folder, dirs, files in os.walk(source):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        here = os.path.join(target, os.path.relpath(folder, source))
        os.makedirs(here, exist_ok=True)
        for name in files:
            if name.endswith(".py"):
                os.symlink(os.path.join(folder, name), os.path.join(here, name))


@pytest.mark.parametrize("probe, source, broken", [
    ("bert_qa/_probe.py", "import tfx\n", "The library knows nothing of TFX"),
    ("bert_qa/_probe.py", "from bert_qa_pipeline.components import keys\n", "Layers"),
    ("bert_qa_pipeline/pipeline/_probe.py", "from bert_qa_pipeline.kubeflow import compile\n", "Layers"),
    ("bert_qa_pipeline/components/qa_trainer/_probe.py",
     "from bert_qa_pipeline.components.qa_evaluator import executor\n", "Components do not import"),
], ids=["library-imports-tfx", "library-imports-components", "pipeline-imports-kubeflow",
        "component-imports-component"])
def test_a_violating_import_breaks_its_contract(tmp_path, probe, source, broken):
    view = str(tmp_path)
    for package in ("bert_qa", "bert_qa_cli"):
        _mirror(os.path.join(ROOT, package), os.path.join(view, package))
    _mirror(os.path.join(ROOT, "bert_qa_pipeline"), os.path.join(view, "bert_qa_pipeline"))
    for folder in PIPELINE_FOLDERS:
        _mirror(os.path.join(ROOT, folder), os.path.join(view, "bert_qa_pipeline", folder))
    with open(os.path.join(view, probe), "w") as f:
        f.write(source)
    result = _run([LINT_IMPORTS, os.path.join(ROOT, "pyproject.toml"), "--no-cache"], view)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 kept, 1 broken" in result.stdout, result.stdout
    broken_section = result.stdout.split("Broken contracts", 1)[1]
    assert broken in broken_section and "_probe" in broken_section, result.stdout
