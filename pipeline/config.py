"""One typed configuration for the whole pipeline, from defaults, a YAML/TOML file and flags.

Precedence: dataclass defaults < the file (``--config run.yaml`` or ``.toml``) < ``--set
section.key=value`` overrides (values parsed as YAML, so ``--set train.epochs=3`` is an int
and ``--set data.train='[a.json, b.json]'`` a list). Relative data paths in a file are
relative to that file; on the command line, to the current directory.
"""
from __future__ import annotations

import dataclasses
import glob
import inspect
import json
import os
import re
import tomllib
import typing
from typing import Any, Dict, List, Mapping, Optional, Sequence

import yaml

from bert_qa import encoders, settings, squad_data
from bert_qa.errors import InputError, read_utf8_file
from bert_qa.export.quantization import QUANTIZATIONS
from bert_qa.pretrained import minilm_checkpoint_dir
from bert_qa.windowing_params import Windowing
from bert_qa_pipeline.components import custom_job, keys
from bert_qa_pipeline.pipeline import step_resources
from bert_qa_pipeline.pipeline.errors import ConfigError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = os.path.join(REPO_ROOT, "data")


@dataclasses.dataclass
class DataConfig:
    """Either ``train`` / ``eval`` patterns (a split each) or ``patterns`` + ``hash_buckets``."""

    # SQuAD JSON files or globs of the train split (paths or gfile URIs such as gs://)
    train: List[str] = dataclasses.field(default_factory=lambda: [os.path.join(DATA_DIR, "new_wiki_train.json")])
    # SQuAD JSON files or globs of the eval split
    eval: List[str] = dataclasses.field(default_factory=lambda: [os.path.join(DATA_DIR, "new_wiki_eval.json")])
    # instead of train / eval: files that hash_buckets splits by article title
    patterns: List[str] = dataclasses.field(default_factory=list)
    # with patterns: buckets per split, exactly {train: N, eval: M}
    hash_buckets: Dict[str, int] = dataclasses.field(default_factory=dict)
    # SQuAD v2.0 data: unanswerable questions (is_impossible) included
    version_2_with_negative: bool = False
    multi_answer: str = "first"  # training on questions with several answers: 'first' or 'error'


@dataclasses.dataclass
class ModelConfig:
    # BertQaSpec or MobileBertQaSpec: the library's spec class and its defaults
    spec: str = "BertQaSpec"
    # A TF Hub handle or TF Hub-format directory; "" = all-MiniLM-L6-v2, converted once and cached.
    encoder: str = ""
    # Sized for the default run's time budget on 2 CPU cores (benchmarks/README.md): new_wiki
    # paragraphs mostly fit a 192-token window, questions 32 WordPieces; a stride of 128 gives
    # the fewest tokens per question of the shapes measured (seq 128-384, stride 64-128).
    seq_len: int = 192
    query_len: int = 32  # question tokens at most (longer questions are truncated)
    doc_stride: int = 128  # tokens between the starts of a long context's windows
    do_lower_case: bool = True  # lower-case the text before WordPiece (true for uncased encoders)
    # Few steps on 2 CPU cores: a higher rate than Model Maker's 8e-5 learns more in one epoch.
    learning_rate: float = 1.5e-4
    # "huggingface" (run_qa's AdamW and schedule, proven step by step against PyTorch) or
    # "model_maker" (Model Garden's create_optimizer, Model Maker's); see bert_qa/optimization.py.
    optimizer_recipe: str = "huggingface"
    # off, one_device, mirrored, multi_worker_mirrored, parameter_server or tpu
    distribution_strategy: str = "off"
    predict_batch_size: int = 16  # batch size when predicting (evaluation)
    # "float32", "mixed_bfloat16" (CPUs with AMX/AVX512-BF16, TPUs), "mixed_float16" (GPUs,
    # loss-scaled) or "auto" (bf16 on a CPU with bfloat16 units and no GPU, else float32).
    # The encoder is rebuilt natively to follow it; what is exported stays float32. The
    # library's BertQaSpec keeps Model Maker's float32; the pipeline's default run uses "auto"
    # (faster steps on CPUs with bfloat16 units, which pays for more questions; the speed-up is
    # measured in benchmarks/README.md).
    mixed_precision: str = "auto"
    # further arguments of the spec class, e.g. {default_batch_size: 32}
    extra_spec_args: Dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class TrainConfig:
    # Passes over the training features; a fraction trains that share of the steps, as Hugging Face's
    # num_train_epochs (bert_qa.settings.training_schedule). On the shipped data one pass left F1 to
    # the seed (44.18 +- 5.97 over five); 1.5 passes fit the 10-minute budget (benchmarks/README.md).
    epochs: float = 1.5
    batch_size: int = 16  # training batch size
    steps_per_epoch: int = 0  # 0: features // batch_size (Model Maker's)
    # reshuffle the training features every epoch (the library's create() defaults to false)
    shuffle: bool = True
    seed: int = 42  # random seed of training (when runs repeat bit for bit: docs/reliability.md)
    # Where QaTrainer keeps per-epoch checkpoints until training completes (a re-run after a
    # kill resumes from there); "" = <pipeline root>/QaTrainer/resume.
    checkpoint_root: str = ""
    # Train in a Vertex AI CustomJob (its own machines) instead of in the pipeline step.
    vertex_custom_job: "VertexCustomJobConfig" = dataclasses.field(
        default_factory=lambda: VertexCustomJobConfig())


