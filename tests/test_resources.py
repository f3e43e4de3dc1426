"""Machines per step in the compiled pipeline (kubeflow/resources.py), the GPU image and its lock.

Offline: compiles with ``kubeflow.compile.compile_pipeline`` (and ``bertqa compile``), then reads
the result back through kfp's own protos: the Vertex PipelineJob JSON as ``PipelineJob``, the
Kubeflow YAML as ``PipelineSpec`` + ``PlatformSpec`` (and as ``kfp.Client`` reads a package), the
Kubernetes executor config as kfp-kubernetes' ``KubernetesExecutorConfig``. Nothing is submitted
and no image is built (no Docker engine here): the Dockerfile and uv.lock are checked as text.
"""
from __future__ import annotations

import json
import os
import re
import tomllib

import pytest
import yaml
from google.protobuf import json_format

from bert_qa.errors import InputError
from bert_qa_pipeline.pipeline import config as config_lib
from tests import fixtures

CPU_IMAGE = "example.com/bert-qa:1"
GPU_IMAGE = "example.com/bert-qa-gpu:1"
TPU_IMAGE = "example.com/bert-qa-tpu:1"
STEPS = ("SquadExampleGen", "FeatureWindowing", "QaTrainer", "TfliteExport", "QaEvaluator", "TflitePusher")
TFX_COMMAND = ["python", "-m", "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"]
KFP_COMMAND = ["python", "-m", "bert_qa_pipeline.kubeflow.kfp_task_entrypoint"]
L4_NODES = {"cloud.google.com/gke-accelerator": "nvidia-l4"}


def _config(resources: dict, **model) -> config_lib.PipelineConfig:
    """The default pipeline (repository data, default encoder: nothing to build) with resources."""
    values = {"resources": resources}
    if model:
        values["model"] = model
    return config_lib.load_config(None, [values])


def _deployment(pipeline_spec: dict):
    """PipelineSpec -> its deploymentSpec as kfp's PipelineDeploymentConfig (a Struct in the spec)."""
    from kfp.pipeline_spec import pipeline_spec_pb2

    spec = json_format.ParseDict(pipeline_spec, pipeline_spec_pb2.PipelineSpec())
    return json_format.ParseDict(json_format.MessageToDict(spec.deployment_spec),
                                 pipeline_spec_pb2.PipelineDeploymentConfig())


def _containers(deployment) -> dict:
    return {name: deployment.executors[f"{name}_executor"].container for name in STEPS}


def _compile_vertex(tmp_path, config, **images) -> dict:
    from kfp.pipeline_spec import pipeline_spec_pb2

    from bert_qa_pipeline.kubeflow.compile import compile_pipeline

    path = compile_pipeline(config, str(tmp_path / "pipeline.json"), "gs://bucket/root", CPU_IMAGE, **images)
    job = json_format.ParseDict(json.load(open(path)), pipeline_spec_pb2.PipelineJob())  # strict
    return {"path": path, "job": job,
            "deployment": _deployment(json_format.MessageToDict(job.pipeline_spec))}


def _compile_kfp(tmp_path, config, **images) -> dict:
    from kfp.pipeline_spec import pipeline_spec_pb2

    from bert_qa_pipeline.kubeflow.compile import compile_pipeline

    path = compile_pipeline(config, str(tmp_path / "pipeline.yaml"), "gs://bucket/root", CPU_IMAGE,
                            target="kfp", **images)
    docs = list(yaml.safe_load_all(open(path)))
    platform = json_format.ParseDict(docs[1], pipeline_spec_pb2.PlatformSpec()) if len(docs) > 1 else None
    return {"path": path, "docs": docs, "deployment": _deployment(docs[0]), "platform": platform}


def _kubernetes_executors(platform) -> dict:
    """The platform spec's executors as kfp-kubernetes KubernetesExecutorConfig messages."""
    from kfp.kubernetes import kubernetes_executor_config_pb2

    executors = platform.platforms["kubernetes"].deployment_spec.executors
    return {label: json_format.ParseDict(json_format.MessageToDict(struct),
                                         kubernetes_executor_config_pb2.KubernetesExecutorConfig())
            for label, struct in executors.items()}


