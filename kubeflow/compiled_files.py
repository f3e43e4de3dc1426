"""The file `bertqa compile` wrote, read for the target it is submitted to, before any request.

Pure (no network, no credentials): the Vertex PipelineJob JSON (``--target vertex``) or the
Kubeflow PipelineSpec YAML (``--target kfp``). A file of the other target, or one that is
neither (plain text, a truncated file), is a ``CompiledFileError`` saying what the file is and
what the target takes, judged by its content, not its name.
"""
from __future__ import annotations

import json

import yaml

from bert_qa.errors import read_utf8_file

TAKES = {"vertex": "the PipelineJob JSON written by `bertqa compile --target vertex`",
         "kfp": "the PipelineSpec YAML written by `bertqa compile --target kfp`"}
_SPEC_KEYS = ("root", "pipelineInfo", "deploymentSpec", "components")


class CompiledFileError(ValueError):
    """The compiled pipeline file is missing, unreadable, or not what the target takes."""


def _is_spec(document) -> bool:
    return isinstance(document, dict) and any(key in document for key in _SPEC_KEYS)


def _what(document) -> str:
    if isinstance(document, str):
        first = document.strip().splitlines()[0] if document.strip() else ""
        return f"plain text ({first[:40]!r})"
    return f"a {type(document).__name__}" if not isinstance(document, dict) else \
        f"a mapping without a pipeline spec (keys: {sorted(map(str, document))[:5]})"


def read_compiled(path: str, target: str) -> dict:
    """The PipelineSpec in ``path`` for ``target`` ("vertex" or "kfp"); CompiledFileError
    naming the file, what it holds and what the target takes otherwise."""
    text = read_utf8_file(path, "compiled pipeline", CompiledFileError,
                          not_text_hint=f"not a compiled pipeline; give {TAKES[target]}")
    if not text.strip():
        raise CompiledFileError(f"compiled pipeline {path}: is empty; give {TAKES[target]}")
    try:
        document, json_error = json.loads(text), None
    except json.JSONDecodeError as err:
        document, json_error = None, err
    if target == "vertex":
        if json_error is None:
            if isinstance(document, dict) and _is_spec(document.get("pipelineSpec")):
                return document["pipelineSpec"]
            if _is_spec(document):
                return document
            raise CompiledFileError(f"compiled pipeline {path}: is JSON but holds no pipeline spec "
                                    f"({_what(document)}); Vertex AI takes {TAKES['vertex']}")
        try:
            docs = [doc for doc in yaml.safe_load_all(text) if doc is not None]
        except yaml.YAMLError:
            docs = []
        if docs and _is_spec(docs[0]):
            raise CompiledFileError(f"compiled pipeline {path}: is a Kubeflow PipelineSpec YAML (compile --target "
                                    f"kfp); Vertex AI takes {TAKES['vertex']}")
        raise CompiledFileError(f"compiled pipeline {path}: is not JSON (line {json_error.lineno}, column "
                                f"{json_error.colno}: {json_error.msg}); Vertex AI takes {TAKES['vertex']}")
    if target != "kfp":
        raise CompiledFileError(f"target must be 'vertex' or 'kfp', not {target!r}")
    if json_error is None and isinstance(document, dict) and "pipelineSpec" in document:
        raise CompiledFileError(f"{path} is JSON: the Vertex PipelineJob of compile --target vertex; Kubeflow "
                                f"Pipelines takes the PipelineSpec YAML of compile --target kfp")
    try:
        docs = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise CompiledFileError(f"compiled pipeline {path}: is not YAML{where}; Kubeflow Pipelines takes "
                                f"{TAKES['kfp']}") from None
    if docs and isinstance(docs[0], dict) and "pipelineSpec" in docs[0]:
        raise CompiledFileError(f"{path} is a Vertex PipelineJob, not a PipelineSpec; compile with --target kfp")
    if not docs or not _is_spec(docs[0]):
        raise CompiledFileError(f"compiled pipeline {path}: holds no pipeline spec ({_what(docs[0] if docs else '')}); "
                                f"Kubeflow Pipelines takes {TAKES['kfp']}")
    if not path.endswith((".yaml", ".yml")):
        # kfp.Client reads a package by its name: .yaml/.yml, .zip, .tar.gz (_extract_pipeline_yaml).
        raise CompiledFileError(f"compiled pipeline {path}: kfp.Client reads a PipelineSpec only from a file named "
                                f"*.yaml or *.yml; rename it")
    return docs[0]