@dataclasses.dataclass
class WorkerPoolConfig:
    """One worker pool of the CustomJob: the first is the chief's (1 replica), the second the
    other workers'."""

    machine_type: str = "n1-standard-8"  # Compute Engine machine type of each replica
    replica_count: int = 1  # replicas in this pool (the chief's pool: 1)
    # e.g. NVIDIA_TESLA_T4, NVIDIA_L4 (with a count); TPU_V2 / TPU_V3 with machine_type cloud-tpu
    accelerator_type: str = ""
    accelerator_count: int = 0  # accelerators per replica


@dataclasses.dataclass
class VertexCustomJobConfig:
    """``train.vertex_custom_job``: QaTrainer as a Vertex AI CustomJob (launched through TFX's
    google_cloud_ai_platform training runner). The strategy follows the pools: one replica
    trains ``mirrored`` over its GPUs, several ``multi_worker_mirrored``, a TPU pool ``tpu``."""

    enabled: bool = False  # train in a CustomJob (needs a gs:// pipeline root)
    project: str = ""  # Google Cloud project ID of the job
    region: str = "us-central1"  # Vertex AI region of the job
    image: str = ""  # "" = the compiled pipeline's image
    service_account: str = ""  # "" = the project's default (Vertex's Custom Code Service Agent)
    # the chief's pool first, then the other workers' pool
    worker_pools: List[WorkerPoolConfig] = dataclasses.field(default_factory=lambda: [WorkerPoolConfig()])

    def launch(self) -> Optional[Dict[str, Any]]:
        """QaTrainer's ``vertex_custom_job`` argument: None when off."""
        if not self.enabled:
            return None
        values = dataclasses.asdict(self)
        values.pop("enabled")
        return values

    def check(self) -> None:
        if self.enabled:
            try:
                custom_job.check_launch(self.launch(), need_image=False)
            except custom_job.CustomJobError as err:
                raise ConfigError(f"train.vertex_custom_job: {err}") from None


@dataclasses.dataclass
class ExportConfig:
    # Model Maker's default (dynamic-range, outlier weights split first); add float32 /
    # dynamic_unsplit / float16 / int8 to export and score them too.
    variants: List[str] = dataclasses.field(default_factory=lambda: ["dynamic"])
    max_representative_samples: int = 100  # int8 calibration: windows of training data at most
    # The token length the .tflite files take: 384, what the TFLite Task Library's
    # BertQuestionAnswerer feeds every model (kMaxSeqLen), whatever model.seq_len training used
    # (the trained weights rebuilt at this length, bert_qa.export.trained_model); 0 = model.seq_len.
    serving_seq_len: int = 384


