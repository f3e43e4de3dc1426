"""What several `bertqa` commands share, so that no command imports another (issue 20).

- the configuration flags and their resolution (`run`, `compile`, `submit`, `schedule`);
- integer flags parsed for the settings check (`predict`, `export`);
- the submission flags and every check of a submission that needs no credentials and no
  network (`submit`, `schedule`), then the request itself with the services' refusals as
  ``ServiceRefused``.

Errors are raised, never printed here: ``bert_qa_cli.exit_codes`` turns them into a status.
"""
from __future__ import annotations

import argparse
import os
import tempfile
from typing import Callable, Optional

from bert_qa.errors import InputError
from bert_qa_cli.exit_codes import ServiceRefused, UsageError


# -- configuration flags (`run`, `compile`, `submit`, `schedule`) -----------------------------------

def add_config_arguments(p) -> None:
    """A config file plus overrides."""
    p.add_argument("--config", metavar="FILE", help="pipeline configuration (.yaml, .yml, .json or .toml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one configuration value, e.g. --set train.epochs=3 "
                        "(values are YAML: --set data.train='[a.json, b.json]'); repeatable")
    p.add_argument("--train", action="append", metavar="PATTERN",
                   help="SQuAD JSON file or glob for training (repeatable; default: data/new_wiki_train.json)")
    p.add_argument("--eval", action="append", metavar="PATTERN",
                   help="SQuAD JSON file or glob for evaluation (repeatable; default: data/new_wiki_eval.json)")
    p.add_argument("--encoder", metavar="URI",
                   help="TF Hub handle or TF Hub-format directory (default: all-MiniLM-L6-v2, converted and cached)")
    p.add_argument("--spec", choices=["BertQaSpec", "MobileBertQaSpec"])
    # Numbers go through the configuration's own checks, as --set values do: a value that is
    # not a number, or out of range, is bad input (exit 1) naming the key, whichever way it came.
    p.add_argument("--epochs", metavar="N", help="train.epochs")
    p.add_argument("--batch-size", metavar="N", help="train.batch_size")
    p.add_argument("--seq-len", metavar="N", help="model.seq_len")
    p.add_argument("--beam-arg", dest="beam_args", action="append", metavar="ARG",
                   help="Beam pipeline argument, e.g. --beam-arg=--direct_running_mode=multi_processing "
                        "(repeatable; replaces the configured list)")


def config_from_args(args, output=None):
    """The checked PipelineConfig of the flags (ConfigError, an InputError, otherwise)."""
    from bert_qa_pipeline.pipeline.config import load_config, parse_override

    overrides = [parse_override(text) for text in args.overrides]
    flags = {}
    if output:
        flags["output"] = output
    data = {k: v for k, v in (("train", args.train), ("eval", args.eval)) if v}
    if data:
        flags["data"] = data
    model = {k: v for k, v in (("encoder", args.encoder), ("spec", args.spec), ("seq_len", args.seq_len))
             if v is not None}
    if model:
        flags["model"] = model
    train = {k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size)) if v is not None}
    if train:
        flags["train"] = train
    if args.beam_args:
        flags["beam"] = {"args": args.beam_args}
    return load_config(args.config, [flags] + overrides)


# -- integer flags (`predict`, `export`) -------------------------------------------------------------

def int_flags(values: dict, flags: dict) -> dict:
    """``{setting: int}`` from flag strings; a non-integer is a SettingError naming the flag."""
    from bert_qa.settings import SettingError

    parsed = {}
    for name, text in values.items():
        if text is None:
            parsed[name] = None
            continue
        try:
            parsed[name] = int(str(text).strip())
        except ValueError:
            raise SettingError(flags[name], f"{flags[name]}={text!r}: must be an integer") from None
    return parsed


# -- submissions (`submit`, `schedule`) ------------------------------------------------------------

class SubmissionError(InputError):
    """A submission refused on this machine: nothing was sent, no credentials were looked up."""


