"""`bertqa import-checkpoint`: Hugging Face BERT checkpoint -> TF2 TF Hub-format encoder."""
from __future__ import annotations

import argparse
import time

NAME = "import-checkpoint"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        NAME,
        help="convert a Hugging Face BERT checkpoint to a TF Hub-format encoder",
        description=(
            "Convert a Hugging Face BERT checkpoint directory (config.json, model.safetensors, "
            "vocab.txt) into a TF2 TF Hub-format encoder SavedModel (dict inputs input_word_ids/"
            "input_mask/input_type_ids; outputs pooled_output/sequence_output) that can be "
            "passed as an encoder uri. Every checkpoint tensor must map onto the encoder. "
            "EXPORT_DIR appears only when the conversion is complete, with a "
            "bert_qa_import.json recording where it came from."),
        epilog="example: bertqa import-checkpoint ./bert-base-uncased ./encoders/bert-base-uncased")
    p.add_argument("checkpoint_dir", metavar="CHECKPOINT_DIR",
                   help="Hugging Face checkpoint directory (config.json, model.safetensors, vocab.txt)")
    p.add_argument("export_dir", metavar="EXPORT_DIR",
                   help="where to write the SavedModel (must not exist or be empty)")
    p.add_argument("--do-lower-case", dest="do_lower_case", action=argparse.BooleanOptionalAction,
                   default=None,
                   help="tokenizer casing; default: tokenizer_config.json's do_lower_case, else "
                        "lower-case if the checkpoint's name says 'uncased', else required")
    p.set_defaults(func=run)


def run(args) -> int:
    import os

    from bert_qa.errors import InputError

    if os.path.isfile(args.checkpoint_dir):  # the library would say "not found"
        raise InputError(f"CHECKPOINT_DIR {args.checkpoint_dir}: is a file, not a directory; give the Hugging "
                         f"Face checkpoint's directory (config.json, model.safetensors, vocab.txt)")
    from bert_qa.checkpoint_import import import_hf_checkpoint  # imports TensorFlow: after the checks

    start = time.time()
    # A missing, malformed or unconvertible checkpoint file, or an export directory that is
    # already taken, is a CheckpointImportError (an InputError naming the file): `bertqa`
    # prints it and exits 1. Anything else is the tool's failure (exit 3).
    path = import_hf_checkpoint(args.checkpoint_dir, args.export_dir,
                                do_lower_case=args.do_lower_case)
    print(f"Exported encoder to {path} in {time.time() - start:.1f} s")
    return 0