@dataclasses.dataclass
class EvaluationConfig:
    max_answer_length: int = 30  # longest answer, in tokens
    # SQuAD v2.0: answer nothing when the null score beats the best span by more
    null_score_diff_threshold: float = 0.0
    # Percent. On the shipped data an untrained model already gets some F1 (random long spans
    # overlap the references; benchmarks/README.md), so EM separates trained from untrained.
    min_exact_match: float = 5.0
    min_f1: float = 15.0  # percent: a model below this F1 is not blessed
    max_f1_drop_vs_baseline: float = 2.0   # points
    max_quantized_f1_drop: float = 3.0     # points
    # Score the same architecture randomly initialised, and require training to beat it.
    evaluate_untrained: bool = True
    min_f1_gain_over_untrained: float = 5.0  # points
    # the variant whose F1 is compared with the SavedModel's ("" = none)
    quantized_variant: str = "dynamic"
    # What "no regression" is measured against: "latest_blessed" (TFX's resolver over MLMD),
    # "latest_published" (the newest model under the push destination, re-scored on this eval
    # data: works where no resolver runs), "none", or "auto" (latest_published when compiled for
    # Kubeflow Pipelines, whose backend runs container tasks only; latest_blessed elsewhere).
    baseline: str = "auto"


@dataclasses.dataclass
class PushConfig:
    destination: str = ""  # "" = <output>/pushed
    variant: str = "dynamic"  # the exported variant that is pushed (one of export.variants)


@dataclasses.dataclass
class BeamConfig:
    """Beam options of the two Beam steps only (other steps' containers never get them)."""

    # Both Beam steps. DirectRunner in one process by default (fastest for the shipped data);
    # e.g. ["--direct_running_mode=multi_processing", "--direct_num_workers=2"].
    args: List[str] = dataclasses.field(default_factory=lambda: ["--direct_running_mode=in_memory",
                                                                  "--direct_num_workers=1"])
    # Added after `args` (and, for windowing, after `dataflow`'s options) for one step,
    # e.g. ["--disk_size_gb=50"] for Dataflow's windowing workers.
    windowing: List[str] = dataclasses.field(default_factory=list)
    evaluator: List[str] = dataclasses.field(default_factory=list)  # TFMA's Beam pipeline
    # FeatureWindowing alone on Google Cloud Dataflow (a preset of DataflowRunner options).
    dataflow: "DataflowConfig" = dataclasses.field(default_factory=lambda: DataflowConfig())