def _kfp_reference(tmp_path, tasks: dict) -> dict:
    """What kfp's compiler and kfp-kubernetes write for the same settings, built here with their
    own calls: ``tasks`` maps a step to a function that configures its task (``set_cpu_limit``,
    ``kubernetes.add_node_selector``, ...). Returns each step's ``resources`` (a ResourceSpec) and
    Kubernetes executor config (None when kfp-kubernetes writes none)."""
    from kfp import compiler, dsl
    from kfp.pipeline_spec import pipeline_spec_pb2

    @dsl.container_component
    def step():
        return dsl.ContainerSpec(image=CPU_IMAGE, command=["true"])

    @dsl.pipeline(name="reference")
    def reference():
        for configure in tasks.values():
            configure(step())

    path = str(tmp_path / "reference.yaml")
    compiler.Compiler().compile(reference, path)
    docs = list(yaml.safe_load_all(open(path)))
    platform = json_format.ParseDict(docs[1], pipeline_spec_pb2.PlatformSpec()) if len(docs) > 1 else None
    k8s = _kubernetes_executors(platform) if platform else {}
    deployment = _deployment(docs[0])
    labels = ["exec-step"] + [f"exec-step-{i}" for i in range(2, len(tasks) + 1)]  # kfp's task naming
    return {name: {"resources": deployment.executors[label].container.resources, "kubernetes": k8s.get(label)}
            for name, label in zip(tasks, labels)}


def _same_as_kfp(containers: dict, kubernetes_executors: dict, reference: dict):
    """Our compiled steps hold exactly kfp's and kfp-kubernetes' messages for the same settings."""
    for name, expected in reference.items():
        assert containers[name].resources == expected["resources"], name
        assert kubernetes_executors.get(f"{name}_executor") == expected["kubernetes"], name


def _no_change(task):
    return task


# -- compiled resources ---------------------------------------------------------------------------

def test_vertex_spec_requests_cpu_memory_and_a_gpu_for_the_trainer_only(tmp_path):
    config = _config({"QaTrainer": {"cpu": "8", "memory": "32G", "accelerator": "NVIDIA_L4",
                                    "accelerator_count": 1},
                      "FeatureWindowing": {"cpu": "4", "memory": "16Gi"}})
    compiled = _compile_vertex(tmp_path, config, gpu_image=GPU_IMAGE)
    containers = _containers(compiled["deployment"])

    trainer = containers["QaTrainer"].resources
    # The numeric fields (Vertex AI, older Kubeflow backends) ...
    assert (trainer.cpu_limit, trainer.memory_limit) == (8.0, 32.0)
    assert (trainer.accelerator.type, trainer.accelerator.count) == ("NVIDIA_L4", 1)
    # ... and the string fields kfp 2.16's compiler writes beside them.
    assert (trainer.resource_cpu_limit, trainer.resource_memory_limit) == ("8", "32G")
    assert (trainer.accelerator.resource_type, trainer.accelerator.resource_count) == ("NVIDIA_L4", "1")
    windowing = containers["FeatureWindowing"].resources
    assert (windowing.resource_cpu_limit, windowing.cpu_limit) == ("4", 4.0)
    assert windowing.resource_memory_limit == "16Gi"
    assert windowing.memory_limit == pytest.approx(16 * 2 ** 30 / 1e9)  # kfp's GB, as its compiler
    assert not windowing.HasField("accelerator")
    for name in ("SquadExampleGen", "TfliteExport", "QaEvaluator", "TflitePusher"):
        assert not containers[name].HasField("resources"), name  # the platform's default machine

    # The GPU image for the step with the GPU only.
    assert {name: c.image for name, c in containers.items()} == {
        name: GPU_IMAGE if name == "QaTrainer" else CPU_IMAGE for name in STEPS}
    # Every task gives its own command, so the image's ENTRYPOINT (Beam's boot) is never run here.
    assert all(list(c.command) == TFX_COMMAND for c in containers.values())

    # The same messages as kfp's own compiler writes for set_cpu_limit / set_memory_limit /
    # set_accelerator_type / set_accelerator_limit, step by step (none for the other four).
    reference = _kfp_reference(tmp_path, {
        "QaTrainer": lambda t: t.set_cpu_limit("8").set_memory_limit("32G").set_accelerator_type(
            "NVIDIA_L4").set_accelerator_limit(1),
        "FeatureWindowing": lambda t: t.set_cpu_limit("4").set_memory_limit("16Gi"),
        **{name: _no_change for name in ("SquadExampleGen", "TfliteExport", "QaEvaluator", "TflitePusher")}})
    _same_as_kfp(containers, {}, reference)

    # The real Vertex SDK takes the job (building it submits nothing).
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform

    aiplatform.PipelineJob(display_name="bert-qa", template_path=compiled["path"],
                           pipeline_root="gs://bucket/root", project="p", location="us-central1",
                           credentials=AnonymousCredentials())


# Every memory unit kfp knows, bare bytes, whole and fractional CPUs, millicores.
QUANTITIES = [("8", "32G"), ("0.5", "16Gi"), ("500m", "1000"), ("2.25", "3E"), ("1m", "2Ei"),
              ("16", "1P"), ("96", "5Pi"), ("0.1", "2T"), ("250m", "1Ti"), ("3", "512M"),
              ("7", "768Mi"), ("12", "1500K"), ("1", "64Ki")]


