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
                   help="comma-separated list of float32, dynamic, dynamic_unsplit, float16, int8 "
                        "(default: dynamic, Model Maker's default, with outlier weights split "
                        "out of their kernels first; dynamic_unsplit leaves them)")
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
                   help="calibration windows for int8, at least 1 (default 100); the number "
                        "actually used is printed (fewer when the data has fewer windows)")
    p.add_argument("--eval-data", metavar="FILE",
                   help="SQuAD JSON file of held-out questions: score every variant on it next to "
                        "float32 and refuse (exit 1, file deleted) a variant more than "
                        "--max-f1-drop F1 points below float32")
    p.add_argument("--eval-sample", default="100", metavar="N",
                   help="questions of --eval-data to score, spread over the file (default 100)")
    p.add_argument("--max-f1-drop", default=None, metavar="POINTS",
                   help="largest F1 drop below float32 a variant may have (default: the pipeline "
                        "gate's default, evaluation.max_quantized_f1_drop)")
    p.add_argument("--keep-refused", action="store_true",
                   help="warn about a variant below the limit instead of refusing it (exit 0, file kept)")
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

    from bert_qa.settings import check_output_dir, check_settings
    from bert_qa_cli.common import int_flags
    from bert_qa_cli.exit_codes import UsageError

    flags = {"quantization": "--quantization", "query_len": "--query-len", "doc_stride": "--doc-stride",
             "num_calibration": "--num-calibration", "seq_len": f"{args.saved_model}: seq_len"}
    variants = [q.strip() for q in args.quantization.split(",") if q.strip()]
    numbers = int_flags({"query_len": args.query_len, "doc_stride": args.doc_stride,
                         "num_calibration": args.num_calibration}, flags)
    # A bad value is bad input naming the flag (exit 1); a missing companion flag is usage (2).
    check_settings({"quantization": variants, "num_calibration": numbers["num_calibration"]}, flags)
    if "int8" in variants and not args.representative_data:
        raise UsageError("int8 needs --representative-data (a SQuAD JSON file of training data)")
    check_output_dir(args.output_dir, "--output-dir")  # before converting anything
    questions, max_f1_drop = None, None
    if args.eval_data:
        from bert_qa.export.variant_check import sample_questions

        eval_sample = int_flags({"eval_sample": args.eval_sample}, {"eval_sample": "--eval-sample"})["eval_sample"]
        if eval_sample < 1:
            from bert_qa.settings import SettingError

            raise SettingError("--eval-sample", f"--eval-sample={eval_sample}: must be an integer >= 1 "
                                                f"(questions to score)")
        max_f1_drop = _max_f1_drop(args.max_f1_drop)
        questions = sample_questions(args.eval_data, eval_sample)  # a bad file: exit 1 before converting
    elif args.max_f1_drop is not None:
        raise UsageError("--max-f1-drop needs --eval-data (the questions to score the variants on)")
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
        # What the converter reads: the windows found, at most --num-calibration of them.
        used = min(len(representative["input_word_ids"]), numbers["num_calibration"])
        print(f"Calibrating int8 on {used} windows from {args.representative_data}"
              + (f" (asked for {numbers['num_calibration']}; the file has no more)"
                 if used < numbers["num_calibration"] else ""))

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
        print(f"{name:15s} {os.path.getsize(path) / 1e6:8.2f} MB  {path}  (inputs {shape})")
    print(f"Exported {len(paths)} model(s) in {time.time() - start:.1f} s")
    if questions is None:
        if any(v != "float32" for v in variants):
            print(f"bertqa {NAME}: warning: the quantized variants were not scored (full-integer int8 "
                  f"can fall far below float32); pass --eval-data FILE to score and gate them",
                  file=sys.stderr)
        return 0
    return _score_and_gate(args, paths, questions, max_f1_drop, vocab_file, do_lower_case,
                           {"query_len": query_len, "doc_stride": doc_stride})


def _max_f1_drop(text):
    from bert_qa.settings import SettingError

    if text is None:  # the pipeline gate's default: one threshold for both
        from bert_qa_pipeline.pipeline.config import EvaluationConfig

        return float(EvaluationConfig().max_quantized_f1_drop)
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):
        raise SettingError("--max-f1-drop", f"--max-f1-drop={text!r}: must be a number of F1 points >= 0")
    return value


def _score_and_gate(args, paths, questions, max_f1_drop, vocab_file, do_lower_case, options) -> int:
    """Scores every variant next to float32 on the held-out questions; a variant more than
    ``max_f1_drop`` points below float32 is deleted and the command exits 1 (``VariantRefused``),
    or with --keep-refused kept with a warning."""
    import tempfile

    from bert_qa.export import tflite
    from bert_qa.export.variant_check import VariantRefused, format_score, score_variants

    with tempfile.TemporaryDirectory(prefix="bertqa_export_float_") as tmp:
        float_path = paths.get("float32")
        if float_path is None:  # the reference is not among the variants: convert it aside
            print("Converting float32 as the reference for scoring (not kept)")
            float_path = tflite.export_tflite(args.saved_model, os.path.join(tmp, "model_float32.tflite"),
                                              "float32", vocab_file=vocab_file, do_lower_case=do_lower_case,
                                              metadata_options=options)
        print(f"Scoring on {len(questions)} questions of {args.eval_data} (limit: {max_f1_drop:g} F1 "
              f"points below float32)")
        scores = score_variants(paths, float_path, questions, max_f1_drop,
                                on_score=lambda s: print(format_score(s), flush=True))
    refused = [s for s in scores if not s.passed]
    if not refused:
        return 0
    names = ", ".join(f"{s.name} (F1 {s.f1:.1f} vs {s.float_f1:.1f})" for s in refused)
    if args.keep_refused:
        print(f"bertqa {NAME}: warning: {names} more than {max_f1_drop:g} F1 points below float32; "
              f"kept (--keep-refused): do not ship them", file=sys.stderr)
        return 0
    for s in refused:
        os.remove(paths[s.name])
    raise VariantRefused(
        f"{names} scored more than {max_f1_drop:g} F1 points below float32 on {len(questions)} questions of "
        f"{args.eval_data}: deleted {', '.join(paths[s.name] for s in refused)} (--keep-refused keeps them "
        f"with a warning)", [s.name for s in refused])


def _saved_model_seq_len(saved_model_dir: str) -> int:
    import tensorflow as tf

    signature = tf.saved_model.load(saved_model_dir).signatures["serving_default"]
    _, kwargs = signature.structured_input_signature
    return int(next(iter(kwargs.values())).shape[1])
