"""Hugging Face BERT checkpoints -> TF2 TF Hub-format encoders.

No model hub is reachable from where this project runs, so real pretrained encoders arrive as
Hugging Face directories (``config.json``, ``model.safetensors``, ``vocab.txt``). This module
rebuilds the same network as a Model Garden ``BertEncoder`` (the encoder Model Maker's
BertQaSpec fine-tunes), copies every weight across, and exports it with
``hub_format.export_encoder`` so that it loads exactly like a hub.dev BERT.

The weight mapping is written out here because tf-models-official only converts original
Google TF1 checkpoints, not Hugging Face ones. It is strict: every encoder variable must be
assigned and every checkpoint tensor used exactly once, so a renamed or missing tensor fails
loudly instead of leaving a randomly initialised weight behind.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from bert_qa import _env  # noqa: F401
from bert_qa import hub_format
from bert_qa.errors import InputError

PROVENANCE_FILE = "bert_qa_import.json"
FORMAT_VERSION = 1

# Buffers that PyTorch saves beside the parameters; they hold no learned values.
_BUFFERS = ("embeddings.position_ids",)
# Task heads of BertFor* checkpoints (weights under "bert."): not part of the encoder.
_HEAD_PREFIXES = ("cls.", "qa_outputs.", "classifier.")


class CheckpointImportError(InputError):
    """The checkpoint cannot be converted: a file is missing, unreadable or malformed, or the
    checkpoint does not map one-to-one onto a BERT encoder. The message names the file."""


class CheckpointFileNotFoundError(CheckpointImportError, FileNotFoundError):
    """A file the checkpoint directory must hold is absent (still a FileNotFoundError)."""


class ExportExistsError(CheckpointImportError, FileExistsError):
    """The export directory already holds something (still a FileExistsError)."""


# config.json keys that fix the encoder's shape: without them the weights cannot be checked.
_REQUIRED_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                  "intermediate_size")


def sha256_file(path: str, chunk_size: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_config(checkpoint_dir: str) -> dict:
    path = os.path.join(checkpoint_dir, "config.json")
    if not os.path.isfile(path):
        raise CheckpointFileNotFoundError(f"No config.json in checkpoint directory {checkpoint_dir!r}")
    config = _read_json(path)
    if not isinstance(config, dict):
        raise CheckpointImportError(f"{path}: must hold a JSON object, not {type(config).__name__}")
    return config


def _read_json(path: str):
    """A JSON file; unreadable, non-UTF-8 or malformed is a CheckpointImportError naming it."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as err:
        raise CheckpointImportError(f"{path}: cannot read it: {err.strerror or err}") from err
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise CheckpointImportError(f"{path}: not UTF-8 text (byte offset {err.start})") from None
    except json.JSONDecodeError as err:
        raise CheckpointImportError(f"{path}: not valid JSON: {err.msg} at line {err.lineno}, "
                                    f"column {err.colno}") from None


def encoder_config_from_hf(config: dict, source: str = "config.json") -> hub_format.EncoderConfig:
    """EncoderConfig from a Hugging Face BERT ``config.json`` (refusing what BertEncoder can't do).

    The shape keys must be there (``_REQUIRED_KEYS``; the others default as in Hugging Face's
    BertConfig); every value must have its type (positive integers, non-negative numbers with
    dropout below 1, a known activation); ``source`` names the file in errors.
    """
    def fail(message: str):
        raise CheckpointImportError(f"{source}: {message}")

    model_type = config.get("model_type", "bert")
    if model_type != "bert":
        fail(f"model_type {model_type!r} is not BERT; only BERT-architecture checkpoints convert")
    position_type = config.get("position_embedding_type", "absolute")
    if position_type != "absolute":
        fail(f"position_embedding_type {position_type!r} is not supported (BertEncoder: absolute)")
    missing = [k for k in _REQUIRED_KEYS if k not in config]
    if missing:
        fail(f"missing key(s) {missing}: a BERT config.json gives the encoder's shape "
             f"({', '.join(_REQUIRED_KEYS)})")
    fields = {f.name: f for f in dataclasses.fields(hub_format.EncoderConfig)}
    values = {k: v for k, v in config.items() if k in fields}
    for key, value in values.items():
        kind = fields[key].type
        if kind in ("int", int):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                fail(f"{key} must be a positive integer, not {value!r}")
        elif kind in ("float", float):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                fail(f"{key} must be a non-negative number, not {value!r}")
            if key.endswith("dropout_prob") and value >= 1:
                fail(f"{key} must be below 1, not {value!r}")
        elif kind in ("str", str) and not isinstance(value, str):
            fail(f"{key} must be a string, not {value!r}")
    encoder_config = hub_format.EncoderConfig(**values)
    if encoder_config.hidden_size % encoder_config.num_attention_heads:
        fail(f"hidden_size {encoder_config.hidden_size} is not divisible by "
             f"num_attention_heads {encoder_config.num_attention_heads}")
    if abs(encoder_config.layer_norm_eps - 1e-12) > 1e-15:
        fail(f"layer_norm_eps {encoder_config.layer_norm_eps} is not supported (BertEncoder's "
             f"layer norms use 1e-12)")
    try:
        hub_format.activation(encoder_config.hidden_act)
    except ValueError:
        fail(f"hidden_act {encoder_config.hidden_act!r} is not an activation BertEncoder knows "
             f"(e.g. gelu, gelu_new, relu)")
    return encoder_config


