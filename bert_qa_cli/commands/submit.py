"""`bertqa submit`: start one run of the compiled pipeline on Vertex AI or Kubeflow Pipelines."""
from __future__ import annotations

from bert_qa_cli.common import Submission, add_submission_arguments


def register(subparsers):
    p = subparsers.add_parser(
        "submit", help="start one run of the pipeline on Vertex AI Pipelines or Kubeflow Pipelines",
        description="Submits the compiled pipeline (or compiles it on the way) with runtime parameter "
                    "overrides: Vertex through aiplatform.PipelineJob, Kubeflow through kfp.Client. "
                    "The compiled file and the parameters are checked first, before any credentials "
                    "or request. Prints the run's id and console link.")
    add_submission_arguments(p)
    p.add_argument("--run-name", help="display name of the run")
    p.set_defaults(func=run)


def run(args) -> int:
    # Bad input (file, --param) is a SubmissionError before credentials or network: exit 1; a
    # missing --project / --host is a usage error: exit 2; the service's refusal: exit 1
    # (bert_qa_cli.exit_codes).
    submission = Submission(args, "submit")

    def request():
        if args.target == "vertex":
            from bert_qa_pipeline.kubeflow.vertex_submit import submit_vertex

            return submit_vertex(submission.path, args.project, args.region, submission.params,
                                 service_account=args.service_account, network=args.network,
                                 labels=submission.labels, enable_caching=submission.caching,
                                 experiment=args.experiment, display_name=args.run_name,
                                 api_endpoint=args.api_endpoint)
        from bert_qa_pipeline.kubeflow.kfp_submit import submit_kfp

        return submit_kfp(submission.path, args.host, submission.params, experiment=args.experiment or "bert-qa",
                          namespace=args.namespace, run_name=args.run_name, enable_caching=submission.caching)

    run_id, url = submission.send(request)
    print(f"Submitted run {run_id}\n{url}")
    return 0