@dataclasses.dataclass
class DataflowConfig:
    """``beam.dataflow``: FeatureWindowing's Beam pipeline on Google Cloud Dataflow, that step
    alone (QaEvaluator keeps ``beam.args`` + ``beam.evaluator``). Its Beam args are
    ``beam.args`` + ``args()`` + ``beam.windowing`` (``windowing_beam_args``): DirectRunner's
    ``--direct_*`` defaults are ignored by Dataflow, ``beam.windowing`` adds options the preset
    has no key for (e.g. ``--disk_size_gb=50``); ``--runner`` or a preset option given there
    too is refused. Dataflow's workers read the examples and write the features under the
    pipeline root, which must be on Cloud Storage: for compiled (Vertex) pipelines."""

    enabled: bool = False  # run FeatureWindowing on Dataflow
    project: str = ""  # Google Cloud project ID
    region: str = ""  # e.g. us-central1
    temp_location: str = ""  # gs://bucket/path (Dataflow's temporary files)
    staging_location: str = ""  # gs://bucket/path; "" = Dataflow's default (under temp_location)
    # The pipeline's image (kubeflow/Dockerfile): it has this project's code, which the workers
    # import (tensorflow/tfx#1455), and Beam's SDK worker boot as its entrypoint.
    sdk_container_image: str = ""
    max_num_workers: int = 10  # autoscaling's ceiling (what a run can cost)
    machine_type: str = ""  # "" = Dataflow's default; e.g. n2-standard-4
    service_account: str = ""  # the workers' service account e-mail; "" = Compute Engine's default
    network: str = ""  # VPC network name; "" = the project's default
    subnetwork: str = ""  # e.g. regions/us-central1/subnetworks/NAME, or its full URL
    use_public_ips: bool = True  # false: internal IPs only (the subnet needs Private Google Access)

    # Options the preset sets; the same option in beam.args / beam.windowing is refused.
    OPTIONS = ("runner", "project", "region", "temp_location", "staging_location",
               "sdk_container_image", "max_num_workers", "machine_type", "worker_machine_type",
               "service_account_email", "network", "subnetwork", "use_public_ips",
               "no_use_public_ips")

    def args(self) -> List[str]:
        """DataflowRunner's options ([] when not enabled)."""
        if not self.enabled:
            return []
        args = ["--runner=DataflowRunner", f"--project={self.project}", f"--region={self.region}",
                f"--temp_location={self.temp_location}"]
        if self.staging_location:
            args.append(f"--staging_location={self.staging_location}")
        args += [f"--sdk_container_image={self.sdk_container_image}",
                 f"--max_num_workers={self.max_num_workers}"]
        for option, value in (("machine_type", self.machine_type),
                              ("service_account_email", self.service_account),
                              ("network", self.network), ("subnetwork", self.subnetwork)):
            if value:
                args.append(f"--{option}={value}")
        if not self.use_public_ips:
            args.append("--no_use_public_ips")
        return args

    def check(self, beam: "BeamConfig") -> None:
        """ConfigError naming the key, for what Dataflow would refuse or run wrongly."""
        if not self.enabled:
            return
        key = "beam.dataflow"
        for name in ("project", "region", "temp_location"):
            if not getattr(self, name).strip():
                raise ConfigError(f"{key}.{name} is required when {key}.enabled is true")
        if re.fullmatch(r"[0-9]+", self.project):
            raise ConfigError(f"{key}.project: give the project ID, not the project number {self.project!r}")
        if not re.fullmatch(r"[a-z][-a-z0-9:.]+[a-z0-9]", self.project):
            raise ConfigError(f"{key}.project: {self.project!r} is not a Google Cloud project ID")
        for name in ("temp_location", "staging_location"):
            value = getattr(self, name)
            if value and not re.fullmatch(r"gs://[a-z0-9][-_a-z0-9.]+[a-z0-9]/.*", value, re.DOTALL):
                raise ConfigError(f"{key}.{name}: Dataflow needs a Cloud Storage path "
                                  f"gs://BUCKET/PATH, not {value!r}")
        if not self.sdk_container_image.strip():
            raise ConfigError(
                f"{key}.sdk_container_image is required: Dataflow's workers must import this "
                f"project's code (FeatureWindowing's DoFns; tensorflow/tfx#1455), which Beam's "
                f"default worker image lacks. Give the pipeline's image (kubeflow/Dockerfile: the "
                f"project in /pipeline/.venv and Beam's SDK worker boot as its entrypoint), e.g. "
                f"the --image of bertqa compile")
        if self.max_num_workers < 1:
            raise ConfigError(f"{key}.max_num_workers must be >= 1, not {self.max_num_workers}")
        for where, args in (("beam.args", beam.args), ("beam.windowing", beam.windowing)):
            for arg in args:
                name = str(arg).split("=", 1)[0]
                if name.startswith("--") and name[2:] in self.OPTIONS:
                    raise ConfigError(
                        f"{where}: {arg!r} conflicts with {key}.enabled, which sets "
                        + ("--runner=DataflowRunner" if name == "--runner" else f"{name} from {key}")
                        + f" for FeatureWindowing; remove it from {where} (or set {key}.enabled "
                          f"false)")


def windowing_beam_args(beam: BeamConfig) -> List[str]:
    """FeatureWindowing's Beam args: ``beam.args``, the Dataflow preset if enabled, then
    ``beam.windowing``."""
    return list(beam.args) + beam.dataflow.args() + list(beam.windowing)


def check_dataflow_root(beam: BeamConfig, pipeline_root: str) -> None:
    """Dataflow's workers read FeatureWindowing's input and write its output under the
    pipeline root: refuse a root they cannot reach."""
    if beam.dataflow.enabled and not pipeline_root.startswith("gs://"):
        raise ConfigError(f"beam.dataflow.enabled: Dataflow's workers read FeatureWindowing's "
                          f"examples and write its features under the pipeline root, which must be "
                          f"on Cloud Storage (gs://), not {pipeline_root!r}; compile the pipeline "
                          f"for Vertex AI (bertqa compile), or set beam.dataflow.enabled false to "
                          f"window on this machine")


