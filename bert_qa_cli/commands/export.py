"""`bertqa export`: serving SavedModel -> .tflite variants with Task Library metadata."""
from __future__ import annotations

import argparse
import os
import sys
import time

NAME = "export"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        NAME,
        help="convert a QA SavedModel to TFLite variants with Task Library metadata",
        description=(
            "Convert a span-model SavedModel (from bert_qa.export.export_saved_model or the "
            "pipeline's Trainer) into .tflite files, one per quantization, each carrying "
            "TFLite Task Library metadata (BertTokenizer with the vocabulary packed in, "
            "tensors ids/mask/segment_ids -> end_logits/start_logits) so that "
            "BertQuestionAnswerer and `bertqa predict` can use the file alone. "
            "Writes OUTPUT_DIR/model_<quantization>.tflite."),
        epilog=("example: bertqa export --saved-model out/saved_model --output-dir out/tflite "
                "--quantization dynamic,int8 --representative-data train.json"))
    p.add_argument("--saved-model", required=True, help="SavedModel directory")
    p.add_argument("--output-dir", required=True, help="where to write the .tflite files")
    p.add_argument("--quantization", default="dynamic",
                   help="comma-separated list of float32, dynamic, float16, int8 "
                        "(default: dynamic, Model Maker's default)")
    p.add_argument("--vocab", help="WordPiece vocab (default: the one saved with the model)")
    p.add_argument("--do-lower-case", dest="do_lower_case", action=argparse.BooleanOptionalAction,
                   default=None, help="tokenizer casing (default: as saved with the model, else true)")
    # Numbers are parsed by the settings check (a bad one is exit 1 naming the flag and range).
    p.add_argument("--query-len", metavar="N", help="max question tokens recorded for predict "
                                                    "(default: as saved, else the spec's default)")
    p.add_argument("--doc-stride", metavar="N", help="window stride recorded for predict "
                                                     "(default: as saved, else the spec's default)")
    p.add_argument("--representative-data", help="SQuAD JSON file (training data) for int8 calibration")
    p.add_argument("--num-calibration", default="100", metavar="N",
                   help="calibration windows for int8 (default 100)")
    p.add_argument("--name", default="BertQuestionAnswerer", help="model name in the metadata")
    p.add_argument("--model-version", default="1", help="model version in the metadata")
    p.add_argument("--description", help="model description in the metadata")
    p.add_argument("--author", default="", help="author in the metadata")
    p.add_argument("--license", default="Apache-2.0", help="licence in the metadata (default Apache-2.0)")
    p.set_defaults(func=run)


def run(args) -> int:
    from bert_qa.errors import InputError
    from bert_qa.export import metadata, tflite
    from bert_qa.tflite_runner import describe

    def usage(message: str) -> int:  # a flag or a combination of flags: argparse's status
        print(f"bertqa {NAME}: error: {message}", file=sys.stderr)
        return 2

    from bert_qa.settings import check_output_dir, check_settings
    from bert_qa_cli.commands.predict import int_flags

    flags = {"quantization": "--quantization", "query_len": "--query-len", "doc_stride": "--doc-stride",
             "num_calibration": "--num-calibration", "seq_len": f"{args.saved_model}: seq_len"}
    variants = [q.strip() for q in args.quantization.split(",") if q.strip()]
    numbers = int_flags({"query_len": args.query_len, "doc_stride": args.doc_stride,
                         "num_calibration": args.num_calibration}, flags)
    # A bad value is bad input naming the flag (exit 1); a missing companion flag is usage (2).
    check_settings({"quantization": variants, "num_calibration": numbers["num_calibration"]}, flags)
    if "int8" in variants and not args.representative_data:
        return usage("int8 needs --representative-data (a SQuAD JSON file of training data)")
    check_output_dir(args.output_dir, "--output-dir")  # before converting anything
    # What the files say is an InputError naming the file (exit 1): a missing or corrupt
    # SavedModel, a damaged record, a missing vocabulary, a bad SQuAD file.
    tflite.check_saved_model(args.saved_model)
    saved = tflite.saved_model_info(args.saved_model)
    vocab_file = args.vocab or saved["vocab_file"]
    if vocab_file is None:
        raise InputError(f"{args.saved_model}: the SavedModel has no saved vocabulary "
                         f"({tflite.EXTRA_DIR}/vocab.txt); pass --vocab")
    if not os.path.isfile(vocab_file) and "://" not in vocab_file:
        raise InputError(f"--vocab {vocab_file}: vocabulary file not found")
    from bert_qa.spec import windowing_defaults

    defaults = windowing_defaults(saved.get("spec") or "BertQaSpec")
    do_lower_case = args.do_lower_case if args.do_lower_case is not None else saved.get(
        "do_lower_case", defaults["do_lower_case"])
    query_len = numbers["query_len"] if numbers["query_len"] is not None else (
        saved.get("query_len") or defaults["query_len"])
    doc_stride = numbers["doc_stride"] if numbers["doc_stride"] is not None else (
        saved.get("doc_stride") or defaults["doc_stride"])
    seq_len = saved.get("seq_len") or _saved_model_seq_len(args.saved_model)
    # What predict will window with: the model's seq_len is fixed, the flags must fit it.
    check_settings({"seq_len": int(seq_len), "query_len": query_len, "doc_stride": doc_stride}, flags)

    representative = None
    if "int8" in variants:
        from bert_qa.export.calibration import features_from_squad

        representative = features_from_squad(args.representative_data, vocab_file, do_lower_case,
                                             seq_len, query_len, doc_stride, numbers["num_calibration"])
        print(f"Calibrating int8 on {len(representative['input_word_ids'])} windows "
              f"from {args.representative_data}")

    start = time.time()
    paths = tflite.export_tflite_variants(
        args.saved_model, args.output_dir, variants, representative,
        vocab_file=vocab_file, do_lower_case=do_lower_case, model_name=args.name,
        version=args.model_version, description=args.description or metadata.DEFAULT_DESCRIPTION,
        author=args.author, license=args.license, quantization_steps=numbers["num_calibration"],
        metadata_options={"query_len": query_len, "doc_stride": doc_stride})
    for name, path in paths.items():
        info = describe(path)
        shape = info["inputs"][0]["shape"]
        print(f"{name:8s} {os.path.getsize(path) / 1e6:8.2f} MB  {path}  (inputs {shape})")
    print(f"Exported {len(paths)} model(s) in {time.time() - start:.1f} s")
    return 0


def _saved_model_seq_len(saved_model_dir: str) -> int:
    import tensorflow as tf

    signature = tf.saved_model.load(saved_model_dir).signatures["serving_default"]
    _, kwargs = signature.structured_input_signature
    return int(next(iter(kwargs.values())).shape[1])