def test_cpu_and_memory_numbers_are_kfps_own(tmp_path):
    """Our conversions (resources.cpu_to_float / memory_to_float, which mirror kfp's private
    compiler_utils functions) give exactly the numbers kfp's compiler writes."""
    from kfp import compiler, dsl

    from bert_qa_pipeline.kubeflow.resources import resource_spec

    @dsl.container_component
    def step():
        return dsl.ContainerSpec(image=CPU_IMAGE, command=["true"])

    for i, (cpu, memory) in enumerate(QUANTITIES):
        @dsl.pipeline(name="reference")
        def reference():
            step().set_cpu_limit(cpu).set_memory_limit(memory)

        path = str(tmp_path / f"reference-{i}.yaml")
        compiler.Compiler().compile(reference, path)
        kfp_resources = _deployment(yaml.safe_load(open(path))).executors["exec-step"].container.resources
        ours = resource_spec(cpu, memory)
        assert (ours.cpu_limit, ours.memory_limit) == (kfp_resources.cpu_limit, kfp_resources.memory_limit), \
            (cpu, memory)
        assert ours == kfp_resources, (cpu, memory)


def test_vertex_spec_with_a_tpu_trainer(tmp_path):
    config = _config({"QaTrainer": {"accelerator": "TPU_V5_LITEPOD", "accelerator_count": 4}},
                     distribution_strategy="tpu", extra_spec_args={"tpu": "local"})
    containers = _containers(_compile_vertex(tmp_path, config, tpu_image=TPU_IMAGE)["deployment"])
    accelerator = containers["QaTrainer"].resources.accelerator
    assert (accelerator.type, accelerator.count, accelerator.resource_type, accelerator.resource_count) == (
        "TPU_V5_LITEPOD", 4, "TPU_V5_LITEPOD", "4")
    assert containers["QaTrainer"].image == TPU_IMAGE
    assert {c.image for name, c in containers.items() if name != "QaTrainer"} == {CPU_IMAGE}
    _same_as_kfp(containers, {}, _kfp_reference(tmp_path, {
        "QaTrainer": lambda t: t.set_accelerator_type("TPU_V5_LITEPOD").set_accelerator_limit(4)}))