def add_submission_arguments(p) -> None:
    """Where, as whom, with which parameters."""
    p.add_argument("--target", choices=("vertex", "kfp"), required=True)
    p.add_argument("--compiled", metavar="FILE",
                   help="the file `bertqa compile` wrote (else the pipeline is compiled from the config "
                        "arguments, which then need --pipeline-root and --image)")
    p.add_argument("--pipeline-root", metavar="URI", help="when compiling on the way: gs://... (Vertex), "
                                                          "gs:// s3:// minio:// (Kubeflow)")
    p.add_argument("--image", help="when compiling on the way: the image built from kubeflow/Dockerfile")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="runtime parameter override, e.g. --param epochs=3 (repeatable; names: "
                        "input_patterns, epochs, batch_size, learning_rate, min_exact_match, min_f1, "
                        "max_f1_drop_vs_baseline, max_quantized_f1_drop, min_f1_gain_over_untrained)")
    p.add_argument("--no-cache", action="store_true", help="run every step, reusing no cached result")
    vertex = p.add_argument_group("Vertex AI (--target vertex)")
    vertex.add_argument("--project")
    vertex.add_argument("--region", default="us-central1")
    vertex.add_argument("--service-account", help="run-as service account")
    vertex.add_argument("--network", help="VPC network to peer, projects/NUMBER/global/networks/NAME")
    vertex.add_argument("--labels", default="", metavar="K=V,...", help="labels on the job")
    vertex.add_argument("--api-endpoint", help=argparse.SUPPRESS)  # a private or test endpoint
    kfp = p.add_argument_group("Kubeflow Pipelines (--target kfp)")
    kfp.add_argument("--host", help="the Kubeflow Pipelines API, e.g. https://HOST/pipeline")
    kfp.add_argument("--namespace", help="profile namespace (multi-user deployments)")
    p.add_argument("--experiment", help="Vertex experiment / Kubeflow experiment (default on Kubeflow: bert-qa)")
    add_config_arguments(p)


def labels(text: str) -> dict:
    pairs = [item for item in text.split(",") if item.strip()]
    bad = [item for item in pairs if "=" not in item]
    if bad:
        raise SubmissionError(f"--labels must look like k=v,k2=v2, not {text!r}")
    return dict(item.strip().split("=", 1) for item in pairs)


def check_target_arguments(args) -> None:
    """The flags a target needs: their absence is a usage error (exit 2), as argparse's own."""
    if args.target == "vertex" and not args.project:
        raise UsageError("--target vertex needs --project")
    if args.target == "kfp" and not args.host:
        raise UsageError("--target kfp needs --host")


def compiled_file(args, command: str) -> str:
    """The compiled pipeline: the given file, or compiled now from the config arguments (whose
    errors are InputErrors: ConfigError, CompileError)."""
    if args.compiled:
        return args.compiled
    if not (args.pipeline_root and args.image):
        raise UsageError("give --compiled FILE, or --pipeline-root and --image to compile on the way")
    from bert_qa_pipeline.kubeflow.compile import compile_pipeline

    suffix = ".yaml" if args.target == "kfp" else ".json"
    path = os.path.join(tempfile.mkdtemp(prefix=f"bertqa_{command}_"), "pipeline" + suffix)
    return compile_pipeline(config_from_args(args), path, args.pipeline_root, args.image, target=args.target)


class Submission:
    """A submission checked on this machine: the compiled file read for its target, the
    parameters typed against what it declares, the cron (``schedule``) checked by the target's
    own field rules. Only then ``send`` looks up credentials and makes requests."""

    def __init__(self, args, command: str, cron: Optional[str] = None):
        from bert_qa_pipeline.kubeflow.compiled_files import read_compiled
        from bert_qa_pipeline.kubeflow.cron import kfp_cron, vertex_cron
        from bert_qa_pipeline.kubeflow.parameters import coerce_params, declared_parameters, parse_assignments

        check_target_arguments(args)
        try:
            params = parse_assignments(args.param)
            self.cron = None
            if cron is not None:  # Kubeflow gets the 6-field form it parses; Vertex the expression as given
                self.cron = kfp_cron(cron) if args.target == "kfp" else vertex_cron(cron)
            self.labels = labels(args.labels)
        except ValueError as err:
            raise SubmissionError(str(err)) from None
        self.path = compiled_file(args, command)
        try:
            spec = read_compiled(self.path, args.target)
            # The kfp path's own check (kubeflow/parameters.py), for both targets: an unknown
            # name with the declared list, a value of the wrong type, a missing required one.
            self.params = coerce_params(params, declared_parameters(spec))
        except ValueError as err:
            raise SubmissionError(str(err)) from None
        self.caching = False if args.no_cache else None

    def send(self, request: Callable[[], tuple]) -> tuple:
        """``request()``'s result; a service's refusal or an unreachable address is
        ServiceRefused (exit 1), a ValueError of the submitters (no credentials, a schedule of
        that name already there) a SubmissionError."""
        from bert_qa_pipeline.kubeflow.kfp_submit import SubmitError
        from bert_qa_pipeline.kubeflow.vertex_submit import VertexRefused

        try:
            return request()
        except (SubmitError, VertexRefused) as err:
            raise ServiceRefused(str(err)) from err
        except ValueError as err:
            if isinstance(err, InputError):
                raise
            raise SubmissionError(str(err)) from err
