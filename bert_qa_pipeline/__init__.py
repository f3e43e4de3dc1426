"""The orchestration half of bert-qa-pipeline, installed under the project's own namespace.

The repository keeps its folders at the top (``components/``, ``pipeline/``, ``kubeflow/``);
they install as ``bert_qa_pipeline.components``, ``bert_qa_pipeline.pipeline`` and
``bert_qa_pipeline.kubeflow`` (``pyproject.toml``'s ``package-dir``), so that installing this
project never shadows another distribution's top-level ``kubeflow`` or ``pipeline`` package.
The library, ``bert_qa``, knows nothing of them.
"""