def resolve_do_lower_case(checkpoint_dir: str, config: dict,
                          do_lower_case: Optional[bool] = None) -> bool:
    """The tokenizer's casing: the caller's word, else what the checkpoint says, else its name."""
    declared = None
    tokenizer_config = os.path.join(checkpoint_dir, "tokenizer_config.json")
    if os.path.isfile(tokenizer_config):
        settings = _read_json(tokenizer_config)
        if not isinstance(settings, dict):
            raise CheckpointImportError(f"{tokenizer_config}: must hold a JSON object, not "
                                        f"{type(settings).__name__}")
        declared = settings.get("do_lower_case")
        if declared is not None and not isinstance(declared, bool):
            raise CheckpointImportError(f"{tokenizer_config}: do_lower_case must be true or "
                                        f"false, not {declared!r}")
    if declared is None:
        declared = config.get("do_lower_case")
    if do_lower_case is not None:
        if declared is not None and bool(declared) != do_lower_case:
            print(f"bert_qa: warning: do_lower_case={do_lower_case} overrides the checkpoint's "
                  f"own do_lower_case={declared}", file=sys.stderr)
        return do_lower_case
    if declared is not None:
        return bool(declared)
    names = " ".join([config.get("_name_or_path", ""), os.path.basename(os.path.abspath(checkpoint_dir))])
    if "uncased" in names.lower():
        return True
    raise CheckpointImportError(
        f"Cannot tell whether {checkpoint_dir!r} is cased or uncased (no tokenizer_config.json "
        f"do_lower_case, no 'uncased' in its name): pass do_lower_case explicitly "
        f"(--do-lower-case / --no-do-lower-case)")