@dataclasses.dataclass
class StepResources:
    """What one step's container asks Vertex AI / Kubernetes for, in compiled pipelines only
    (``bertqa run`` runs every step in its own process). Empty: the platform's default machine.
    Checked and compiled by kubeflow/resources.py."""

    cpu: str = ""     # CPU limit, as kfp's set_cpu_limit: "8", "0.5", "500m"
    memory: str = ""  # memory limit, as kfp's set_memory_limit: "32G", "16Gi"
    # vertex: NVIDIA_L4, NVIDIA_TESLA_T4, NVIDIA_TESLA_A100, ..., TPU_V5_LITEPOD, ...;
    # kfp: nvidia.com/gpu or google.com/tpu (the model chosen by node_selector)
    accelerator: str = ""
    accelerator_count: int = 0  # accelerators of that kind for the step
    tpu_topology: str = ""  # TPU chips of the step's host, e.g. "2x2" (kfp: GKE's topology selector)
    # kfp only: node labels, e.g. {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    node_selector: Dict[str, str] = dataclasses.field(default_factory=dict)
    # Environment variables of the step's container, e.g. {AWS_ENDPOINT_URL: http://minio-service.kubeflow:9000}
    env: Dict[str, str] = dataclasses.field(default_factory=dict)
    # kfp only: environment variables from Kubernetes secrets, "<secret name>:<key>", e.g.
    # {AWS_ACCESS_KEY_ID: "mlpipeline-minio-artifact:accesskey"}
    secret_env: Dict[str, str] = dataclasses.field(default_factory=dict)


# One field per container step of the DAG, the steps named once (components/keys.py).
ResourcesConfig = dataclasses.make_dataclass(
    "ResourcesConfig",
    [(name, StepResources, dataclasses.field(default_factory=StepResources)) for name in keys.COMPONENTS],
    namespace={"__doc__": """``resources.<component>``: one ``StepResources`` per container step of the DAG.""",
               "__module__": __name__})


@dataclasses.dataclass
class PipelineConfig:
    # the pipeline's name (ML Metadata, the compiled pipeline, the blessing's pipeline)
    name: str = "bert-qa"
    # where `bertqa run` writes everything (--output): metadata, pipeline root, pushed models
    output: str = "runs/default"
    # reuse a component's cached result when its inputs and settings are unchanged
    enable_cache: bool = True
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    evaluation: EvaluationConfig = dataclasses.field(default_factory=EvaluationConfig)
    push: PushConfig = dataclasses.field(default_factory=PushConfig)
    beam: BeamConfig = dataclasses.field(default_factory=BeamConfig)
    resources: ResourcesConfig = dataclasses.field(default_factory=ResourcesConfig)

    # -- derived locations: everything a run makes lives under `output` -------------------
    @property
    def output_dir(self) -> str:
        return self.output if "://" in self.output else os.path.abspath(self.output)

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.output_dir, "pipeline_root")

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.output_dir, "metadata.sqlite")

    @property
    def push_destination(self) -> str:
        return self.push.destination or os.path.join(self.output_dir, "pushed")

    @property
    def encoder_uri(self) -> str:
        """The encoder as every step records it (``bert_qa.encoders``: "" is "default")."""
        return encoders.portable_uri(self.model.encoder)

    def input_patterns(self):
        """SquadExampleGen's patterns: ``{"train": [...], "eval": [...]}``, or the list of
        ``data.patterns`` that ``data.hash_buckets`` splits."""
        d = self.data
        return list(d.patterns) if d.patterns else {"train": list(d.train), "eval": list(d.eval)}

    def baseline(self, runs_resolvers: bool = True) -> str:
        """``evaluation.baseline`` with "auto" resolved: TFX's resolver where the orchestrator
        runs one (local, Vertex), else the newest published model (Kubeflow Pipelines)."""
        baseline = self.evaluation.baseline
        if baseline == "auto":
            return "latest_blessed" if runs_resolvers else "latest_published"
        return baseline

    def windowing(self) -> Dict[str, Any]:
        """FeatureWindowing's parameters; every later step takes them from its features."""
        return Windowing.of(self.model).as_dict()

    def spec_args(self) -> Dict[str, Any]:
        """The trainer's spec arguments (plain values); the windowing comes from the features."""
        m = self.model
        return {"uri": self.encoder_uri, "learning_rate": m.learning_rate,
                "optimizer_recipe": m.optimizer_recipe, "distribution_strategy": m.distribution_strategy,
                "predict_batch_size": m.predict_batch_size, "mixed_precision": m.mixed_precision,
                **m.extra_spec_args}

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


BASELINES = ("auto", "latest_blessed", "latest_published", "none")


