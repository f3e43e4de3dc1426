"""The errors of the orchestration layers (``pipeline/``, ``kubeflow/``): one base, one class
for each kind of refusal. Both are ``InputError``s: ``bertqa`` prints the message and exits 1."""
from __future__ import annotations

from bert_qa.errors import InputError


class OrchestrationError(InputError):
    """A configuration the pipeline will not run; the message names the key or flag."""


class ConfigError(OrchestrationError):
    """A configuration key or value that does not fit the schema; names the key."""


class CompileError(OrchestrationError):
    """A configuration the chosen target cannot run; says why and what to use instead."""
