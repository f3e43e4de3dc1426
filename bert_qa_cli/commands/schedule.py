"""`bertqa schedule`: run the compiled pipeline on a cron schedule (Vertex AI or Kubeflow)."""
from __future__ import annotations


def register(subparsers):
    from bert_qa_cli.commands.submit import add_submission_arguments

    p = subparsers.add_parser(
        "schedule", help="create a recurring run of the pipeline on Vertex AI or Kubeflow Pipelines",
        description="Same arguments as `bertqa submit`, plus the cron expression. Vertex: "
                    "PipelineJob.create_schedule (the service account and network are passed again: "
                    "schedules do not inherit them). Kubeflow: kfp.Client.create_recurring_run (its cron "
                    "has 6 fields, seconds first; the usual 5-field form is converted).")
    add_submission_arguments(p)
    p.add_argument("--cron", required=True, help='e.g. "30 2 * * *" (every day at 02:30)')
    p.add_argument("--max-concurrent", type=int, default=1, help="runs of this schedule at once (default 1)")
    p.add_argument("--name", default="bert-qa-schedule", help="schedule / recurring run name")
    p.set_defaults(func=run)


def run(args) -> int:
    from bert_qa_cli.commands.submit import execute, labels

    def send(path, params, caching):
        if args.target == "vertex":
            from bert_qa_pipeline.kubeflow.vertex_submit import schedule_vertex

            schedule_id, url = schedule_vertex(
                path, args.project, args.region, args.cron, params, max_concurrent=args.max_concurrent,
                schedule_name=args.name, service_account=args.service_account, network=args.network,
                labels=labels(args.labels), enable_caching=caching, api_endpoint=args.api_endpoint)
        else:
            from bert_qa_pipeline.kubeflow.kfp_submit import schedule_kfp

            schedule_id, url = schedule_kfp(path, args.host, params, args.cron,
                                            experiment=args.experiment or "bert-qa", namespace=args.namespace,
                                            name=args.name, max_concurrent=args.max_concurrent,
                                            enable_caching=caching)
        print(f"Created schedule {schedule_id}\n{url}")
        return 0

    return execute(args, "schedule", send)
