"""One check of every setting, before any work.

``check_settings`` is what ``BertQaSpec(...)``, the windowing, ``TfliteQuestionAnswerer``, the
pipeline's configuration (``bertqa run`` / ``compile`` / ``--print-config``), ``bertqa export`` /
``predict`` / ``import-checkpoint`` and the pipeline's executors call with the settings they
have. A value that cannot work raises ``SettingError`` (an ``InputError``, so the CLI exits 1)
naming the key as its caller spells it (``model.seq_len``, ``--doc-stride``, ``seq_len``) and
the range it must be in. Bounds come from the spec and the encoder:

* ``query_len`` >= 1; ``query_len + 3 < seq_len`` (``[CLS]`` question ``[SEP]`` context
  ``[SEP]``: at least one context token) and ``seq_len <= max_position_embeddings`` of the
  encoder (its recorded config where there is one, else BERT's 512);
* ``doc_stride`` >= 1 (0 never advances the window: squad_lib's loop, and ours, would run until
  memory is gone). No upper bound: a stride beyond a window's context tokens (``seq_len -
  query_len - 3`` with the longest question, more with a shorter one) skips nothing, squad_lib
  advances by ``min(window, stride)``, i.e. windows without overlap. Model Maker's own
  ``BertQaSpec(seq_len=128)`` keeps its default stride 128 with 61 context tokens, and
  ``bertqa run --seq-len 128`` keeps the configured 128 with 93: both work and are accepted;
* enumerations: ``distribution_strategy``, ``mixed_precision``, ``optimizer_recipe``,
  ``quantization`` (one name or a list);
* counts: batch sizes, ``top_k``, ``max_answer_length``, threads ... >= 1;
  ``steps_per_epoch`` >= 0; a batch no larger than the training features when their number
  (or an upper bound of it) is known; ``epochs`` a number > 0 (a fraction of a pass is
  allowed, as Hugging Face's ``num_train_epochs``; ``training_schedule`` says how it trains);
* ``output_dir`` / ``output_file``: a directory (or a file's directory) this process can
  create files in, probed by creating one; local paths only (``gs://`` and other URIs are
  the object store's business).
"""
from __future__ import annotations

import math
import numbers
import os
import tempfile
from typing import Any, Iterable, Mapping, Optional, Tuple

from bert_qa.errors import InputError

SPECIAL_TOKENS = 3  # [CLS] question [SEP] context [SEP]
DEFAULT_MAX_POSITIONS = 512  # BERT's position table, where the encoder records none

# Settings that count something: (smallest allowed value, what it counts).
_COUNTS = {
    "batch_size": (1, "training examples per step"),
    "default_batch_size": (1, "training examples per step"),
    "predict_batch_size": (1, "features per prediction step"),
    "steps_per_epoch": (0, "training steps per epoch; 0 = features // batch size"),
    "top_k": (1, "answers to return"),
    "max_answer_length": (1, "tokens of the longest answer"),
    "n_best_size": (1, "candidate answers per question"),
    "num_threads": (1, "interpreter threads"),
    "num_calibration": (1, "calibration windows"),
    "max_representative_samples": (1, "calibration windows"),
}
_ORDER = ("query_len", "seq_len", "doc_stride")


