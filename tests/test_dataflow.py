"""Scaling out: FeatureWindowing on Dataflow (``beam.dataflow``), on Beam's portable runner, and
the GPU speed script's no-GPU path.

Nothing here reaches Google Cloud: the Dataflow job is built by Beam's DataflowRunner with
``--dry_run`` (its translation and worker-pool settings, without submitting), and the portable
runner runs on this machine (an embedded job service; SDK workers in this process, or in a
worker-pool process of their own that imports the project afresh, as Dataflow's workers do).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests import fixtures
from tests.data_helpers import run_windowing
from tests.pipeline_helpers import cluster_paths, make_setup, pipeline_config

from bert_qa_pipeline.components import artifacts
from bert_qa_pipeline.pipeline import config as config_lib

PRESET = {"enabled": True, "project": "my-project", "region": "us-central1",
          "temp_location": "gs://my-bucket/dataflow/tmp", "staging_location": "gs://my-bucket/dataflow/staging",
          "sdk_container_image": "us-docker.pkg.dev/my-project/bert-qa/pipeline:1", "max_num_workers": 7,
          "machine_type": "n2-standard-4", "service_account": "windowing@my-project.iam.gserviceaccount.com",
          "subnetwork": "regions/us-central1/subnetworks/dataflow", "use_public_ips": False}
PRESET_ARGS = ["--runner=DataflowRunner", "--project=my-project", "--region=us-central1",
               "--temp_location=gs://my-bucket/dataflow/tmp", "--staging_location=gs://my-bucket/dataflow/staging",
               "--sdk_container_image=us-docker.pkg.dev/my-project/bert-qa/pipeline:1", "--max_num_workers=7",
               "--machine_type=n2-standard-4",
               "--service_account_email=windowing@my-project.iam.gserviceaccount.com",
               "--subnetwork=regions/us-central1/subnetworks/dataflow", "--no_use_public_ips"]
DIRECT_DEFAULTS = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]


def _load(beam: dict) -> config_lib.PipelineConfig:
    return config_lib.load_config(None, [{"beam": beam}])


# -- the preset -----------------------------------------------------------------------------------

def test_dataflow_preset_becomes_windowing_args_only():
    config = _load({"dataflow": PRESET, "windowing": ["--disk_size_gb=50"], "evaluator": ["--direct_num_workers=2"]})
    assert config_lib.windowing_beam_args(config.beam) == DIRECT_DEFAULTS + PRESET_ARGS + ["--disk_size_gb=50"]
    # Off (the default): nothing added, nothing checked.
    off = _load({"dataflow": {"project": ""}})
    assert not off.beam.dataflow.enabled and off.beam.dataflow.args() == []
    assert config_lib.windowing_beam_args(off.beam) == DIRECT_DEFAULTS
    # From a file and --set, as `bertqa run/compile --config ... --set` take it.
    override = config_lib.parse_override("beam.dataflow.max_num_workers=3")
    assert _merge_load({"dataflow": PRESET}, override).beam.dataflow.max_num_workers == 3
    # Beam parses the DirectRunner defaults and the preset together: one runner, Dataflow's.
    from apache_beam.options.pipeline_options import (DirectOptions, GoogleCloudOptions, PipelineOptions,
                                                      StandardOptions, WorkerOptions)

    options = PipelineOptions(config_lib.windowing_beam_args(config.beam))
    assert options.view_as(StandardOptions).runner == "DataflowRunner"
    assert options.view_as(WorkerOptions).max_num_workers == 7
    assert options.view_as(WorkerOptions).use_public_ips is False
    assert options.view_as(GoogleCloudOptions).service_account_email == PRESET["service_account"]
    assert options.view_as(DirectOptions).direct_running_mode == "in_memory"  # ignored by Dataflow
    assert sum(a.startswith("--runner") for a in config_lib.windowing_beam_args(config.beam)) == 1


def _merge_load(beam: dict, override: dict) -> config_lib.PipelineConfig:
    return config_lib.load_config(None, [{"beam": beam}, override])


ERROR_CASES = [
    ({"project": ""}, r"beam\.dataflow\.project is required"),
    ({"region": ""}, r"beam\.dataflow\.region is required"),
    ({"temp_location": ""}, r"beam\.dataflow\.temp_location is required"),
    ({"temp_location": "/tmp/dataflow"}, r"beam\.dataflow\.temp_location: Dataflow needs a Cloud Storage path"),
    ({"temp_location": "gs://my-bucket"}, r"beam\.dataflow\.temp_location: .*gs://BUCKET/PATH"),
    ({"staging_location": "s3://bucket/staging"}, r"beam\.dataflow\.staging_location: .*Cloud Storage"),
    ({"project": "123456789"}, r"beam\.dataflow\.project: give the project ID, not the project number"),
    ({"project": "My_Project"}, r"beam\.dataflow\.project: 'My_Project' is not a Google Cloud project ID"),
    ({"sdk_container_image": ""}, r"beam\.dataflow\.sdk_container_image is required: Dataflow's workers must "
                                  r"import this project's code .*tensorflow/tfx#1455.*Beam's SDK worker boot"),
    ({"max_num_workers": 0}, r"beam\.dataflow\.max_num_workers must be >= 1, not 0"),
    ({"max_num_workers": "many"}, r"beam\.dataflow\.max_num_workers: expected an integer"),
    ({"region_name": "x"}, r"beam\.dataflow: unknown key\(s\) \['region_name'\]"),
]


@pytest.mark.parametrize("change,message", ERROR_CASES,
                         ids=[",".join(f"{k}={v!r}" for k, v in change.items()) for change, _ in ERROR_CASES])
def test_dataflow_preset_errors_name_the_key(change, message):
    with pytest.raises(config_lib.ConfigError, match=message):
        _load({"dataflow": {**PRESET, **change}})


@pytest.mark.parametrize("where,arg", [
    ("windowing", "--runner=DirectRunner"), ("args", "--runner=PortableRunner"),
    ("windowing", "--project=other"), ("windowing", "--max_num_workers=100"), ("args", "--no_use_public_ips"),
])
def test_dataflow_preset_refuses_options_given_twice(where, arg):
    """One runner and one value per option: Beam would silently keep the last one."""
    with pytest.raises(config_lib.ConfigError, match=rf"beam\.{where}: '{arg}' conflicts with "
                                                       rf"beam\.dataflow\.enabled"):
        _load({"dataflow": PRESET, where: [arg]})
    _load({"dataflow": {**PRESET, "enabled": False}, where: [arg]})  # fine when the preset is off


# -- the Dataflow job FeatureWindowing submits ------------------------------------------------------

def test_dataflow_job_of_feature_windowing_dry_run(corpus):
    """FeatureWindowing's executor, as its container runs it, builds a Dataflow job whose workers
    run our image with the preset's pool; Beam's own Dataflow option check passes."""
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.options.pipeline_options_validator import PipelineOptionsValidator
    from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner
    from apache_beam.runners.dataflow.internal import apiclient
    from tfx.dsl.components.base import base_beam_executor

    from bert_qa_pipeline.components.feature_windowing import executor as windowing_executor

    config = _load({"dataflow": PRESET})
    args = config_lib.windowing_beam_args(config.beam) + ["--dry_run=True"]  # build, do not submit
    assert PipelineOptionsValidator(PipelineOptions(args), DataflowRunner()).validate() == []
    executor = windowing_executor.Executor(base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=args))
    # With an SDK container image, TFX stages no package of its own (tensorflow/tfx#1455): the
    # workers import everything from the image.
    assert not [a for a in executor._beam_pipeline_args if "extra_package" in a or "setup_file" in a]
    pipeline = executor._make_beam_pipeline()
    params = {"do_lower_case": 1, "seq_len": 96, "query_len": 24, "doc_stride": 32,
              "version_2_with_negative": 0, "multi_answer": "first", "num_shards": 0}
    for split in ("train", "eval"):
        windowing_executor.build_split(
            pipeline, split, artifacts.split_uri(corpus["examples"], split), f"gs://my-bucket/features/{split}",
            "gs://my-bucket/features/vocab.txt", params, split == "train", f"gs://my-bucket/stats-{split}.json")
    job = pipeline.run().job
    assert job.proto.type_.name == "JOB_TYPE_BATCH"
    images = {env.urn: env.payload for env in job.proto_pipeline.components.environments.values()}
    assert any(PRESET["sdk_container_image"].encode() in payload for payload in images.values())
    assert b"bert_qa_pipeline.components.feature_windowing.executor" in job.proto_pipeline.SerializeToString()
    environment = apiclient.Environment(
        packages=[], options=job.options, environment_version="8", proto_pipeline=job.proto_pipeline,
        proto_pipeline_staged_url=PRESET["staging_location"] + "/pipeline.pb").proto
    [pool] = environment.worker_pools
    assert (pool.autoscaling_settings.max_num_workers, pool.machine_type, pool.subnetwork) == (
        7, "n2-standard-4", PRESET["subnetwork"])
    assert pool.ip_configuration.name == "WORKER_IP_PRIVATE"
    assert [image.container_image for image in pool.sdk_harness_container_images] == [PRESET["sdk_container_image"]]
    assert environment.service_account_email == PRESET["service_account"]
    assert environment.temp_storage_prefix.startswith("storage.googleapis.com/my-bucket/dataflow/tmp/")


# -- the compiled pipeline --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pipeline_setup(tmp_path_factory):
    return make_setup(tmp_path_factory.mktemp("dataflow_pipeline"))


def _container_args(spec: dict) -> dict:
    executors = spec["deploymentSpec"]["executors"]
    return {name.split("_executor")[0]: e["container"]["args"] for name, e in executors.items() if "container" in e}


def test_dataflow_args_reach_the_feature_windowing_container_only(pipeline_setup, tmp_path):
    from bert_qa_pipeline.kubeflow.compile import compile_pipeline

    config = cluster_paths(pipeline_config(pipeline_setup, beam={"dataflow": PRESET,
                                                                 "evaluator": ["--direct_num_workers=3"]}))
    path = compile_pipeline(config, str(tmp_path / "pipeline.json"), "gs://my-bucket/root", "example.com/bert-qa:1")
    args = _container_args(json.load(open(path))["pipelineSpec"])
    windowing = " ".join(args["FeatureWindowing"])
    for arg in DIRECT_DEFAULTS + PRESET_ARGS:
        assert windowing.count(arg) == 1, arg
    assert windowing.count("--runner") == 1
    for name, step_args in args.items():
        if name != "FeatureWindowing":
            text = " ".join(step_args)
            assert "DataflowRunner" not in text and PRESET["sdk_container_image"] not in text, name
    assert "--direct_num_workers=3" in " ".join(args["QaEvaluator"])
    # The task's Beam args, as TFX's container entrypoint hands them to the executor.
    assert _beam_args_of(args["FeatureWindowing"]) == DIRECT_DEFAULTS + PRESET_ARGS
    assert _beam_args_of(args["QaEvaluator"]) == DIRECT_DEFAULTS + ["--direct_num_workers=3"]

    # Dataflow's workers cannot reach a pipeline root outside Cloud Storage (nor this machine's).
    with pytest.raises(config_lib.ConfigError, match=r"beam\.dataflow\.enabled: .*must be on Cloud Storage"):
        compile_pipeline(config, str(tmp_path / "p.yaml"), "s3://bucket/root", "img", target="kfp")
    from bert_qa_pipeline.pipeline.pipeline import create_pipeline

    with pytest.raises(config_lib.ConfigError, match=r"set beam\.dataflow\.enabled false to window on this"):
        create_pipeline(config)  # bertqa run: a local pipeline root


def _beam_args_of(container_args) -> list:
    """The Beam args TFX's KubeflowV2 entrypoint hands the executor: the args it does not know."""
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

    _, beam_args = kubeflow_v2_run_executor._parse_flags(list(container_args))
    return beam_args


