"""The syntax of ``resources.<Component>`` (``pipeline/config.py``: ``StepResources``): what can
be checked without a target, so that ``bertqa run``, ``compile`` and ``submit`` refuse a
malformed value alike (``ConfigError`` naming the key). What a target or a step cannot run is
``kubeflow/resources.py``'s to refuse (``CompileError``), with the names defined here.
"""
from __future__ import annotations

import math
import re
from typing import Mapping, Optional

from bert_qa_pipeline.components import keys
from bert_qa_pipeline.pipeline.errors import ConfigError

# Vertex AI's AcceleratorType enum (aiplatform v1), less the K80 whose support ended (CUDA 12,
# which TensorFlow 2.21 is built with, has dropped it).
VERTEX_GPUS = ("NVIDIA_TESLA_P100", "NVIDIA_TESLA_V100", "NVIDIA_TESLA_P4", "NVIDIA_TESLA_T4",
               "NVIDIA_TESLA_A100", "NVIDIA_A100_80GB", "NVIDIA_L4", "NVIDIA_H100_80GB",
               "NVIDIA_H100_MEGA_80GB", "NVIDIA_H200_141GB", "NVIDIA_B200", "NVIDIA_GB200",
               "NVIDIA_RTX_PRO_6000")
VERTEX_TPUS = ("TPU_V2", "TPU_V3", "TPU_V4_POD", "TPU_V5_LITEPOD")
# Kubernetes extended resources (device plugins): NVIDIA's and GKE's TPU.
KFP_ACCELERATORS = {"nvidia.com/gpu": "gpu", "google.com/tpu": "tpu"}
ACCELERATORS = {"vertex": {**{n: "gpu" for n in VERTEX_GPUS}, **{n: "tpu" for n in VERTEX_TPUS}},
                "kfp": KFP_ACCELERATORS}

# The syntax kfp.dsl.PipelineTask checks (_validate_cpu_request_limit, _validate_memory_request_limit).
CPU_PATTERN = re.compile(r"([0-9]*[.])?[0-9]+m?$")
MEMORY_PATTERN = re.compile(r"^[0-9]+(E|Ei|P|Pi|T|Ti|G|Gi|M|Mi|K|Ki){0,1}$")
TOPOLOGY_PATTERN = re.compile(r"^[1-9][0-9]*(x[1-9][0-9]*){1,2}$")
# Kubernetes label syntax: an optional DNS-subdomain prefix and a name of at most 63 characters.
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
LABEL_KEY_PATTERN = re.compile(rf"^([a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_LABEL_NAME}$")
LABEL_VALUE_PATTERN = re.compile(rf"^({_LABEL_NAME})?$")
# Environment variable names (POSIX; what Kubernetes and Vertex accept for a container's env), and
# Kubernetes secret names (DNS subdomains) and data keys.
ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SECRET_NAME_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
SECRET_KEY_PATTERN = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
# Set by the compiled pipeline itself (kubeflow/compile.py) or by the platform.
RESERVED_ENV = ("TF_NUM_INTEROP_THREADS", "BERT_QA_SET_TF_NUM_INTEROP_THREADS", "TF_CONFIG", "CLUSTER_SPEC")


def accelerator_kind(name: str) -> Optional[str]:
    """'gpu' / 'tpu' for a known accelerator name of either target, else None."""
    for names in ACCELERATORS.values():
        if name in names:
            return names[name]
    return None


def accelerator_target(name: str) -> Optional[str]:
    return next((target for target, names in ACCELERATORS.items() if name in names), None)


def topology_chips(topology: str) -> int:
    return math.prod(int(n) for n in topology.split("x"))


