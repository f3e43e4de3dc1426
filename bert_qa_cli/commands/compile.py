"""`bertqa compile`: the same pipeline as `bertqa run`, compiled for Kubeflow Pipelines / Vertex AI."""
from __future__ import annotations

from bert_qa_cli.common import add_config_arguments, config_from_args


def register(subparsers):
    p = subparsers.add_parser(
        "compile", help="compile the pipeline for Vertex AI Pipelines or Kubeflow Pipelines",
        description="Builds the pipeline from the same configuration as `bertqa run` and compiles it "
                    "with TFX's KubeflowV2DagRunner (pipeline spec schema 2.1.0; no submission): "
                    "--target vertex writes the PipelineJob JSON for aiplatform.PipelineJob, --target "
                    "kfp the PipelineSpec YAML that kfp.Client uploads (container tasks only; the "
                    "baseline is the newest published model). Data patterns, the encoder and the push "
                    "destination must be URIs the cluster can read (e.g. gs://...); the image is built "
                    "from kubeflow/Dockerfile.")
    p.add_argument("--target", choices=("vertex", "kfp"), default="vertex",
                   help="vertex (default): PipelineJob JSON; kfp: PipelineSpec YAML")
    p.add_argument("--output", metavar="FILE",
                   help="where to write it (default: bert_qa_pipeline.json for vertex, "
                        "bert_qa_pipeline.yaml for kfp)")
    p.add_argument("--pipeline-root", required=True, metavar="URI",
                   help="pipeline root on the cluster's storage, e.g. gs://bucket/bert-qa "
                        "(Vertex: gs:// only; Kubeflow: gs://, s3://, minio://)")
    p.add_argument("--image", required=True, help="container image built from kubeflow/Dockerfile")
    p.add_argument("--gpu-image", metavar="IMAGE",
                   help="image for steps given a GPU in resources.<step> (docker build --target gpu)")
    p.add_argument("--tpu-image", metavar="IMAGE",
                   help="image for steps given a TPU in resources.<step> (see kubeflow/Dockerfile)")
    p.add_argument("--push-destination", metavar="URI", help="default: <pipeline root>/pushed")
    add_config_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    # ConfigError (a bad --config file, key or value) and CompileError (a configuration the
    # target cannot run) are InputErrors: `bertqa` prints them and exits 1.
    config = config_from_args(args)
    from bert_qa.settings import check_output_file
    from bert_qa_pipeline.kubeflow.compile import compile_pipeline

    output = args.output or ("bert_qa_pipeline.yaml" if args.target == "kfp" else "bert_qa_pipeline.json")
    check_output_file(output, "--output")
    path = compile_pipeline(config, output, args.pipeline_root, args.image, args.push_destination,
                            target=args.target, gpu_image=args.gpu_image, tpu_image=args.tpu_image)
    print(f"Wrote {path} ({args.target})")
    return 0
