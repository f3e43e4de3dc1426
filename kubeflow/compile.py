"""Compiles the pipeline for Kubeflow Pipelines v2 / Vertex AI with TFX's KubeflowV2DagRunner.

The DAG is the one ``bertqa run`` executes (``pipeline.pipeline.create_pipeline``); only the
locations change: the pipeline root and push destination become cluster URIs, and data
paths inside this repository become paths inside the image (``kubeflow/Dockerfile`` copies
the repository to ``/pipeline``). The default encoder is resolved inside the container
(the image converts and caches it at build time). Nothing is submitted.
"""
from __future__ import annotations

import copy
import os
from typing import Optional

from bert_qa import _env  # noqa: F401

from bert_qa_pipeline.pipeline.config import REPO_ROOT, PipelineConfig

CONTAINER_REPO_ROOT = "/pipeline"


def to_container_path(path: str, repo_root: str = REPO_ROOT, container_root: str = CONTAINER_REPO_ROOT) -> str:
    """Paths inside this repository -> the same file inside the image; others unchanged."""
    if "://" in path:
        return path
    absolute = os.path.abspath(path)
    if absolute == repo_root or absolute.startswith(repo_root + os.sep):
        return container_root + absolute[len(repo_root):]
    return path


def container_config(config: PipelineConfig) -> PipelineConfig:
    config = copy.deepcopy(config)
    data = config.data
    data.train = [to_container_path(p) for p in data.train]
    data.eval = [to_container_path(p) for p in data.eval]
    data.patterns = [to_container_path(p) for p in data.patterns]
    if config.model.encoder:
        config.model.encoder = to_container_path(config.model.encoder)
    return config


def compile_pipeline(config: PipelineConfig, output_path: str, pipeline_root: str, image: str,
                     push_destination: Optional[str] = None) -> str:
    """Writes the pipeline spec JSON to ``output_path`` and returns its path."""
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

    from bert_qa_pipeline.pipeline.pipeline import create_pipeline

    config = container_config(config)
    tfx_pipeline = create_pipeline(
        config, pipeline_root=pipeline_root,
        push_destination=push_destination or pipeline_root.rstrip("/") + "/pushed")
    output_path = os.path.abspath(output_path)
    runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
        config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(default_image=image),
        output_dir=os.path.dirname(output_path), output_filename=os.path.basename(output_path))
    runner.run(tfx_pipeline, write_out=True)
    return output_path