def _hints(cls) -> Dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a table/mapping, got {value!r}")
        return _build(hint, value, key)
    if origin in (list, List, Sequence):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item,) = typing.get_args(hint) or (Any,)
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin in (dict, Dict):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if origin is typing.Union:  # Optional[x]
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return None if value is None else _coerce(value, args[0], key)
    if hint is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        try:
            return int(value)
        except ValueError as err:
            raise ConfigError(f"{key}: expected an integer, got {value!r}") from err
    if hint is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{key}: expected a number, got {value!r}") from err
    if hint is str:
        return str(value)
    return value


def _build(cls, values: Mapping[str, Any], prefix: str = ""):
    hints = _hints(cls)
    unknown = set(values) - set(hints)
    if unknown:
        where = prefix or "config"
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(hints)}")
    kwargs = {name: _coerce(v, hints[name], f"{prefix}.{name}" if prefix else name)
              for name, v in values.items()}
    return cls(**kwargs)


def _merge(base: Dict[str, Any], update: Mapping[str, Any]) -> Dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping) and key not in (
                "hash_buckets", "extra_spec_args"):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_file(path: str) -> Dict[str, Any]:
    """A YAML (.yaml/.yml/.json) or TOML (.toml) file as a dict, data paths made absolute.

    Anything wrong with the file itself (missing, unreadable, not UTF-8, a syntax error, a top
    level that is not a mapping, a path that is not a string) is a ``ConfigError`` naming the
    file and, where the parser says, the line and column.
    """
    text = read_utf8_file(path, "configuration file", ConfigError)
    if path.endswith(".toml"):
        try:
            values = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:  # its message ends "(at line L, column C)"
            raise ConfigError(f"{path}: not valid TOML: {err}") from None
    else:
        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: {_yaml_problem(err)}") from None
        if values is None:  # an empty file (or only comments): all defaults
            values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: the top level must be a mapping (section: {{key: value}}), "
                          f"not {type(values).__name__} {_short(values)}")
    for section, content in [("", values)] + [(k, v) for k, v in values.items() if isinstance(v, Mapping)]:
        odd = [k for k in content if not isinstance(k, str)]
        if odd:
            where = f"{section}: " if section else ""
            raise ConfigError(f"{path}: {where}keys must be names, not {_short(odd[0])}")
    base = os.path.dirname(os.path.abspath(path))
    data = values.get("data")
    if isinstance(data, Mapping):  # anything else is reported by the schema check
        for key in ("train", "eval", "patterns"):
            if key in data:
                items = [data[key]] if isinstance(data[key], str) else data[key]
                if not isinstance(items, (list, tuple)) or not all(isinstance(p, str) for p in items):
                    raise ConfigError(f"{path}: data.{key}: expected a path or a list of paths, "
                                      f"got {_short(data[key])}")
                data[key] = [_absolute(p, base) for p in items]
    if "output" in values:
        if not isinstance(values["output"], str):
            raise ConfigError(f"{path}: output: expected a directory path, got {_short(values['output'])}")
        values["output"] = _absolute(values["output"], base)
    return values


def _yaml_problem(err) -> str:
    """A YAML error as one line: what is wrong, and where (line/column, 1-based)."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err)
    context = getattr(err, "context", None)
    context_mark = getattr(err, "context_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    if context and context_mark is not None:
        context += f" that starts at line {context_mark.line + 1}, column {context_mark.column + 1}"
    return f"{where}not valid YAML: {problem}" + (f" ({context})" if context else "")


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _absolute(path: str, base: str) -> str:
    return path if "://" in path or os.path.isabs(path) else os.path.normpath(os.path.join(base, path))


def parse_override(text: str) -> Dict[str, Any]:
    """``section.key=value`` -> nested dict; the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    dotted, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"override {text!r}: the value is not valid YAML ({err})") from None
    nested: Dict[str, Any] = {}
    cursor = nested
    parts = dotted.strip().split(".")
    for part in parts[:-1]:
        cursor = cursor.setdefault(part, {})
    cursor[parts[-1]] = value
    return nested


def load_config(path: Optional[str] = None, overrides: Sequence[Mapping[str, Any]] = ()) -> PipelineConfig:
    values: Dict[str, Any] = {}
    if path:
        values = read_file(path)
        try:  # the file's own keys and types, so that a mistake there names the file
            _build(PipelineConfig, _merge(PipelineConfig().to_dict(), values))
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None
    for override in overrides:
        values = _merge(values, override)
    config = _build(PipelineConfig, _merge(PipelineConfig().to_dict(), values))
    validate(config)
    return config


