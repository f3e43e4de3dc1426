"""`bertqa submit`: start one run of the compiled pipeline on Vertex AI or Kubeflow Pipelines."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile


def add_submission_arguments(p) -> None:
    """Flags shared with `bertqa schedule`: where, as whom, with which parameters."""
    from bert_qa_cli.commands.run import add_config_arguments

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


def compiled_file(args, command: str) -> str:
    """The compiled pipeline: the given file, or compiled now from the config arguments."""
    if args.compiled:
        if not os.path.isfile(args.compiled):
            raise ValueError(f"compiled pipeline not found: {args.compiled}")
        return args.compiled
    if not (args.pipeline_root and args.image):
        raise ValueError("give --compiled FILE, or --pipeline-root and --image to compile on the way")
    from bert_qa_cli.commands.run import config_from_args
    from bert_qa_pipeline.kubeflow.compile import compile_pipeline

    suffix = ".yaml" if args.target == "kfp" else ".json"
    path = os.path.join(tempfile.mkdtemp(prefix=f"bertqa_{command}_"), "pipeline" + suffix)
    return compile_pipeline(config_from_args(args), path, args.pipeline_root, args.image, target=args.target)


def labels(text: str) -> dict:
    pairs = [item for item in text.split(",") if item.strip()]
    bad = [item for item in pairs if "=" not in item]
    if bad:
        raise ValueError(f"--labels must look like k=v,k2=v2, not {text!r}")
    return dict(item.strip().split("=", 1) for item in pairs)


def check_target_arguments(args) -> None:
    if args.target == "vertex" and not args.project:
        raise ValueError("--target vertex needs --project")
    if args.target == "kfp" and not args.host:
        raise ValueError("--target kfp needs --host")


def register(subparsers):
    p = subparsers.add_parser(
        "submit", help="start one run of the pipeline on Vertex AI Pipelines or Kubeflow Pipelines",
        description="Submits the compiled pipeline (or compiles it on the way) with runtime parameter "
                    "overrides: Vertex through aiplatform.PipelineJob, Kubeflow through kfp.Client. "
                    "Prints the run's id and console link.")
    add_submission_arguments(p)
    p.add_argument("--run-name", help="display name of the run")
    p.set_defaults(func=run)


def execute(args, command: str, send) -> int:
    """Checks, parameters and the compiled file, then ``send(path, params, caching)``, which
    returns (id, link); bad input exits 2 before any request, a server refusal exits 1."""
    from bert_qa_pipeline.kubeflow.parameters import parse_assignments

    try:
        check_target_arguments(args)
        params = parse_assignments(args.param)
        path = compiled_file(args, command)
        return send(path, params, False if args.no_cache else None)
    except ValueError as err:  # bad input: nothing was sent
        print(f"bertqa {command}: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:  # the server refused or could not be reached (kfp_submit.SubmitError)
        print(f"bertqa {command}: {err}", file=sys.stderr)
        return 1


def run(args) -> int:
    def send(path, params, caching):
        if args.target == "vertex":
            from bert_qa_pipeline.kubeflow.vertex_submit import submit_vertex

            run_id, url = submit_vertex(path, args.project, args.region, params,
                                        service_account=args.service_account, network=args.network,
                                        labels=labels(args.labels), enable_caching=caching,
                                        experiment=args.experiment, display_name=args.run_name,
                                        api_endpoint=args.api_endpoint)
        else:
            from bert_qa_pipeline.kubeflow.kfp_submit import submit_kfp

            run_id, url = submit_kfp(path, args.host, params, experiment=args.experiment or "bert-qa",
                                     namespace=args.namespace, run_name=args.run_name,
                                     enable_caching=caching)
        print(f"Submitted run {run_id}\n{url}")
        return 0

    return execute(args, "submit", send)