def test_kfp_spec_asks_kubernetes_for_nvidia_gpus_on_selected_nodes(tmp_path, monkeypatch):
    from kfp.pipeline_spec import pipeline_spec_pb2

    config = _config({"QaTrainer": {"cpu": "8", "memory": "32Gi", "accelerator": "nvidia.com/gpu",
                                    "accelerator_count": 2, "node_selector": L4_NODES},
                      "QaEvaluator": {"memory": "16G", "accelerator": "nvidia.com/gpu", "accelerator_count": 1,
                                      "node_selector": {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}}},
                     distribution_strategy="mirrored")
    compiled = _compile_kfp(tmp_path, config, gpu_image=GPU_IMAGE)
    containers = _containers(compiled["deployment"])
    trainer = containers["QaTrainer"].resources
    assert (trainer.accelerator.type, trainer.accelerator.count) == ("nvidia.com/gpu", 2)
    assert (trainer.accelerator.resource_type, trainer.accelerator.resource_count) == ("nvidia.com/gpu", "2")
    assert (trainer.resource_cpu_limit, trainer.cpu_limit) == ("8", 8.0)
    assert (trainer.resource_memory_limit, trainer.memory_limit) == ("32Gi", pytest.approx(32 * 2 ** 30 / 1e9))
    evaluator = containers["QaEvaluator"].resources
    assert (evaluator.accelerator.resource_type, evaluator.accelerator.resource_count) == ("nvidia.com/gpu", "1")
    assert {name: c.image for name, c in containers.items()} == {
        name: GPU_IMAGE if name in ("QaTrainer", "QaEvaluator") else CPU_IMAGE for name in STEPS}
    # Kubeflow tasks run our entrypoint, which adapts KFP's launcher to TFX (kfp_task_entrypoint.py).
    assert all(list(c.command) == KFP_COMMAND for c in containers.values())

    # The node selectors: the Kubernetes platform spec, kfp-kubernetes' layout, second document.
    assert len(compiled["docs"]) == 2
    executors = _kubernetes_executors(compiled["platform"])
    assert set(executors) == {"QaTrainer_executor", "QaEvaluator_executor"}
    assert dict(executors["QaTrainer_executor"].node_selector.labels) == L4_NODES
    assert dict(executors["QaEvaluator_executor"].node_selector.labels) == {
        "cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
    # Every step's resources and Kubernetes config, as kfp and kfp-kubernetes write them.
    from kfp import kubernetes

    def trainer_task(t):
        t.set_cpu_limit("8").set_memory_limit("32Gi").set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(2)
        return kubernetes.add_node_selector(t, label_key="cloud.google.com/gke-accelerator", label_value="nvidia-l4")

    def evaluator_task(t):
        t.set_memory_limit("16G").set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(1)
        return kubernetes.add_node_selector(t, label_key="cloud.google.com/gke-accelerator",
                                            label_value="nvidia-tesla-t4")

    _same_as_kfp(containers, executors, _kfp_reference(tmp_path, {
        "QaTrainer": trainer_task, "QaEvaluator": evaluator_task,
        **{name: _no_change for name in ("SquadExampleGen", "FeatureWindowing", "TfliteExport", "TflitePusher")}}))
    # kfp.Client reads the package the same way (and sends both documents); `bertqa submit`
    # finds the pipeline spec as the first document.
    from kfp.client.client import _extract_pipeline_yaml

    from bert_qa_pipeline.kubeflow.kfp_submit import load_pipeline_spec

    package = _extract_pipeline_yaml(compiled["path"])
    assert package.platform_spec == compiled["platform"]
    assert package.to_dict()["platform_spec"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"][
        "QaTrainer_executor"] == {"nodeSelector": {"labels": L4_NODES}}
    assert load_pipeline_spec(compiled["path"])["deploymentSpec"] == compiled["docs"][0]["deploymentSpec"]

    # `bertqa submit --target kfp` sends the node selectors with the run (the fake API server
    # applies the real server's template rules).
    from kfp.client import client as kfp_client_module

    from bert_qa_pipeline.kubeflow.kfp_submit import submit_kfp
    from tests.fake_kfp_server import API, FakeKfpServer

    monkeypatch.setattr(kfp_client_module.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "kfp" / "context.json"))
    for name in [n for n in os.environ if n.startswith("KF_PIPELINES_")]:
        monkeypatch.delenv(name)
    with FakeKfpServer() as fake:
        run_id, _ = submit_kfp(compiled["path"], fake.url, {"epochs": "1"})
        (body,) = fake.bodies("POST", f"{API}/runs")
    assert list(fake.runs) == [run_id]
    sent = json_format.ParseDict(body["pipeline_spec"]["platform_spec"], pipeline_spec_pb2.PlatformSpec())
    assert sent == compiled["platform"]


def test_each_step_gets_its_thread_setting_in_its_container_env(tmp_path):
    """One inter-op thread for the trainer (repeatable training), TensorFlow's default pool ("0")
    elsewhere, on both targets; the images set none (test_dockerfile_stages_install_from_the_lock)."""
    from bert_qa_pipeline.kubeflow.compile import STEP_INTEROP_THREADS

    config = _config({})
    for compiled in (_compile_vertex(tmp_path / "v", config), _compile_kfp(tmp_path / "k", config)):
        containers = _containers(compiled["deployment"])
        env = {name: {e.name: e.value for e in c.env} for name, c in containers.items()}
        assert set(env) == set(STEPS) == set(STEP_INTEROP_THREADS)
        for name in STEPS:
            expected = {"TF_NUM_INTEROP_THREADS": "1", "BERT_QA_SET_TF_NUM_INTEROP_THREADS": "1"} \
                if name == "QaTrainer" else {"TF_NUM_INTEROP_THREADS": "0"}
            assert env[name] == expected, name