class SettingError(InputError):
    """A setting whose value cannot work; the message names the key and its allowed range."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_settings(values: Mapping[str, Any], keys: Optional[Mapping[str, str]] = None, *,
                   max_positions: Optional[int] = None,
                   train_features: Optional[int] = None, train_features_note: str = "") -> None:
    """Raises ``SettingError`` for the first value in ``values`` that cannot work.

    ``values`` holds any of the settings this module knows (others are ignored, so a caller
    passes what it has); ``keys`` maps a setting to the name its user knows it by (default: the
    setting's own name). ``max_positions``: the encoder's position table (None: not bounded
    here, e.g. in the windowing, which knows no encoder). ``train_features``: how many training
    features the data gives at most (``train_features_note`` says where the number comes from),
    checked against ``batch_size`` / ``default_batch_size`` when ``steps_per_epoch`` is 0 or absent.
    """
    keys = dict(keys or {})

    def key(name: str) -> str:
        return keys.get(name, name)

    def fail(name: str, message: str):
        raise SettingError(key(name), f"{key(name)}={values[name]!r}: {message}")

    for name in _ORDER:
        if name in values and not _is_int(values[name]):
            fail(name, "must be an integer")
    if "query_len" in values and values["query_len"] < 1:
        fail("query_len", "must be >= 1 (question tokens kept in a window)")
    limit = max_positions
    if "seq_len" in values:
        seq_len = values["seq_len"]
        query_len = values.get("query_len")
        low = (query_len if query_len is not None else 0) + SPECIAL_TOKENS + 1
        within = (f" and <= {limit} (the encoder's position table, max_position_embeddings)"
                  if limit else "")
        if seq_len < low:
            after = f"{key('query_len')}={query_len} and " if query_len is not None else ""
            fail("seq_len", f"leaves no room for the context after {after}{SPECIAL_TOKENS} special "
                            f"tokens: it must be >= {low}{within}")
        if limit and seq_len > limit:
            fail("seq_len", f"is longer than the encoder's position table: it must be >= {low}{within}")
    if "doc_stride" in values and values["doc_stride"] < 1:
        fail("doc_stride", "must be >= 1 (context tokens a window advances by; 0 never moves on; a "
                           "stride beyond a window's context advances by one window)")
    _check_choices(values, key, fail)
    if "epochs" in values and values["epochs"] is not None:
        epochs = values["epochs"]
        if (isinstance(epochs, bool) or not isinstance(epochs, numbers.Real) or not epochs > 0
                or not math.isfinite(epochs)):
            fail("epochs", "must be a number > 0 (passes over the training data; 1.5 = one and a "
                           "half passes)")
    for name, (low, what) in _COUNTS.items():
        if name in values and values[name] is not None:
            value = values[name]
            if not _is_int(value) or value < low:
                fail(name, f"must be an integer >= {low} ({what})")
    if train_features is not None and not values.get("steps_per_epoch"):
        for name in ("batch_size", "default_batch_size"):
            if name in values and _is_int(values[name]) and values[name] > train_features:
                fail(name, f"must be at most {train_features}, the training features "
                           f"{train_features_note or 'the data gives'}: one batch never fills, so "
                           f"an epoch would have 0 steps (or set {key('steps_per_epoch')}, the "
                           f"batches then repeat the data)")
    for name, check in (("output_dir", check_output_dir), ("output_file", check_output_file)):
        if values.get(name):
            check(values[name], key(name))


def _check_choices(values, key, fail) -> None:
    choices = {}
    if "distribution_strategy" in values:
        from bert_qa.distribution import STRATEGIES

        choices["distribution_strategy"] = STRATEGIES
    if "mixed_precision" in values:
        from bert_qa.spec import MIXED_PRECISION_POLICIES

        choices["mixed_precision"] = MIXED_PRECISION_POLICIES
    if "optimizer_recipe" in values:
        from bert_qa.optimization import RECIPES

        choices["optimizer_recipe"] = RECIPES
    if "quantization" in values:
        from bert_qa.export.quantization import QUANTIZATIONS

        names = values["quantization"]
        names = [names] if isinstance(names, str) else names
        if not isinstance(names, (list, tuple)) or not names:
            fail("quantization", f"give one or more of {QUANTIZATIONS}")
        bad = [n for n in names if n not in QUANTIZATIONS]
        if bad:
            fail("quantization", f"{bad[0]!r} is not a quantization; choose from {QUANTIZATIONS}")
    for name, allowed in choices.items():
        value = values[name]
        # distribution.get_strategy takes any case, as Model Maker does.
        spelled = value.lower() if name == "distribution_strategy" and isinstance(value, str) else value
        if spelled not in allowed:
            raise SettingError(key(name), f"{key(name)} must be one of {allowed}, not {value!r}")


def training_schedule(epochs, steps_per_pass: int, key: str = "epochs") -> Tuple[int, int]:
    """(Keras epochs, steps per epoch) that train ``epochs`` passes of ``steps_per_pass`` steps.

    A whole number is Model Maker's count: that many epochs of ``steps_per_pass``. A fraction
    (1.5, as Hugging Face's ``num_train_epochs`` takes it) trains ``int(epochs x steps_per_pass)``
    steps, as Hugging Face counts them, rounded down to a multiple of ``ceil(epochs)`` so that they
    split into ``ceil(epochs)`` equal Keras epochs: checkpoints, and a resume after a kill, stay
    per epoch. The training input repeats as one shuffled stream, so where an epoch ends inside
    a pass changes no batch: 2 epochs of 176 steps train the same model as 1 of 352
    (``tests/test_train_evaluate.py``). ``key``: the setting's name as its user knows it, for
    the error.
    """
    if float(epochs).is_integer():
        return int(epochs), steps_per_pass
    num_epochs = math.ceil(epochs)
    steps_per_epoch = int(epochs * steps_per_pass) // num_epochs
    if steps_per_epoch < 1:
        raise SettingError(key, f"{key}={epochs!r}: {epochs} x {steps_per_pass} steps a pass is "
                                f"less than one step per epoch")
    return num_epochs, steps_per_epoch


# -- the encoder's bound ----------------------------------------------------------------------

def max_positions_of(uri: str) -> int:
    """The encoder's ``max_position_embeddings``, where it can be read without loading it: the
    default encoder's Hugging Face config, a local encoder directory's recorded config
    (``bert_encoder_config.json`` or an import-checkpoint export's provenance); else 512."""
    import json

    from bert_qa import encoders

    candidates = []
    try:
        if encoders.is_default(uri):
            from bert_qa.pretrained import minilm_checkpoint_dir

            candidates.append((os.path.join(minilm_checkpoint_dir(), "config.json"), None))
        elif "://" not in uri and os.path.isdir(uri):
            from bert_qa import hub_format

            candidates += [(os.path.join(uri, hub_format.ENCODER_CONFIG_FILE), None),
                           (os.path.join(uri, hub_format._IMPORT_PROVENANCE_FILE), "config")]
    except (ImportError, OSError):  # the default encoder's package missing: the build says so
        return DEFAULT_MAX_POSITIONS
    for path, section in candidates:
        try:
            with open(path, encoding="utf-8") as f:
                config = json.load(f)
            value = (config[section] if section else config)["max_position_embeddings"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable here: loading the encoder reports it
        if _is_int(value) and value > 0:
            return int(value)
    return DEFAULT_MAX_POSITIONS


# -- output paths -----------------------------------------------------------------------------

def _probe_directory(directory: str, key: str, target: str) -> None:
    """``directory`` (existing) must be a directory this process can create files in."""
    if not os.path.isdir(directory):
        raise SettingError(key, f"{key} {target}: {directory} is a file, not a directory")
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".bertqa-write-probe-"):
            pass
    except OSError as err:
        raise SettingError(key, f"{key} {target}: cannot write in {directory} "
                                f"({err.strerror or err}); choose a writable place") from None


def _existing_ancestor(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.lexists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def check_output_dir(path: str, key: str = "output_dir") -> None:
    """An output directory: existing and writable, or creatable (its nearest existing
    ancestor is a writable directory). URIs (``gs://`` ...) are not checked here."""
    if not path or "://" in str(path):
        return
    path = os.fspath(path)
    if os.path.lexists(path) and not os.path.isdir(path):
        raise SettingError(key, f"{key} {path}: is a file, not a directory")
    _probe_directory(_existing_ancestor(path), key, path)


def check_output_file(path: str, key: str = "output_file") -> None:
    """An output file: not a directory, in a directory that exists and is writable or can be
    created."""
    if not path or "://" in str(path):
        return
    path = os.fspath(path)
    if os.path.isdir(path):
        raise SettingError(key, f"{key} {path}: is a directory; give a file name")
    _probe_directory(_existing_ancestor(os.path.dirname(os.path.abspath(path))), key, path)


# -- the training features a batch needs -----------------------------------------------------

def training_features_bound(questions: Iterable, vocab_file: Optional[str], do_lower_case: bool,
                            seq_len: int, query_len: int, doc_stride: int,
                            version_2_with_negative: bool, multi_answer: str = "first") -> int:
    """How many training features ``questions`` (``squad_data.Question``) give: windowed
    exactly as FeatureWindowing does when ``vocab_file`` is given, else an upper bound (every
    context character a token, each question its windows)."""
    questions = list(questions)
    if vocab_file is None:
        window = max(seq_len - query_len - SPECIAL_TOKENS, 1)
        stride = max(min(doc_stride, window), 1)
        return sum(1 + max(0, -(-(len(q.context) - window) // stride)) for q in questions)
    from bert_qa import squad_data, windowing
    from bert_qa.tokenization import CachedFullTokenizer

    tokenizer = CachedFullTokenizer(vocab_file, do_lower_case)
    examples, _ = squad_data.to_squad_examples(questions, True, version_2_with_negative, multi_answer)
    count = [0]

    def output_fn(feature, is_padding=False):
        count[0] += 1

    windowing.convert_examples_to_features(examples, tokenizer, seq_len, doc_stride, query_len,
                                           True, output_fn, batch_size=None, pad_to_batch=False)
    return count[0]
