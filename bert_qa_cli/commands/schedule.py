"""`bertqa schedule`: run the compiled pipeline on a cron schedule (Vertex AI or Kubeflow)."""
from __future__ import annotations

from bert_qa_cli.common import Submission, SubmissionError, add_submission_arguments


def register(subparsers):
    p = subparsers.add_parser(
        "schedule", help="create a recurring run of the pipeline on Vertex AI or Kubeflow Pipelines",
        description="Same arguments as `bertqa submit`, plus the cron expression, checked here by the "
                    "target's own rules before any request (kubeflow/cron.py). Vertex: "
                    "PipelineJob.create_schedule (5-field unix cron, optionally TZ=/CRON_TZ= prefixed; "
                    "the service account and network are passed again: schedules do not inherit them). "
                    "Kubeflow: kfp.Client.create_recurring_run (its cron has 6 fields, seconds first; "
                    "the usual 5-field form is converted).")
    add_submission_arguments(p)
    p.add_argument("--cron", required=True, help='e.g. "30 2 * * *" (every day at 02:30)')
    p.add_argument("--max-concurrent", type=int, default=1, help="runs of this schedule at once (default 1)")
    p.add_argument("--name", default="bert-qa-schedule", help="schedule / recurring run name")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.max_concurrent < 1:  # both services refuse it; Kubeflow also above 10 (kfp_submit, before any request)
        raise SubmissionError(f"--max-concurrent={args.max_concurrent}: must be >= 1")
    submission = Submission(args, "schedule", cron=args.cron)

    def request():
        if args.target == "vertex":
            from bert_qa_pipeline.kubeflow.vertex_submit import schedule_vertex

            return schedule_vertex(
                submission.path, args.project, args.region, submission.cron, submission.params,
                max_concurrent=args.max_concurrent, schedule_name=args.name,
                service_account=args.service_account, network=args.network, labels=submission.labels,
                enable_caching=submission.caching, api_endpoint=args.api_endpoint)
        from bert_qa_pipeline.kubeflow.kfp_submit import schedule_kfp

        return schedule_kfp(submission.path, args.host, submission.params, submission.cron,
                            experiment=args.experiment or "bert-qa", namespace=args.namespace, name=args.name,
                            max_concurrent=args.max_concurrent, enable_caching=submission.caching)

    schedule_id, url = submission.send(request)
    print(f"Created schedule {schedule_id}\n{url}")
    return 0