def test_step_env_and_secrets_as_kfp_kubernetes_writes_them(tmp_path):
    """``resources.<step>.env`` / ``secret_env`` (the S3 push destination's endpoint and
    credentials, say) compile to what kfp's own ``set_env_variable`` and kfp-kubernetes'
    ``use_secret_as_env`` write for a task: built here by those functions, then compared."""
    from kfp import compiler, dsl, kubernetes

    from bert_qa_pipeline.kubeflow.compile import STEP_INTEROP_THREADS

    endpoint = "http://minio-service.kubeflow:9000"
    secrets = {"AWS_ACCESS_KEY_ID": "mlpipeline-minio-artifact:accesskey",
               "AWS_SECRET_ACCESS_KEY": "mlpipeline-minio-artifact:secretkey", "EXTRA": "other-secret:token"}
    config = _config({"TflitePusher": {"env": {"AWS_ENDPOINT_URL": endpoint}, "secret_env": secrets}})
    ours = _compile_kfp(tmp_path, config)

    @dsl.container_component
    def pusher():
        return dsl.ContainerSpec(image=CPU_IMAGE, command=["true"])

    @dsl.pipeline(name="reference")
    def reference():
        task = pusher()
        task.set_env_variable("TF_NUM_INTEROP_THREADS", STEP_INTEROP_THREADS["TflitePusher"])
        task.set_env_variable("AWS_ENDPOINT_URL", endpoint)
        kubernetes.use_secret_as_env(task, secret_name="mlpipeline-minio-artifact",
                                     secret_key_to_env={"accesskey": "AWS_ACCESS_KEY_ID",
                                                        "secretkey": "AWS_SECRET_ACCESS_KEY"})
        kubernetes.use_secret_as_env(task, secret_name="other-secret", secret_key_to_env={"token": "EXTRA"})

    compiler.Compiler().compile(reference, str(tmp_path / "reference.yaml"))
    expected = list(yaml.safe_load_all(open(tmp_path / "reference.yaml")))
    (expected_container,) = [e["container"] for e in expected[0]["deploymentSpec"]["executors"].values()]
    (expected_k8s,) = expected[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values()
    pusher_container = ours["docs"][0]["deploymentSpec"]["executors"]["TflitePusher_executor"]["container"]
    assert pusher_container["env"] == expected_container["env"]
    assert ours["docs"][1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"] == {
        "TflitePusher_executor": expected_k8s}


def test_kfp_spec_for_a_gke_tpu_slice(tmp_path):
    config = _config({"QaTrainer": {"accelerator": "google.com/tpu", "accelerator_count": 4, "tpu_topology": "2x2",
                                    "node_selector": {"cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice"}}},
                     distribution_strategy="tpu", extra_spec_args={"tpu": "local"})
    compiled = _compile_kfp(tmp_path, config, tpu_image=TPU_IMAGE)
    trainer = _containers(compiled["deployment"])["QaTrainer"]
    assert (trainer.resources.accelerator.resource_type, trainer.resources.accelerator.resource_count) == (
        "google.com/tpu", "4")
    assert trainer.image == TPU_IMAGE
    labels = dict(_kubernetes_executors(compiled["platform"])["QaTrainer_executor"].node_selector.labels)
    assert labels == {"cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice",
                      "cloud.google.com/gke-tpu-topology": "2x2"}
    # GKE's TPU recipe with kfp-kubernetes: the accelerator and topology node labels, google.com/tpu chips.
    from kfp import kubernetes

    def tpu_task(t):
        t.set_accelerator_type("google.com/tpu").set_accelerator_limit(4)
        kubernetes.add_node_selector(t, label_key="cloud.google.com/gke-tpu-accelerator",
                                     label_value="tpu-v5-lite-podslice")
        return kubernetes.add_node_selector(t, label_key="cloud.google.com/gke-tpu-topology", label_value="2x2")

    _same_as_kfp(_containers(compiled["deployment"]), _kubernetes_executors(compiled["platform"]),
                 _kfp_reference(tmp_path, {"QaTrainer": tpu_task}))


def test_no_resources_compile_as_before(tmp_path):
    """Without requests: one image, no resources, and a single-document Kubeflow YAML."""
    compiled = _compile_kfp(tmp_path, _config({}))
    assert len(compiled["docs"]) == 1
    containers = _containers(compiled["deployment"])
    assert all(not c.HasField("resources") and c.image == CPU_IMAGE for c in containers.values())


def test_bertqa_compile_takes_the_gpu_image(tmp_path, capsys):
    from bert_qa_cli.main import main

    output = tmp_path / "job.json"
    argv = ["compile", "--target", "vertex", "--pipeline-root", "gs://bucket/root", "--image", CPU_IMAGE,
            "--output", str(output), "--set", "resources.QaTrainer={accelerator: NVIDIA_TESLA_T4, accelerator_count: 1}"]
    assert main(argv) == 1  # a GPU without a GPU image
    err = capsys.readouterr().err
    assert "--gpu-image" in err and "Traceback" not in err and not output.exists()
    assert main(argv + ["--gpu-image", GPU_IMAGE]) == 0
    executors = json.load(open(output))["pipelineSpec"]["deploymentSpec"]["executors"]
    assert executors["QaTrainer_executor"]["container"]["image"] == GPU_IMAGE
    assert executors["QaTrainer_executor"]["container"]["resources"]["accelerator"]["resourceType"] == "NVIDIA_TESLA_T4"


# -- refusals -------------------------------------------------------------------------------------

GPU = {"accelerator": "NVIDIA_L4", "accelerator_count": 1}
KFP_GPU = {"accelerator": "nvidia.com/gpu", "accelerator_count": 1}
REFUSED = {
    "vertex name on kfp": ("kfp", {"QaTrainer": GPU}, {}, r"NVIDIA_L4 is a Vertex AI accelerator name.*nvidia\.com/gpu"),
    "vertex tpu on kfp": ("kfp", {"QaTrainer": {"accelerator": "TPU_V5_LITEPOD", "accelerator_count": 4}},
                          {"distribution_strategy": "tpu"}, r"Vertex AI accelerator name.*google\.com/tpu"),
    "kfp name on vertex": ("vertex", {"QaTrainer": KFP_GPU}, {}, r"nvidia\.com/gpu is a Kubernetes resource name.*NVIDIA_L4"),
    "node selector on vertex": ("vertex", {"QaTrainer": {"node_selector": L4_NODES}}, {}, r"node_selector.*--target kfp"),
    "topology on vertex": ("vertex", {"QaTrainer": {"accelerator": "TPU_V5_LITEPOD", "accelerator_count": 4,
                                                    "tpu_topology": "2x2"}},
                           {"distribution_strategy": "tpu"}, r"tpu_topology.*accelerator_count"),
    "gpu with strategy tpu": ("vertex", {"QaTrainer": GPU}, {"distribution_strategy": "tpu"},
                              r"NVIDIA_L4 is a GPU, but model.distribution_strategy=tpu trains on TPUs only"),
    "tpu with mirrored": ("vertex", {"QaTrainer": {"accelerator": "TPU_V5_LITEPOD", "accelerator_count": 4}},
                          {"distribution_strategy": "mirrored"}, r"is a TPU, which only model.distribution_strategy=tpu"),
    "tpu with off on kfp": ("kfp", {"QaTrainer": {"accelerator": "google.com/tpu", "accelerator_count": 4,
                                                  "tpu_topology": "2x2", "node_selector": {
                                                      "cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice"}}},
                            {}, r"is a TPU.*not off"),
    "2 gpus with off": ("vertex", {"QaTrainer": {**GPU, "accelerator_count": 2}}, {"distribution_strategy": "off"},
                        r"distribution_strategy=off trains on one GPU.*mirrored"),
    "4 gpus with one_device": ("kfp", {"QaTrainer": {**KFP_GPU, "accelerator_count": 4}},
                               {"distribution_strategy": "one_device"}, r"one_device trains on one GPU, so 3 of 4"),
    "strategy tpu without a tpu": ("vertex", {}, {"distribution_strategy": "tpu"}, r"distribution_strategy=tpu needs a TPU"),
    "gpu on windowing": ("vertex", {"FeatureWindowing": GPU}, {}, r"FeatureWindowing tokenizes in Beam on CPUs"),
    "tpu on evaluator": ("vertex", {"QaEvaluator": {"accelerator": "TPU_V3", "accelerator_count": 8}}, {},
                         r"QaEvaluator predicts on one GPU.*cannot use a TPU"),
    "gke tpu without topology": ("kfp", {"QaTrainer": {"accelerator": "google.com/tpu", "accelerator_count": 4}},
                                 {"distribution_strategy": "tpu"}, r"tpu_topology: GKE schedules TPU pods"),
    "gke tpu without its node selector": ("kfp", {"QaTrainer": {"accelerator": "google.com/tpu", "accelerator_count": 4,
                                                                "tpu_topology": "2x2"}},
                                          {"distribution_strategy": "tpu"}, r"gke-tpu-accelerator"),
    "secret_env on vertex": ("vertex", {"TflitePusher": {"secret_env": {"AWS_ACCESS_KEY_ID": "s3-creds:key"}}}, {},
                             r"TflitePusher.secret_env: Kubernetes secrets are for Kubeflow Pipelines"),
    "tpu without a tpu image": ("vertex", {"QaTrainer": {"accelerator": "TPU_V5_LITEPOD", "accelerator_count": 4}},
                                {"distribution_strategy": "tpu"}, r"--tpu-image"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_with_a_reason(case, tmp_path):
    from bert_qa_pipeline.kubeflow.compile import CompileError, compile_pipeline

    target, resources, model, message = REFUSED[case]
    output = tmp_path / "out"
    images = {"gpu_image": GPU_IMAGE}
    if case != "tpu without a tpu image":
        images["tpu_image"] = TPU_IMAGE
    with pytest.raises(CompileError, match=message) as raised:
        compile_pipeline(_config(resources, **model), str(output), "gs://bucket/root", CPU_IMAGE,
                         target=target, **images)
    assert isinstance(raised.value, InputError)  # `bertqa compile` prints it and exits 1
    assert not output.exists()


CONFIG_ERRORS = {
    "env name": ({"TflitePusher": {"env": {"AWS-ENDPOINT": "x"}}}, r"TflitePusher\.env: 'AWS-ENDPOINT' is not an environment"),
    "reserved env": ({"QaTrainer": {"env": {"TF_CONFIG": "{}"}}}, r"QaTrainer\.env\.TF_CONFIG: set by the compiled pipeline"),
    "secret format": ({"TflitePusher": {"secret_env": {"AWS_ACCESS_KEY_ID": "creds/key"}}},
                      r"secret_env\.AWS_ACCESS_KEY_ID: 'creds/key' is not \"<secret name>:<key>\""),
    "env twice": ({"TflitePusher": {"env": {"A": "1"}, "secret_env": {"A": "s:k"}}}, r"\['A'\] set in both env and secret_env"),
    "unknown step": ({"QaTrainr": {"cpu": "8"}}, r"resources: unknown key\(s\) \['QaTrainr'\]; known: .*QaTrainer"),
    "cpu": ({"QaTrainer": {"cpu": "eight"}}, r"resources\.QaTrainer\.cpu: 'eight' is not a CPU quantity"),
    "zero cpu": ({"QaTrainer": {"cpu": "0"}}, r"resources\.QaTrainer\.cpu: '0' asks for nothing"),
    "memory": ({"TfliteExport": {"memory": "3.5GB"}}, r"resources\.TfliteExport\.memory: '3.5GB' is not a memory"),
    "accelerator": ({"QaTrainer": {"accelerator": "NVIDIA_L44", "accelerator_count": 1}},
                    r"resources\.QaTrainer\.accelerator: unknown accelerator 'NVIDIA_L44'; known: .*NVIDIA_L4,"),
    "no count": ({"QaTrainer": {"accelerator": "NVIDIA_L4"}}, r"resources\.QaTrainer\.accelerator_count: say how many"),
    "count alone": ({"QaTrainer": {"accelerator_count": 2}}, r"resources\.QaTrainer\.accelerator_count: 2 of what"),
    "count type": ({"QaTrainer": {"accelerator_count": "two"}}, r"resources\.QaTrainer\.accelerator_count: expected an integer"),
    "topology syntax": ({"QaTrainer": {"accelerator": "google.com/tpu", "accelerator_count": 4, "tpu_topology": "2by2"}},
                        r"resources\.QaTrainer\.tpu_topology: '2by2' is not a TPU topology"),
    "topology chips": ({"QaTrainer": {"accelerator": "TPU_V5_LITEPOD", "accelerator_count": 4, "tpu_topology": "2x4"}},
                       r"resources\.QaTrainer\.tpu_topology: 2x4 has 8 chips but accelerator_count is 4"),
    "topology on a gpu": ({"QaTrainer": {**GPU, "tpu_topology": "1x1"}}, r"tpu_topology: only for a TPU accelerator"),
    "label key": ({"QaTrainer": {"node_selector": {"gke accelerator": "x"}}}, r"resources\.QaTrainer\.node_selector: 'gke accelerator' is not"),
    "label value": ({"QaTrainer": {"node_selector": {"pool": ["a"]}}}, r"node_selector\.pool: \['a'\] is not a Kubernetes label value"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_ERRORS))
def test_config_error_names_the_key(case):
    resources, message = CONFIG_ERRORS[case]
    with pytest.raises(config_lib.ConfigError, match=message):
        _config(resources)


# -- the lock and the images ----------------------------------------------------------------------

def _lock() -> dict:
    with open(os.path.join(fixtures.REPO_ROOT, "uv.lock"), "rb") as f:
        return tomllib.load(f)


def _and_cuda_pins() -> dict:
    """tensorflow's own `and-cuda` extra (its wheel metadata): name -> SpecifierSet."""
    from importlib import metadata

    from packaging.requirements import Requirement

    pins = {}
    for text in metadata.requires("tensorflow"):
        requirement = Requirement(text)
        if requirement.marker and requirement.marker.evaluate({"extra": "and-cuda"}) \
                and not requirement.marker.evaluate({"extra": ""}):
            pins[requirement.name] = requirement.specifier
    return pins


def test_lock_holds_tensorflows_cuda_packages_for_the_gpu_extra():
    from packaging.version import Version

    lock = _lock()
    packages = {p["name"]: p for p in lock["package"]}
    project = packages["bert-qa-pipeline"]
    pins = _and_cuda_pins()
    assert len(pins) >= 10 and all(name.startswith("nvidia-") for name in pins), pins
    # The project's gpu extra lists exactly tensorflow's and-cuda packages ...
    assert {d["name"] for d in project["optional-dependencies"]["gpu"]} == set(pins)
    # ... with tensorflow's specifiers ...
    declared = {r["name"]: r.get("specifier", "") for r in project["metadata"]["requires-dist"]
                if r.get("marker") == "extra == 'gpu'"}
    from packaging.specifiers import SpecifierSet

    assert {name: SpecifierSet(spec) for name, spec in declared.items()} == pins
    # ... and each is locked at a version tensorflow 2.21 accepts, with a Linux x86_64 wheel (the image).
    for name, specifier in pins.items():
        locked = packages[name]
        assert Version(locked["version"]) in specifier, (name, locked["version"], str(specifier))
        assert any("manylinux" in w["url"] and "x86_64" in w["url"] for w in locked["wheels"]), name


def test_the_default_install_has_no_cuda_package():
    """`uv sync --frozen` (no extra): nothing reachable from the project's own dependencies is an
    nvidia-* package, so the CPU image and a developer's .venv stay without CUDA."""
    lock = _lock()
    packages = {p["name"]: p for p in lock["package"]}
    seen, todo = set(), [(d["name"], tuple(d.get("extra", ()))) for d in packages["bert-qa-pipeline"]["dependencies"]]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        package = packages[name]
        deps = list(package.get("dependencies", []))
        for extra in extras:
            deps += package.get("optional-dependencies", {}).get(extra, [])
        todo += [(d["name"], tuple(d.get("extra", ()))) for d in deps]
    names = {name for name, _ in seen}
    assert "tensorflow" in names and "apache-beam" in names
    assert not [n for n in names if n.startswith("nvidia-")]


def _dockerfile_stages() -> dict:
    """Stage name -> (FROM image, instruction lines with continuations joined)."""
    text = open(os.path.join(fixtures.REPO_ROOT, "kubeflow", "Dockerfile")).read()
    lines = [line for line in re.sub(r"\\\n", " ", text).splitlines() if line.strip() and not line.startswith("#")]
    stages, current = {}, None
    for line in lines:
        match = re.match(r"FROM\s+(\S+)\s+AS\s+(\S+)", line)
        if match:
            current = match.group(2)
            stages[current] = (match.group(1), [])
        elif current:
            stages[current][1].append(line)
    return stages


def test_dockerfile_stages_install_from_the_lock():
    stages = _dockerfile_stages()
    assert list(stages) == ["gpu", "cpu"]  # cpu last: the default target of `docker build`
    packages = {p["name"]: p for p in _lock()["package"]}
    beam = packages["apache-beam"]["version"]
    for name, (base, lines) in stages.items():
        syncs = [line for line in lines if "uv sync" in line]
        assert len(syncs) == 2 and all("uv sync --frozen --no-dev" in line for line in syncs), (name, syncs)
        assert all(("--extra gpu" in line) == (name == "gpu") for line in syncs), (name, syncs)
        env = " ".join(line for line in lines if line.startswith("ENV"))
        assert "TF_USE_LEGACY_KERAS=1" in env and "RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT=1" in env, name
        # No image-wide inter-op thread count: the compiled spec sets it per step
        # (test_each_step_gets_its_thread_setting_in_its_container_env).
        assert "TF_NUM_INTEROP_THREADS" not in env, name
        # Beam's worker boot of the locked Beam version, as the entrypoint Dataflow needs; pip for boot.
        assert f"COPY --from=apache/beam_python3.11_sdk:{beam} /opt/apache/beam /opt/apache/beam" in lines, name
        assert lines[-1] == 'ENTRYPOINT ["/opt/apache/beam/boot"]', name
        assert any("python -m ensurepip" in line for line in lines), name
    assert stages["cpu"][0] == "python:3.11-slim"
    # The CUDA base is the locked CUDA runtime's major.minor.
    cuda = re.match(r"nvidia/cuda:(\d+\.\d+)\.\d+-", stages["gpu"][0])
    runtime = packages["nvidia-cuda-runtime-cu12"]["version"]
    assert cuda and runtime.startswith(cuda.group(1) + "."), (stages["gpu"][0], runtime)


def test_no_accelerator_for_a_step_that_only_waits_for_its_custom_job(tmp_path):
    from bert_qa_pipeline.kubeflow.compile import CompileError, compile_pipeline

    config = config_lib.load_config(None, [{
        "train": {"vertex_custom_job": {"enabled": True, "project": "p", "worker_pools": [
            {"accelerator_type": "NVIDIA_L4", "accelerator_count": 1}]}},
        "resources": {"QaTrainer": GPU}}])
    with pytest.raises(CompileError, match=r"trains in the CustomJob.*worker_pools"):
        compile_pipeline(config, str(tmp_path / "p.json"), "gs://bucket/root", CPU_IMAGE, gpu_image=GPU_IMAGE)
