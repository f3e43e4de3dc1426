"""`bertqa compile`: the same pipeline as `bertqa run`, compiled for Kubeflow Pipelines / Vertex AI."""
from __future__ import annotations

import sys


def register(subparsers):
    from bert_qa_cli.commands.run import add_config_arguments

    p = subparsers.add_parser(
        "compile", help="compile the pipeline to Kubeflow Pipelines v2 / Vertex AI JSON",
        description="Builds the pipeline from the same configuration as `bertqa run` and compiles it "
                    "with TFX's KubeflowV2DagRunner into a pipeline spec JSON (no submission). Data "
                    "patterns, the encoder and the push destination must be URIs the cluster can read "
                    "(e.g. gs://...); the image is built from kubeflow/Dockerfile.")
    p.add_argument("--output", metavar="FILE.json", default="bert_qa_pipeline.json",
                   help="where to write the pipeline JSON")
    p.add_argument("--pipeline-root", required=True, metavar="URI",
                   help="pipeline root on the cluster's storage, e.g. gs://bucket/bert-qa")
    p.add_argument("--image", required=True, help="container image built from kubeflow/Dockerfile")
    p.add_argument("--push-destination", metavar="URI", help="default: <pipeline root>/pushed")
    add_config_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from bert_qa_cli.commands.run import config_from_args
    from bert_qa_pipeline.pipeline.config import ConfigError

    try:
        config = config_from_args(args)
    except ConfigError as err:
        print(f"bertqa compile: configuration error: {err}", file=sys.stderr)
        return 2
    from bert_qa_pipeline.kubeflow.compile import compile_pipeline

    path = compile_pipeline(config, args.output, args.pipeline_root, args.image, args.push_destination)
    print(f"Wrote {path}")
    return 0
