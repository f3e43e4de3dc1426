"""The wheel installs only the project's own top-level names, and every package folder.

``components``, ``pipeline`` and ``kubeflow`` are folders of this repository but would be
other distributions' import names (Kubeflow's SDKs live under ``kubeflow``), so they install
under ``bert_qa_pipeline``. Builds the real wheel with setuptools' PEP 517 backend from a copy
of the sources (the repository stays clean) and reads its file list.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

from tests import fixtures

SOURCES = ("bert_qa", "bert_qa_cli", "bert_qa_pipeline", "components", "pipeline", "kubeflow")
INSTALLED_AS = {"components": "bert_qa_pipeline/components", "pipeline": "bert_qa_pipeline/pipeline",
                "kubeflow": "bert_qa_pipeline/kubeflow"}


def _build_wheel(tmp_path) -> zipfile.ZipFile:
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        shutil.copytree(os.path.join(fixtures.REPO_ROOT, name), src / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(fixtures.REPO_ROOT, name), src / name)
    dist = tmp_path / "dist"
    proc = subprocess.run([sys.executable, "-c", "import sys; from setuptools import build_meta; "
                           "print(build_meta.build_wheel(sys.argv[1]))", str(dist)],
                          cwd=src, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [wheel] = list(dist.glob("*.whl"))
    return zipfile.ZipFile(wheel)


def test_wheel_installs_only_the_projects_namespaces(tmp_path):
    names = _build_wheel(tmp_path).namelist()
    top_level = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert top_level == {"bert_qa", "bert_qa_cli", "bert_qa_pipeline"}

    # Every package folder of the repository is in the wheel, where the imports expect it.
    for name in SOURCES:
        for directory, _, files in os.walk(os.path.join(fixtures.REPO_ROOT, name)):
            if "__init__.py" not in files:
                continue
            relative = os.path.relpath(directory, fixtures.REPO_ROOT)
            head, _, rest = relative.partition(os.sep)
            installed = "/".join(filter(None, [INSTALLED_AS.get(head, head), rest.replace(os.sep, "/")]))
            assert f"{installed}/__init__.py" in names, f"{relative} is missing from the wheel"
    assert "bert_qa_pipeline/components/qa_trainer/executor.py" in names
