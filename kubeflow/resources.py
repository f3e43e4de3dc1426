"""Machines per pipeline step on Vertex AI Pipelines and Kubeflow Pipelines.

``resources.<Component>`` in the configuration (``pipeline/config.py``: ``StepResources``) says
what one step's container asks for: CPU, memory, an accelerator (GPU or TPU, how many, the TPU
topology) and, on Kubeflow, node selectors. ``bertqa run`` ignores it (every step runs in the
local process); ``bertqa compile`` turns it into:

* the container's ``ResourceSpec`` in the compiled ``deploymentSpec`` (TFX's
  ``component.with_platform_config``; TFX 1.21's step builder copies the whole message into the
  container spec), with both the numeric fields (``cpu_limit``, ``memory_limit``,
  ``accelerator.type`` / ``count``: what Vertex AI and older Kubeflow backends read) and the
  string fields kfp 2.16's own compiler fills beside them (``resource_cpu_limit``,
  ``resource_memory_limit``, ``accelerator.resource_type`` / ``resource_count``: what newer
  Kubeflow backends read), numbers converted as kfp's compiler converts them
  (``cpu_to_float``, ``memory_to_float``);
* on the Kubeflow target, node selectors in the Kubernetes platform spec
  (``platforms.kubernetes.deploymentSpec.executors.<executor label>.nodeSelector.labels``, a
  ``kfp.kubernetes`` ``KubernetesExecutorConfig``), the second YAML document, as kfp-kubernetes'
  ``add_node_selector`` writes it;
* the image: a step with a GPU runs the GPU image (``docker build --target gpu``), one with a
  TPU the TPU image; every other step the CPU image.

Accelerator names are the target's own: Vertex's ``AcceleratorType`` enum names
(``NVIDIA_L4``, ``TPU_V5_LITEPOD``, ...) on ``vertex``; Kubernetes extended resource names
(``nvidia.com/gpu``, ``google.com/tpu``) on ``kfp``, where node selectors choose the GPU model
(GKE: ``cloud.google.com/gke-accelerator: nvidia-l4``) or the TPU slice.

The syntax of every value is checked with the configuration (``pipeline/step_resources.py``,
``ConfigError``); what a target or the trainer's distribution strategy cannot run is refused here
(``plan``, ``CompileError``).
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Mapping, Optional, Union

from google.protobuf import json_format

from bert_qa_pipeline.components import keys
from bert_qa_pipeline.components.keys import COMPONENTS
from bert_qa_pipeline.pipeline.errors import CompileError
from bert_qa_pipeline.pipeline.step_resources import (  # noqa: F401  (names this module gave before)
    ACCELERATORS, CPU_PATTERN, ENV_NAME_PATTERN, KFP_ACCELERATORS, LABEL_KEY_PATTERN, LABEL_VALUE_PATTERN,
    MEMORY_PATTERN, RESERVED_ENV, TOPOLOGY_PATTERN, VERTEX_GPUS, VERTEX_TPUS, accelerator_kind,
    accelerator_target, check_config, topology_chips)

# GKE's node labels.
GKE_GPU_LABEL = "cloud.google.com/gke-accelerator"
GKE_TPU_ACCELERATOR_LABEL = "cloud.google.com/gke-tpu-accelerator"
GKE_TPU_TOPOLOGY_LABEL = "cloud.google.com/gke-tpu-topology"

# What each step does with an accelerator. Only the trainer distributes; the evaluator's Keras
# predictions run on the first GPU TensorFlow sees; the rest run no TensorFlow model on one.
ACCELERATED = {keys.QA_TRAINER: "trains with model.distribution_strategy",
               keys.QA_EVALUATOR: "predicts on one GPU (no distribution strategy)"}
CPU_ONLY = {keys.SQUAD_EXAMPLE_GEN: "reads JSON files", keys.FEATURE_WINDOWING: "tokenizes in Beam on CPUs",
            keys.TFLITE_EXPORT: "converts with the TFLite converter, which runs on the CPU",
            keys.TFLITE_PUSHER: "copies files"}
SINGLE_GPU_STRATEGIES = ("off", "one_device")  # they place the model on one device
GPU_STRATEGIES = ("off", "one_device", "mirrored", "multi_worker_mirrored", "parameter_server")


@dataclasses.dataclass
class StepPlan:
    """What one step gets in the compiled pipeline."""

    component: str
    resource_spec: object            # ResourceSpec (kfp.pipeline_spec), maybe empty
    kind: Optional[str] = None       # accelerator kind: 'gpu', 'tpu' or None
    image: Optional[str] = None      # None: the CPU image
    node_selector: Dict[str, str] = dataclasses.field(default_factory=dict)
    env: Dict[str, str] = dataclasses.field(default_factory=dict)
    secret_env: Dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def executor_label(self) -> str:
        return executor_label(self.component)


def executor_label(component_id: str) -> str:
    """The deploymentSpec executor of a TFX component (tfx.orchestration.kubeflow.v2.step_builder)."""
    return f"{component_id}_executor"


# Memory units as Kubernetes quantities (decimal and binary), in bytes: kfp's constants
# (sdk/python/kfp/dsl/constants.py: _E ... _KI).
_MEMORY_UNITS = {"E": 10**18, "Ei": 1 << 60, "P": 10**15, "Pi": 1 << 50, "T": 10**12, "Ti": 1 << 40,
                 "G": 10**9, "Gi": 1 << 30, "M": 10**6, "Mi": 1 << 20, "K": 10**3, "Ki": 1 << 10}
_GB = 10**9


def cpu_to_float(cpu: str) -> float:
    """CPUs of a checked CPU quantity ("8", "0.5", "500m"), as kfp's compiler computes
    ``cpu_limit`` (kfp 2.16, sdk/python/kfp/compiler/compiler_utils.py: ``_cpu_to_float``:
    a trailing "m" is millicores)."""
    return float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)


def memory_to_float(memory: str) -> float:
    """Decimal GB of a checked memory quantity ("32G", "16Gi", "500M", "1000"), as kfp's compiler
    computes ``memory_limit`` (kfp 2.16, sdk/python/kfp/compiler/compiler_utils.py:
    ``_memory_to_float``: number * unit / 10**9 in that order, "G" as given, no unit = bytes)."""
    unit = memory[-2:] if memory[-2:] in _MEMORY_UNITS else memory[-1:] if memory[-1:] in _MEMORY_UNITS else ""
    if not unit:
        return float(memory) / _GB
    number = float(memory[:-len(unit)])
    return number if unit == "G" else number * _MEMORY_UNITS[unit] / _GB


def resource_spec(cpu: str = "", memory: str = "", accelerator: str = "", count: int = 0):
    """The ResourceSpec kfp 2.16's compiler writes for set_cpu_limit / set_memory_limit /
    set_accelerator_type / set_accelerator_limit with these constants: string fields as given,
    numeric ones converted as kfp converts them (``cpu_to_float``, ``memory_to_float``)."""
    from kfp.pipeline_spec import pipeline_spec_pb2  # lazy: importing kfp takes seconds

    spec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec()
    if cpu:
        spec.resource_cpu_limit = cpu
        spec.cpu_limit = cpu_to_float(cpu)
    if memory:
        spec.resource_memory_limit = memory
        spec.memory_limit = memory_to_float(memory)
    if accelerator:
        spec.accelerator.type = spec.accelerator.resource_type = accelerator
        spec.accelerator.count = count
        spec.accelerator.resource_count = str(count)
    return spec


def _check_target(target: str, component: str, step) -> None:
    key = f"resources.{component}"
    if step.accelerator:
        owner = accelerator_target(step.accelerator)
        if target == "kfp" and owner == "vertex":
            kind = accelerator_kind(step.accelerator)
            raise CompileError(
                f"{key}.accelerator: {step.accelerator} is a Vertex AI accelerator name; Kubeflow "
                f"Pipelines asks Kubernetes for an extended resource: "
                + ("nvidia.com/gpu, with the GPU model as a node selector (GKE: {cloud.google.com/"
                   "gke-accelerator: nvidia-l4})" if kind == "gpu" else
                   "google.com/tpu, with tpu_topology and the node selector "
                   "{cloud.google.com/gke-tpu-accelerator: tpu-v5-lite-podslice} (GKE)"))
        if target == "vertex" and owner == "kfp":
            raise CompileError(
                f"{key}.accelerator: {step.accelerator} is a Kubernetes resource name; Vertex AI "
                f"takes its own accelerator types: "
                + (", ".join(VERTEX_GPUS) if accelerator_kind(step.accelerator) == "gpu"
                   else ", ".join(VERTEX_TPUS)))
    if target == "vertex" and step.node_selector:
        raise CompileError(f"{key}.node_selector: Vertex AI Pipelines chooses the machine from cpu, memory "
                           f"and accelerator; node selectors are for Kubeflow Pipelines (--target kfp)")
    if target == "vertex" and step.secret_env:
        raise CompileError(f"{key}.secret_env: Kubernetes secrets are for Kubeflow Pipelines (--target kfp); "
                           f"on Vertex AI the step runs as the pipeline's service account (give it access), "
                           f"or read a Secret Manager secret")
    if target == "vertex" and step.tpu_topology:
        raise CompileError(f"{key}.tpu_topology: Vertex AI Pipelines picks the TPU machine from accelerator "
                           f"and accelerator_count (one host); the topology is for Kubeflow Pipelines on "
                           f"GKE (--target kfp)")
    if target == "kfp" and accelerator_kind(step.accelerator) == "tpu":
        if not step.tpu_topology:
            raise CompileError(f"{key}.tpu_topology: GKE schedules TPU pods by slice topology; give the "
                               f"host's chips, e.g. \"2x2\" for {step.accelerator_count} chips")
        selected = step.node_selector.get(GKE_TPU_TOPOLOGY_LABEL)
        if selected is not None and selected != step.tpu_topology:
            raise CompileError(f"{key}: node_selector {GKE_TPU_TOPOLOGY_LABEL}={selected} contradicts "
                               f"tpu_topology {step.tpu_topology}")
        if GKE_TPU_ACCELERATOR_LABEL not in step.node_selector:
            raise CompileError(f"{key}.node_selector: a TPU pod needs the TPU type as a node selector, e.g. "
                               f"{{{GKE_TPU_ACCELERATOR_LABEL}: tpu-v5-lite-podslice}}")


def _check_use(config, component: str, step) -> None:
    """Refuses accelerators the step cannot use (the trainer's strategy, or no TensorFlow on it)."""
    key = f"resources.{component}"
    kind = accelerator_kind(step.accelerator) if step.accelerator else None
    strategy = config.model.distribution_strategy
    if component == keys.QA_TRAINER:
        custom_job = getattr(config.train, "vertex_custom_job", None)
        if custom_job is not None and custom_job.enabled:
            # The step only launches the CustomJob and waits; the job's pools choose the
            # machines and the strategy (components/qa_trainer/vertex_executor.py).
            if kind is not None:
                raise CompileError(f"{key}.accelerator: with train.vertex_custom_job.enabled QaTrainer "
                                   f"trains in the CustomJob; its step only waits for it, so "
                                   f"{step.accelerator} would idle: give accelerators to "
                                   f"train.vertex_custom_job.worker_pools")
            return
        if kind is None:
            if strategy == "tpu" and str(config.model.extra_spec_args.get("tpu", "")) in ("", "local"):
                raise CompileError(
                    f"model.distribution_strategy=tpu needs a TPU: request one ({key}.accelerator: "
                    f"TPU_V5_LITEPOD on vertex, google.com/tpu on kfp) or point model.extra_spec_args.tpu "
                    f"at a Cloud TPU (grpc://host:8470)")
            return
        if kind == "gpu" and strategy not in GPU_STRATEGIES:
            raise CompileError(f"{key}.accelerator: {step.accelerator} is a GPU, but model.distribution_"
                               f"strategy={strategy} trains on TPUs only; use mirrored (or off / one_device "
                               f"for one GPU)")
        if kind == "gpu" and strategy in SINGLE_GPU_STRATEGIES and step.accelerator_count > 1:
            raise CompileError(f"{key}.accelerator_count: model.distribution_strategy={strategy} trains on "
                               f"one GPU, so {step.accelerator_count - 1} of {step.accelerator_count} would "
                               f"idle; use distribution_strategy mirrored, or accelerator_count 1")
        if kind == "tpu" and strategy != "tpu":
            raise CompileError(f"{key}.accelerator: {step.accelerator} is a TPU, which only "
                               f"model.distribution_strategy=tpu drives (not {strategy})")
        return
    if kind is None:
        return
    if component in CPU_ONLY:
        raise CompileError(f"{key}.accelerator: {component} {CPU_ONLY[component]}; it would not use "
                           f"{step.accelerator} (only QaTrainer and QaEvaluator run a model on one)")
    if kind == "tpu":
        raise CompileError(f"{key}.accelerator: {component} {ACCELERATED[component]}; it cannot use a "
                           f"TPU ({step.accelerator}): give it a GPU or none")
    if step.accelerator_count > 1:
        raise CompileError(f"{key}.accelerator_count: {component} {ACCELERATED[component]}, so "
                           f"{step.accelerator_count - 1} of {step.accelerator_count} GPUs would idle")


def plan(config, target: str, gpu_image: Optional[str] = None,
         tpu_image: Optional[str] = None) -> Dict[str, StepPlan]:
    """Every step's ResourceSpec, image and node selectors for ``target``; refuses (CompileError)
    what the target or the step cannot run. Steps without any request are left out."""
    plans: Dict[str, StepPlan] = {}
    for component in COMPONENTS:
        step = getattr(config.resources, component)
        _check_target(target, component, step)
        _check_use(config, component, step)
        kind = accelerator_kind(step.accelerator) if step.accelerator else None
        image = None
        if kind == "gpu":
            if not gpu_image:
                raise CompileError(f"resources.{component}.accelerator: {step.accelerator} needs the GPU "
                                   f"image (TensorFlow with CUDA: docker build -f kubeflow/Dockerfile "
                                   f"--target gpu); pass it with --gpu-image")
            image = gpu_image
        elif kind == "tpu":
            if not tpu_image:
                raise CompileError(f"resources.{component}.accelerator: {step.accelerator} needs a TPU image "
                                   f"(TensorFlow's TPU build with libtpu, see kubeflow/Dockerfile); pass it "
                                   f"with --tpu-image")
            image = tpu_image
        selector = dict(step.node_selector)
        if target == "kfp" and step.tpu_topology:
            selector[GKE_TPU_TOPOLOGY_LABEL] = step.tpu_topology
        spec = resource_spec(step.cpu, step.memory, step.accelerator, step.accelerator_count)
        if spec.ByteSize() or image or selector or step.env or step.secret_env:
            plans[component] = StepPlan(component, spec, kind, image, selector, dict(step.env),
                                        dict(step.secret_env))
    return plans


def apply(tfx_pipeline, plans: Mapping[str, StepPlan]) -> None:
    """Hands each step's ResourceSpec to TFX (``with_platform_config``)."""
    ids = {c.id for c in tfx_pipeline.components}
    missing = sorted(set(plans) - ids)
    if missing:
        raise RuntimeError(f"resources for {missing}, which the pipeline does not have ({sorted(ids)})")
    for component in tfx_pipeline.components:
        step = plans.get(component.id)
        if step is not None and step.resource_spec.ByteSize():
            component.with_platform_config(step.resource_spec)


def default_image(image: str, plans: Mapping[str, StepPlan]) -> Union[str, Dict[str, str]]:
    """KubeflowV2DagRunnerConfig's ``default_image``: one image, or a map by component id when
    some step runs the GPU / TPU image. (TFX 1.21 logs "DEFAULT_IMAGE_PATH_KEY is not found in
    default_image" for a map that has it: its check is inverted; the map is used as given.)"""
    from tfx.orchestration.kubeflow.v2.pipeline_builder import DEFAULT_IMAGE_PATH_KEY  # lazy: TFX takes seconds

    own = {name: step.image for name, step in plans.items() if step.image}
    return {DEFAULT_IMAGE_PATH_KEY: image, **own} if own else image


def check_compiled(spec: dict, plans: Mapping[str, StepPlan], image: str) -> None:
    """The compiled deploymentSpec carries every requested field and image (a tool failure if a
    TFX version stops copying them)."""
    executors = spec["deploymentSpec"]["executors"]
    for name in COMPONENTS:
        step = plans.get(name)
        container = executors.get(executor_label(name), {}).get("container")
        if container is None:
            raise RuntimeError(f"no container executor {executor_label(name)} in the compiled spec")
        expected = json_format.MessageToDict(step.resource_spec) if step else {}
        if container.get("resources", {}) != expected:
            raise RuntimeError(f"{name}: the compiled resources {container.get('resources')} are not the "
                               f"requested {expected}")
        wanted = (step.image if step else None) or image
        if container["image"] != wanted:
            raise RuntimeError(f"{name}: compiled with image {container['image']}, expected {wanted}")


def platform_spec(plans: Mapping[str, StepPlan]) -> Optional[dict]:
    """The Kubernetes platform spec (kfp-kubernetes' layout) of the steps with node selectors,
    as the JSON dict kfp writes as the package's second YAML document; None when there are none."""
    from kfp.kubernetes import kubernetes_executor_config_pb2  # lazy: importing kfp takes seconds
    from kfp.pipeline_spec import pipeline_spec_pb2  # lazy: kfp

    executors = {}
    for step in plans.values():
        if step.node_selector or step.secret_env:
            config = kubernetes_executor_config_pb2.KubernetesExecutorConfig()
            config.node_selector.labels.update(step.node_selector)
            by_secret: Dict[str, list] = {}
            for env_var, value in sorted(step.secret_env.items()):
                secret, _, data_key = value.partition(":")
                by_secret.setdefault(secret, []).append((data_key, env_var))
            for secret, keys in sorted(by_secret.items()):
                # As kfp-kubernetes' use_secret_as_env writes it: the name both as a field (what
                # KFP backends before 2.5 read) and as a constant parameter (what newer ones read,
                # driver/k8s.go:349-388).
                entry = config.secret_as_env.add(secret_name=secret, optional=False)
                entry.secret_name_parameter.runtime_value.constant.string_value = secret
                for data_key, env_var in keys:
                    entry.key_to_env.add(secret_key=data_key, env_var=env_var)
            executors[step.executor_label] = json_format.MessageToDict(config)
    if not executors:
        return None
    message = json_format.ParseDict(
        {"platforms": {"kubernetes": {"deploymentSpec": {"executors": executors}}}},
        pipeline_spec_pb2.PlatformSpec())
    return json_format.MessageToDict(message)