def check_config(resources) -> None:
    """What needs no target: the syntax of every value, and keys that only make sense together.
    ``resources`` is a ``pipeline.config.ResourcesConfig``; raises ``ConfigError`` naming the key."""
    known = ", ".join(sorted(ACCELERATORS["vertex"])) + " (vertex); " + ", ".join(KFP_ACCELERATORS) + " (kfp)"
    for component in keys.COMPONENTS:
        step = getattr(resources, component)
        key = f"resources.{component}"
        if step.cpu and not CPU_PATTERN.match(step.cpu):
            raise ConfigError(f"{key}.cpu: {step.cpu!r} is not a CPU quantity; give a number of CPUs "
                              f"(\"8\", \"0.5\") or millicores (\"500m\")")
        if step.memory and not MEMORY_PATTERN.match(step.memory):
            raise ConfigError(f"{key}.memory: {step.memory!r} is not a memory quantity; give a whole "
                              f"number with an optional unit: E, P, T, G, M, K or Ei, Pi, Ti, Gi, Mi, Ki "
                              f"(\"32G\", \"16Gi\")")
        for field, value in (("cpu", step.cpu), ("memory", step.memory)):
            if value and float(re.match(r"[0-9.]*", value).group() or 0) <= 0:
                raise ConfigError(f"{key}.{field}: {value!r} asks for nothing; leave it out for the default")
        if step.accelerator_count < 0:
            raise ConfigError(f"{key}.accelerator_count: must be >= 0, not {step.accelerator_count}")
        if step.accelerator:
            if accelerator_kind(step.accelerator) is None:
                raise ConfigError(f"{key}.accelerator: unknown accelerator {step.accelerator!r}; known: {known}")
            if step.accelerator_count < 1:
                raise ConfigError(f"{key}.accelerator_count: say how many {step.accelerator} the step gets (>= 1)")
        elif step.accelerator_count:
            raise ConfigError(f"{key}.accelerator_count: {step.accelerator_count} of what? set {key}.accelerator")
        if step.tpu_topology:
            if not TOPOLOGY_PATTERN.match(step.tpu_topology):
                raise ConfigError(f"{key}.tpu_topology: {step.tpu_topology!r} is not a TPU topology "
                                  f"such as \"2x2\" or \"2x2x1\"")
            if accelerator_kind(step.accelerator) != "tpu":
                raise ConfigError(f"{key}.tpu_topology: only for a TPU accelerator, not "
                                  f"{step.accelerator or 'none'}")
            chips = topology_chips(step.tpu_topology)
            if chips != step.accelerator_count:
                raise ConfigError(
                    f"{key}.tpu_topology: {step.tpu_topology} has {chips} chips but accelerator_count is "
                    f"{step.accelerator_count}; a pipeline step is one host, so the topology is that "
                    f"host's chips (multi-host slices need one worker per host, which a step is not)")
        _check_env(key, step)
        if not isinstance(step.node_selector, Mapping):
            raise ConfigError(f"{key}.node_selector: expected a mapping of node labels, got {step.node_selector!r}")
        for label, value in step.node_selector.items():
            if not isinstance(label, str) or not LABEL_KEY_PATTERN.match(label):
                raise ConfigError(f"{key}.node_selector: {label!r} is not a Kubernetes label key")
            if not isinstance(value, str) or not LABEL_VALUE_PATTERN.match(value):
                raise ConfigError(f"{key}.node_selector.{label}: {value!r} is not a Kubernetes label "
                                  f"value (a string of at most 63 letters, digits, '-', '_', '.')")


def _check_env(key: str, step) -> None:
    for field in ("env", "secret_env"):
        values = getattr(step, field)
        if not isinstance(values, Mapping):
            raise ConfigError(f"{key}.{field}: expected a mapping of environment variables, got {values!r}")
        for name, value in values.items():
            if not isinstance(name, str) or not ENV_NAME_PATTERN.match(name):
                raise ConfigError(f"{key}.{field}: {name!r} is not an environment variable name")
            if name in RESERVED_ENV:
                raise ConfigError(f"{key}.{field}.{name}: set by the compiled pipeline or the platform, not here")
            if not isinstance(value, str):
                raise ConfigError(f"{key}.{field}.{name}: expected a string, got {value!r}")
    for name, value in step.secret_env.items():
        secret, _, data_key = value.partition(":")
        if not SECRET_NAME_PATTERN.match(secret) or not SECRET_KEY_PATTERN.match(data_key):
            raise ConfigError(f"{key}.secret_env.{name}: {value!r} is not \"<secret name>:<key>\" "
                              f"(a Kubernetes secret and one of its data keys)")
    both = sorted(set(step.env) & set(step.secret_env))
    if both:
        raise ConfigError(f"{key}: {both} set in both env and secret_env")