def validate(config: PipelineConfig) -> None:
    d = config.data
    if d.patterns and not d.hash_buckets:
        raise ConfigError("data.patterns needs data.hash_buckets (e.g. {train: 4, eval: 1})")
    if d.hash_buckets and set(d.hash_buckets) != {"train", "eval"}:
        raise ConfigError(f"data.hash_buckets must have exactly the splits train and eval, not "
                          f"{sorted(d.hash_buckets)}")
    if not d.patterns and (not d.train or not d.eval):
        raise ConfigError("give data.train and data.eval patterns (or data.patterns + data.hash_buckets)")
    if d.multi_answer not in ("first", "error"):
        raise ConfigError(f"data.multi_answer must be 'first' or 'error', not {d.multi_answer!r}")
    if config.model.spec not in ("BertQaSpec", "MobileBertQaSpec"):
        raise ConfigError(f"model.spec must be BertQaSpec or MobileBertQaSpec, not {config.model.spec!r}")
    bad = [v for v in config.export.variants if v not in QUANTIZATIONS]
    if bad:
        raise ConfigError(f"export.variants {bad} are not among {QUANTIZATIONS}")
    if config.push.variant not in config.export.variants:
        raise ConfigError(f"push.variant {config.push.variant!r} is not exported (export.variants="
                          f"{config.export.variants})")
    q = config.evaluation.quantized_variant
    if q and q not in config.export.variants:
        raise ConfigError(f"evaluation.quantized_variant {q!r} is not exported")
    if q and config.push.variant not in ("float32", q):
        # The gate would score one quantized file and bless the push of another.
        raise ConfigError(f"push.variant {config.push.variant!r} is quantized but evaluation.quantized_variant "
                          f"is {q!r}: the quantization gate would check a file that is not pushed; set "
                          f"evaluation.quantized_variant={config.push.variant} (or \"\" to push it unchecked)")
    doubled = sorted(set(config.model.extra_spec_args) & (set(Windowing.names()) | {"uri", "model_dir"}))
    if doubled:
        raise ConfigError(f"model.extra_spec_args {doubled}: set model.seq_len / query_len / doc_stride / "
                          f"do_lower_case / encoder instead (model_dir is the trainer's own)")
    if config.evaluation.baseline not in BASELINES:
        raise ConfigError(f"evaluation.baseline must be one of {BASELINES}, not {config.evaluation.baseline!r}")
    check_settings(config)
    config.beam.dataflow.check(config.beam)
    config.train.vertex_custom_job.check()
    step_resources.check_config(config.resources)


# The configuration keys of the settings ``bert_qa.settings.check_settings`` knows.
SETTING_KEYS = {
    "seq_len": "model.seq_len", "query_len": "model.query_len", "doc_stride": "model.doc_stride",
    "distribution_strategy": "model.distribution_strategy", "mixed_precision": "model.mixed_precision",
    "optimizer_recipe": "model.optimizer_recipe", "predict_batch_size": "model.predict_batch_size",
    "quantization": "export.variants", "max_representative_samples": "export.max_representative_samples",
    "epochs": "train.epochs", "batch_size": "train.batch_size", "steps_per_epoch": "train.steps_per_epoch",
    "max_answer_length": "evaluation.max_answer_length",
}