# -- Beam's portable runner -------------------------------------------------------------------------

def _files(features) -> dict:
    """Every file of the artifact (features of both splits, stats, vocab) by relative path."""
    out = {}
    for root, _, names in os.walk(features.uri):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, features.uri)] = f.read()
    return out


@pytest.fixture(scope="module")
def direct_features(corpus, tmp_path_factory):
    return run_windowing(corpus["examples"], str(tmp_path_factory.mktemp("direct") / "f"), DIRECT_DEFAULTS,
                         num_shards=2)


@pytest.fixture
def worker_pool(tmp_path):
    """Beam's SDK worker pool in a process of its own (``worker_pool_main``): each SDK worker it
    starts is a fresh ``python`` (this venv's) that unpickles our DoFns by importing the project,
    as Dataflow's workers do in our image. Started from an empty directory, not the repository."""
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    log = open(tmp_path / "worker_pool.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
                             f"--service_port={port}"], cwd=str(tmp_path), env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                socket.create_connection(("localhost", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "worker_pool.log").read_text()
                time.sleep(0.5)
        yield {"address": f"localhost:{port}", "log": tmp_path / "worker_pool.log"}
    finally:
        proc.send_signal(signal.SIGINT)  # its KeyboardInterrupt handler stops the server; atexit stops workers
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.mark.parametrize("environment", ["LOOPBACK", "EXTERNAL"])
def test_windowing_on_portable_runner_identical_to_direct_runner(corpus, direct_features, tmp_path,
                                                                 environment, request, monkeypatch):
    """``--runner=PortableRunner --job_endpoint=embed``: the pipeline goes through the Fn API job
    service as a portable job (what Flink, Spark and Dataflow's runner v2 run); the files are the
    DirectRunner's, byte for byte."""
    from apache_beam.runners.portability import portable_runner

    submitted = []
    run_pipeline = portable_runner.PortableRunner.run_pipeline

    def spy(self, pipeline, options):
        submitted.append(type(self).__name__)
        return run_pipeline(self, pipeline, options)

    monkeypatch.setattr(portable_runner.PortableRunner, "run_pipeline", spy)
    args = ["--runner=PortableRunner", "--job_endpoint=embed", f"--environment_type={environment}"]
    if environment == "EXTERNAL":
        pool = request.getfixturevalue("worker_pool")
        args.append(f"--environment_config={pool['address']}")
    features = run_windowing(corpus["examples"], str(tmp_path / "f"), args, num_shards=2)
    assert submitted == ["PortableRunner"]
    if environment == "EXTERNAL":
        assert b"Starting worker with command" in pool["log"].read_bytes()  # a separate SDK process ran
    ours, direct = _files(features), _files(direct_features)
    assert sorted(ours) == sorted(direct)
    assert len([p for p in ours if p.endswith(artifacts.TFRECORD_SUFFIX)]) == 4  # 2 shards x 2 splits
    for path in direct:
        assert ours[path] == direct[path], path
    assert _properties(features) == _properties(direct_features)
    assert features.get_int_custom_property("num_features_train") > features.get_int_custom_property(
        "num_questions_train") > 0


def _properties(features) -> dict:
    """The artifact's recorded counts and parameters (the vocab's path is the run's own)."""
    return {k: str(v) for k, v in features.mlmd_artifact.custom_properties.items() if k != "vocab_file"}


# -- benchmarks/gpu_speed.py ------------------------------------------------------------------------

def test_gpu_speed_script_without_gpu_says_so_and_exits_0():
    script = os.path.join(fixtures.REPO_ROOT, "benchmarks", "gpu_speed.py")
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "no GPU on this machine" in done.stdout and "nothing to measure" in done.stdout
    helped = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "--batch-per-gpu" in helped.stdout and "MirroredStrategy" in helped.stdout
    bad = subprocess.run([sys.executable, script, "--encoders", "gpt"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "not among" in bad.stderr
