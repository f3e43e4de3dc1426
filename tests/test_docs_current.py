"""The user documentation stays current with the code (issue 20).

- ``docs/configuration.md`` is exactly what ``pipeline/config_reference.py`` generates from the
  config dataclasses of ``pipeline/config.py``. Regenerate it with
  ``uv run --frozen python -m pipeline.config_reference > docs/configuration.md``.
  Shown to fail: with a field ``example_key: int = 0  # shown in the reference`` added to
  ``ModelConfig`` (temporarily, then removed), ``test_configuration_reference_is_current`` failed
  on the missing ``model.example_key`` row; ``test_an_added_field_changes_the_reference`` keeps
  that check in the suite without touching ``pipeline/config.py``.
- Every relative link in README.md, CHANGELOG.md, docs/*.md and benchmarks/README.md names a
  file or directory of this repository and, when it has ``#anchor``, a heading of that file; and
  every path in backticks under one of the repository's folders (`tests/test_locks.py`,
  `kubeflow/Dockerfile`) exists, so a moved or renamed file shows here.
"""
from __future__ import annotations

import dataclasses
import glob
import os
import re
import subprocess

import pytest

from bert_qa_pipeline.pipeline import config as config_module
from bert_qa_pipeline.pipeline import config_reference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = os.path.join(ROOT, "docs", "configuration.md")
REGENERATE = "uv run --frozen python -m pipeline.config_reference > docs/configuration.md"


def test_configuration_reference_is_current():
    with open(REFERENCE, encoding="utf-8") as f:
        written = f.read()
    assert written == config_reference.markdown(), (
        f"docs/configuration.md is out of date with pipeline/config.py: run {REGENERATE}")


def test_every_key_is_in_the_reference():
    text = config_reference.markdown()

    def keys(cls, path):
        hints = __import__("typing").get_type_hints(cls)
        for field in dataclasses.fields(cls):
            key = f"{path}.{field.name}" if path else field.name
            if dataclasses.is_dataclass(hints[field.name]):
                yield from keys(hints[field.name], key)
            else:
                yield key

    resources = {f.name for f in dataclasses.fields(config_module.ResourcesConfig)}
    for key in keys(config_module.PipelineConfig, ""):
        head, _, rest = key.partition(".")
        if head == "resources":
            step, _, leaf = rest.partition(".")
            assert step in resources and f"`resources.<step>.{leaf}`" in text, key
        else:
            assert f"`{key}`" in text, key


def test_an_added_field_changes_the_reference(monkeypatch):
    before = config_reference.markdown()
    extended = dataclasses.make_dataclass(
        "PipelineConfig",
        [("example_key", int, dataclasses.field(default=7, metadata={"help": "an added key"}))],
        bases=(config_module.PipelineConfig,))
    monkeypatch.setattr(config_reference, "ROOT", extended)
    after = config_reference.markdown()
    assert after != before
    assert "| `example_key` | int | `7` | an added key |" in after


# -- links ------------------------------------------------------------------------------

DOCUMENTS = ["README.md", "CHANGELOG.md", "benchmarks/README.md"] + sorted(
    os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|<[^>]*>", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: str) -> set:
    anchors, seen = set(), {}
    in_code = False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.lstrip().startswith("```"):
                in_code = not in_code
            if in_code or not line.startswith("#"):
                continue
            slug = _slug(line.lstrip("#").strip())
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _links(path: str):
    in_code = False
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.lstrip().startswith("```"):
                in_code = not in_code
                continue
            if not in_code:
                for target in LINK.findall(line):
                    yield number, target


@pytest.mark.parametrize("document", DOCUMENTS)
def test_local_links_resolve(document):
    path = os.path.join(ROOT, document)
    assert os.path.isfile(path), f"{document} is missing"
    broken = []
    for number, target in _links(path):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
            continue
        file_part, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
        if not os.path.exists(resolved):
            broken.append(f"{document}:{number}: {target} (no such file)")
        elif anchor and resolved.endswith(".md") and anchor not in _anchors(resolved):
            broken.append(f"{document}:{number}: {target} (no heading with that anchor)")
    assert not broken, "\n".join(broken)


CODE_PATH = re.compile(r"`([A-Za-z0-9_.-]+/[A-Za-z0-9_./-]*)`")


def _top_level_folders() -> set:
    """The repository's own top-level folders: those git tracks files in. A user's outputs
    (``runs/``, ignored by git) are not the repository's, so ``runs/default/...`` named in a
    document is not checked against whatever this machine happens to hold."""
    try:
        tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an unpacked archive)
        return {name for name in os.listdir(ROOT)
                if os.path.isdir(os.path.join(ROOT, name)) and (not name.startswith(".") or name == ".ci")}
    return {path.split("/", 1)[0] for path in tracked if "/" in path}


TOP_LEVEL = _top_level_folders()


@pytest.mark.parametrize("document", [d for d in DOCUMENTS if d != "CHANGELOG.md"])  # history may name old files
def test_repository_paths_named_exist(document):
    missing = []
    with open(os.path.join(ROOT, document), encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            for path in CODE_PATH.findall(line):
                if path.split("/", 1)[0] in TOP_LEVEL and not os.path.exists(os.path.join(ROOT, path)):
                    missing.append(f"{document}:{number}: {path}")
    assert not missing, "no such file in the repository:\n" + "\n".join(missing)