def load_hf_tensors(checkpoint_dir: str) -> Dict[str, np.ndarray]:
    """The checkpoint's tensors, names normalised to ``BertModel``'s (no "bert." prefix)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = os.path.join(checkpoint_dir, "model.safetensors")
    if not os.path.isfile(path):
        raise CheckpointFileNotFoundError(
            f"No model.safetensors in checkpoint directory {checkpoint_dir!r}")
    try:
        raw = load_file(path)
    except TypeError as err:  # e.g. bfloat16, which numpy has no dtype for
        raise CheckpointImportError(f"Cannot read {path!r} with numpy: {err}; save it as "
                                    f"float32 or float16") from err
    except SafetensorError as err:  # a truncated or overwritten file: header or data incomplete
        raise CheckpointImportError(f"{path}: not a readable safetensors file (truncated or "
                                    f"corrupt? {err})") from err
    return _normalise_names(raw)


def _normalise_names(raw: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    prefixed = any(name.startswith("bert.") for name in raw)
    tensors = {}
    for name, value in raw.items():
        if prefixed:
            if name.startswith(_HEAD_PREFIXES):
                tensors["head:" + name] = value  # kept apart; reported, not converted
                continue
            if not name.startswith("bert."):
                raise CheckpointImportError(
                    f"Checkpoint tensor {name!r} is neither under 'bert.' nor a known task head")
            name = name[len("bert."):]
        # Checkpoints converted from TF1 name LayerNorm parameters gamma/beta.
        name = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", name)
        name = re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", name)
        if name in tensors:
            raise CheckpointImportError(f"Checkpoint tensor {name!r} appears twice")
        tensors[name] = value
    return tensors


Transform = Callable[[np.ndarray], np.ndarray]


def _weight_map(config: hub_format.EncoderConfig) -> Dict[str, Tuple[str, Transform]]:
    """Model Garden variable name -> (Hugging Face tensor name, how to reshape it).

    HF ``nn.Linear`` weights are [out, in]; Keras kernels are [in, out]. Model Garden's
    attention uses einsum kernels: query/key/value [hidden, heads, head_dim] and the output
    projection [heads, head_dim, hidden]; HF splits its out dimension into heads the same way
    (contiguous head_dim blocks), so a reshape after the transpose lines them up.
    """
    heads = config.num_attention_heads
    head_dim = config.hidden_size // heads
    hidden = config.hidden_size

    def same(x):
        return x

    def linear(x):
        return x.T

    def qkv_kernel(x):
        return x.T.reshape(hidden, heads, head_dim)

    def qkv_bias(x):
        return x.reshape(heads, head_dim)

    def attention_output_kernel(x):
        return x.T.reshape(heads, head_dim, hidden)

    mapping = {
        "word_embeddings/embeddings": ("embeddings.word_embeddings.weight", same),
        "position_embedding/embeddings": ("embeddings.position_embeddings.weight", same),
        "type_embeddings/embeddings": ("embeddings.token_type_embeddings.weight", same),
        "embeddings/layer_norm/gamma": ("embeddings.LayerNorm.weight", same),
        "embeddings/layer_norm/beta": ("embeddings.LayerNorm.bias", same),
        "pooler_transform/kernel": ("pooler.dense.weight", linear),
        "pooler_transform/bias": ("pooler.dense.bias", same),
    }
    for i in range(config.num_hidden_layers):
        ours, theirs = f"transformer/layer_{i}", f"encoder.layer.{i}"
        for part in ("query", "key", "value"):
            mapping[f"{ours}/self_attention/{part}/kernel"] = (
                f"{theirs}.attention.self.{part}.weight", qkv_kernel)
            mapping[f"{ours}/self_attention/{part}/bias"] = (
                f"{theirs}.attention.self.{part}.bias", qkv_bias)
        mapping.update({
            f"{ours}/self_attention/attention_output/kernel": (
                f"{theirs}.attention.output.dense.weight", attention_output_kernel),
            f"{ours}/self_attention/attention_output/bias": (
                f"{theirs}.attention.output.dense.bias", same),
            f"{ours}/self_attention_layer_norm/gamma": (f"{theirs}.attention.output.LayerNorm.weight", same),
            f"{ours}/self_attention_layer_norm/beta": (f"{theirs}.attention.output.LayerNorm.bias", same),
            f"{ours}/intermediate/kernel": (f"{theirs}.intermediate.dense.weight", linear),
            f"{ours}/intermediate/bias": (f"{theirs}.intermediate.dense.bias", same),
            f"{ours}/output/kernel": (f"{theirs}.output.dense.weight", linear),
            f"{ours}/output/bias": (f"{theirs}.output.dense.bias", same),
            f"{ours}/output_layer_norm/gamma": (f"{theirs}.output.LayerNorm.weight", same),
            f"{ours}/output_layer_norm/beta": (f"{theirs}.output.LayerNorm.bias", same),
        })
    return mapping


def assign_weights(encoder, config: hub_format.EncoderConfig,
                   tensors: Dict[str, np.ndarray]) -> List[str]:
    """Copies ``tensors`` into ``encoder``; returns the names of ignored task-head tensors."""
    mapping = _weight_map(config)
    uses = {name: 0 for name in tensors}
    for variable in encoder.variables:
        var_name = variable.name.split(":")[0]
        if var_name not in mapping:
            raise CheckpointImportError(
                f"Encoder variable {var_name!r} has no Hugging Face counterpart in the mapping")
        hf_name, transform = mapping[var_name]
        if hf_name not in tensors:
            raise CheckpointImportError(
                f"Checkpoint tensor {hf_name!r} is missing (needed for encoder variable {var_name!r})")
        uses[hf_name] += 1
        value = transform(np.asarray(tensors[hf_name], dtype=np.float32))
        if tuple(value.shape) != tuple(variable.shape):
            raise CheckpointImportError(
                f"Checkpoint tensor {hf_name!r} has shape {tensors[hf_name].shape}, which does not "
                f"fit encoder variable {var_name!r} {tuple(variable.shape)}")
        variable.assign(value)

    _check_buffers(tensors, uses)
    heads = sorted(name[len("head:"):] for name in tensors if name.startswith("head:"))
    for name in uses:
        if name.startswith("head:"):
            uses[name] = 1
    unused = sorted(name for name, count in uses.items() if count == 0)
    if unused:
        raise CheckpointImportError(
            f"Checkpoint tensor {unused[0]!r} was not used by the encoder"
            + (f" (and {len(unused) - 1} more: {unused[1:6]})" if len(unused) > 1 else "")
            + "; the config.json does not describe this checkpoint, or it is not a BertModel")
    reused = sorted(name for name, count in uses.items() if count > 1)
    if reused:
        raise CheckpointImportError(f"Checkpoint tensor {reused[0]!r} was assigned {uses[reused[0]]} times")
    return heads


def _check_buffers(tensors: Dict[str, np.ndarray], uses: Dict[str, int]) -> None:
    for name in _BUFFERS:
        if name in tensors:
            ids = np.asarray(tensors[name]).reshape(-1)
            if not np.array_equal(ids, np.arange(ids.size)):
                raise CheckpointImportError(f"Buffer {name!r} is not 0..n-1; positions are remapped")
            uses[name] += 1


def import_hf_checkpoint(checkpoint_dir: str, export_dir: str,
                         do_lower_case: Optional[bool] = None) -> str:
    """Converts a Hugging Face BERT checkpoint directory into a TF2 TF Hub-format encoder.

    The export appears at ``export_dir`` all at once (written beside it, then renamed), so an
    interrupted conversion never leaves a half-written model there. Raises FileExistsError if
    ``export_dir`` already holds something.
    """
    import tensorflow as tf

    checkpoint_dir = os.path.abspath(checkpoint_dir)
    export_dir = os.path.abspath(export_dir.rstrip("/"))
    _refuse_existing(export_dir)
    from bert_qa.settings import check_output_dir

    check_output_dir(export_dir, "export directory")  # writable, before the conversion's work
    if not os.path.isdir(checkpoint_dir):
        raise CheckpointFileNotFoundError(f"Checkpoint directory {checkpoint_dir!r} not found")
    vocab_file = os.path.join(checkpoint_dir, "vocab.txt")
    if not os.path.isfile(vocab_file):
        raise CheckpointFileNotFoundError(f"No vocab.txt in checkpoint directory {checkpoint_dir!r}")

    start = time.time()
    config = read_config(checkpoint_dir)
    encoder_config = encoder_config_from_hf(config, os.path.join(checkpoint_dir, "config.json"))
    lower = resolve_do_lower_case(checkpoint_dir, config, do_lower_case)
    _check_vocab(vocab_file, encoder_config.vocab_size)
    tensors = load_hf_tensors(checkpoint_dir)

    encoder = hub_format.build_bert_encoder(encoder_config)
    ignored_heads = assign_weights(encoder, encoder_config, tensors)

    parent = os.path.dirname(export_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(export_dir)}.partial-", dir=parent)
    try:
        hub_format.export_encoder(encoder, staging, vocab_file, lower, config=encoder_config)
        provenance = {
            "format_version": FORMAT_VERSION,
            "source": checkpoint_dir,
            "model_safetensors_sha256": sha256_file(os.path.join(checkpoint_dir, "model.safetensors")),
            "do_lower_case": lower,
            "config": config,
            "ignored_head_tensors": ignored_heads,
            "tensorflow_version": tf.__version__,
            "conversion_seconds": round(time.time() - start, 2),
        }
        with open(os.path.join(staging, PROVENANCE_FILE), "w", encoding="utf-8") as f:
            json.dump(provenance, f, indent=2, sort_keys=True)
        os.chmod(staging, 0o755)  # mkdtemp makes it private; the export is meant to be shared
        _rename_into_place(staging, export_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return export_dir


def _refuse_existing(export_dir: str) -> None:
    if os.path.exists(export_dir) and not os.path.isdir(export_dir):
        raise ExportExistsError(f"Export directory {export_dir!r} is a file, not a directory")
    if os.path.exists(export_dir) and os.listdir(export_dir):
        raise ExportExistsError(f"Export directory {export_dir!r} already exists and is not empty")


def _rename_into_place(staging: str, export_dir: str) -> None:
    try:
        os.rename(staging, export_dir)  # atomic; replaces only an empty directory
    except OSError as err:
        if os.path.isdir(export_dir) and os.listdir(export_dir):
            raise ExportExistsError(
                f"Export directory {export_dir!r} appeared while converting") from err
        raise


# Tokens the windowing and the tokenizer look up by name: without them every later run fails.
REQUIRED_VOCAB_TOKENS = ("[CLS]", "[SEP]", "[UNK]")


def _check_vocab(vocab_file: str, vocab_size: int) -> None:
    try:
        with open(vocab_file, encoding="utf-8") as f:
            tokens = [line.strip() for line in f]  # FullTokenizer's load_vocab strips each line
    except UnicodeDecodeError as err:
        raise CheckpointImportError(f"{vocab_file}: not UTF-8 text ({err.reason})") from None
    lines = len(tokens)
    if lines == 0:
        raise CheckpointImportError(f"{vocab_file}: the vocabulary is empty")
    present = set(tokens)
    missing = [t for t in REQUIRED_VOCAB_TOKENS if t not in present]
    if missing:
        raise CheckpointImportError(
            f"{vocab_file}: the vocabulary has no {', '.join(missing)} token"
            f"{'s' if len(missing) > 1 else ''}: not a BERT WordPiece vocabulary (windows start with "
            f"[CLS] and end each segment with [SEP]; unknown words map to [UNK])")
    if lines > vocab_size:
        raise CheckpointImportError(
            f"{vocab_file} has {lines} tokens but the model's vocab_size is {vocab_size}")