def check_settings(config: PipelineConfig) -> None:
    """Every model, training, export and evaluation setting through the library's one check
    (``bert_qa.settings``), with the encoder's bounds, before any work: a SettingError (exit 1)
    names the configuration key and its allowed range."""
    from bert_qa.spec import SPEC_CLASSES  # lazy: bert_qa.spec loads TensorFlow (seconds)

    m, t = config.model, config.train
    known = set(inspect.signature(SPEC_CLASSES[m.spec]).parameters)
    unknown = sorted(set(m.extra_spec_args) - known)
    if unknown:
        raise ConfigError(f"model.extra_spec_args {unknown}: not arguments of {m.spec} "
                          f"(it takes {sorted(known - {'uri', 'model_dir'} - set(Windowing.names()))})")
    values = {"seq_len": m.seq_len, "query_len": m.query_len, "doc_stride": m.doc_stride,
              "distribution_strategy": m.distribution_strategy, "mixed_precision": m.mixed_precision,
              "optimizer_recipe": m.optimizer_recipe, "predict_batch_size": m.predict_batch_size,
              "quantization": list(config.export.variants),
              "max_representative_samples": config.export.max_representative_samples,
              "epochs": t.epochs, "batch_size": t.batch_size, "steps_per_epoch": t.steps_per_epoch,
              "max_answer_length": config.evaluation.max_answer_length}
    keys = dict(SETTING_KEYS)
    for name, value in m.extra_spec_args.items():  # e.g. default_batch_size, a strategy for one run
        values[name] = value
        keys[name] = f"model.extra_spec_args.{name}"
    try:
        max_positions = settings.max_positions_of(m.encoder)
        settings.check_settings(values, keys, max_positions=max_positions)
        if config.export.serving_seq_len:
            settings.check_settings({"seq_len": config.export.serving_seq_len, "query_len": m.query_len},
                                    {**keys, "seq_len": "export.serving_seq_len"}, max_positions=max_positions)
        if not t.steps_per_epoch:
            bound = training_features_bound(config)
            if bound is not None:
                settings.check_settings({"batch_size": t.batch_size}, keys, train_features=bound[0],
                                        train_features_note=bound[1])
    except settings.SettingError as err:  # the same message, as the configuration's own error
        raise ConfigError(str(err)) from None


def _local_files(patterns) -> Optional[List[str]]:
    """The local files ``patterns`` name, or None if any is a URI or matches nothing."""
    files = []
    for pattern in patterns:
        if "://" in pattern:
            return None
        matched = sorted(glob.glob(pattern))
        if not matched:
            return None
        files += matched
    return files


# Few enough training questions to window them at configuration time (a cheap bound first).
_EXACT_COUNT_LIMIT = 5000


def training_features_bound(config: PipelineConfig):
    """(at most how many training features the data gives, where that number comes from), or
    None where it cannot be known cheaply (URIs, unreadable files: the pipeline reports those).

    Counted only when it is cheap: the local training files are read, and a bound (every
    context character a token) is taken; only if it is below the batch size are the questions
    windowed as FeatureWindowing will (the vocabulary of the default or a local encoder)."""
    d, m = config.data, config.model
    hashed = bool(d.patterns)
    files = _local_files(d.patterns if hashed else d.train)
    if not files:
        return None
    try:
        questions = [q for path in files for q in squad_data.read_questions(path)]
    except (InputError, OSError, ValueError):
        return None
    if hashed:
        where = f"in all {len(questions)} questions of data.patterns (the train split has part of them)"
    else:
        where = f"of the {len(questions)} questions in data.train"
    if len(questions) > _EXACT_COUNT_LIMIT:
        return None
    shape = (m.seq_len, m.query_len, m.doc_stride)
    bound = settings.training_features_bound(questions, None, m.do_lower_case, *shape,
                                             d.version_2_with_negative, d.multi_answer)
    if bound >= config.train.batch_size:
        return None
    vocab = None
    if encoders.is_default(m.encoder):
        vocab = os.path.join(minilm_checkpoint_dir(), "vocab.txt")
    elif "://" not in m.encoder and os.path.isfile(os.path.join(m.encoder, "assets", "vocab.txt")):
        vocab = os.path.join(m.encoder, "assets", "vocab.txt")
    if vocab is None or not os.path.isfile(vocab):
        return bound, f"{where} can give at most (every context character taken as a token)"
    try:
        count = settings.training_features_bound(questions, vocab, m.do_lower_case, *shape,
                                                 d.version_2_with_negative, d.multi_answer)
    except InputError:
        return None  # e.g. multi_answer=error on a multi-answer question: the pipeline says so
    return count, f"{where} give once windowed"


def check_local_outputs(config: PipelineConfig) -> None:
    """Where `bertqa run` writes must be a writable directory (or creatable), checked before
    any work: ``output``, and ``push.destination`` / ``train.checkpoint_root`` when local."""
    settings.check_output_dir(config.output_dir, "output")
    if config.push.destination:
        settings.check_output_dir(config.push.destination, "push.destination")
    if config.train.checkpoint_root:
        settings.check_output_dir(config.train.checkpoint_root, "train.checkpoint_root")


def dumps(config: PipelineConfig) -> str:
    return json.dumps(config.to_dict(), indent=2, sort_keys=True)
