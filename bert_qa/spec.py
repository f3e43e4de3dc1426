"""``BertQaSpec`` / ``MobileBertQaSpec``: TFLite Model Maker's question-answer specs.

Same constructor arguments, defaults, methods and class attributes as Model Maker's
``BertQAModelSpec`` and ``mobilebert_qa_spec``, running on tf-models-official
(``squad_lib`` windowing semantics, ``BertSpanLabeler``, AdamW with warmup and linear decay,
the official SQuAD scorers). Differences, all additive: windowing is an exact, faster
re-implementation; encoder handles resolve with a clear message when offline; training
checkpoints every epoch in ``model_dir``, resumes after a kill and logs to TensorBoard.
"""
from __future__ import annotations

import functools
import inspect
import json
import logging
import os
import tempfile
from typing import Callable, List, Optional

from bert_qa import _env  # noqa: F401
import tensorflow as tf
import tf_keras
from official.common import distribute_utils
from official.legacy.bert import run_squad_helper
from official.nlp.data import squad_lib

from bert_qa import (distribution, encoders, hub_format, modeling, optimization, postprocess, scoring,
                     settings, windowing)
from bert_qa.export.quantization import QuantizationConfig
from bert_qa.tflite_runner import LiteRunner
from bert_qa.tokenization import CachedFullTokenizer
from bert_qa.windowing_params import Windowing

log = logging.getLogger(__name__)

BERT_URI = "https://tfhub.dev/tensorflow/bert_en_uncased_L-12_H-768_A-12/1"
MOBILEBERT_URI = "https://tfhub.dev/google/mobilebert/uncased_L-24_H-128_B-512_A-4_F-4_OPT/1"
N_BEST_SIZE = 20


def qa_loss(positions, logits):
    """Mean sparse cross-entropy of one boundary; compiled with weights 0.5/0.5 = their mean."""
    loss = tf_keras.losses.sparse_categorical_crossentropy(positions, logits, from_logits=True)
    return tf.reduce_mean(loss)


# Keras policies a spec trains under (``mixed_precision``); float32 is Model Maker's behaviour.
# mixed_bfloat16 for CPUs with AMX/AVX512-BF16 and TPUs, mixed_float16 (loss-scaled) for GPUs.
MIXED_PRECISION_POLICIES = ("float32", "mixed_bfloat16", "mixed_float16", "auto")


def native_bf16_cpu() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AMX or AVX512-BF16); elsewhere TF
    emulates it and mixed_bfloat16 is slower than float32."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            flags = set(f.read().split())
    except OSError:
        return False
    return bool(flags & {"amx_bf16", "avx512_bf16"})


def resolve_mixed_precision(value: str) -> str:
    """``auto``: mixed_bfloat16 on a CPU-only machine whose CPU has bfloat16 units, else
    float32 (GPUs: ask for mixed_float16 explicitly). Resolved where the spec is built, so a
    compiled pipeline decides on the machine that trains."""
    if value != "auto":
        return value
    if tf.config.list_physical_devices("GPU"):
        return "float32"
    return "mixed_bfloat16" if native_bf16_cpu() else "float32"


class BertQaSpec:
    """A BERT-family encoder fine-tuned for SQuAD-style extractive question answering."""

    compat_tf_versions = [2]
    need_gen_vocab = False
    convert_from_saved_model_tf2 = True

    def __init__(self,
                 uri: str = BERT_URI,
                 model_dir: Optional[str] = None,
                 seq_len: int = 384,
                 query_len: int = 64,
                 doc_stride: int = 128,
                 dropout_rate: float = 0.1,
                 initializer_range: float = 0.02,
                 learning_rate: float = 8e-05,
                 distribution_strategy: str = "mirrored",
                 num_gpus: int = -1,
                 tpu: str = "",
                 trainable: bool = True,
                 predict_batch_size: int = 8,
                 do_lower_case: bool = True,
                 is_tf2: bool = True,
                 tflite_input_name: Optional[dict] = None,
                 tflite_output_name: Optional[dict] = None,
                 init_from_squad_model: bool = False,
                 default_batch_size: int = 16,
                 name: str = "Bert",
                 optimizer_recipe: str = "model_maker",
                 mixed_precision: str = "float32"):
        if int(tf.__version__.split(".")[0]) not in self.compat_tf_versions:
            raise ValueError(f"Incompatible versions. Expect {self.compat_tf_versions}, "
                             f"but got {tf.__version__}.")
        # Values that cannot work are refused here, before any work (a SettingError is a
        # ValueError): the windowing bounds (the encoder's position table read where it is
        # recorded, else 512), the strategy, recipe and precision names, the batch sizes.
        # Anything Model Maker's spec accepts and can run is still accepted.
        settings.check_settings(
            {"seq_len": seq_len, "query_len": query_len, "doc_stride": doc_stride,
             "distribution_strategy": distribution_strategy, "optimizer_recipe": optimizer_recipe,
             "mixed_precision": mixed_precision, "predict_batch_size": predict_batch_size,
             "default_batch_size": default_batch_size},
            max_positions=settings.max_positions_of(uri))
        self.uri = uri
        self.model_dir = model_dir or tempfile.mkdtemp(prefix="bert_qa_")
        self.seq_len = seq_len
        self.query_len = query_len
        self.doc_stride = doc_stride
        self.dropout_rate = dropout_rate
        self.initializer_range = initializer_range
        self.learning_rate = learning_rate
        self.distribution_strategy = distribution_strategy
        self.num_gpus = num_gpus
        self.tpu = tpu
        self.trainable = trainable
        self.predict_batch_size = predict_batch_size
        self.do_lower_case = do_lower_case
        self.is_tf2 = is_tf2
        self.init_from_squad_model = init_from_squad_model
        self.default_batch_size = default_batch_size
        self.name = name
        self.optimizer_recipe = optimizer_recipe
        self.mixed_precision = mixed_precision  # as asked ("auto" stays "auto" in records)
        self.strategy = distribution.get_strategy(distribution_strategy, num_gpus, tpu)
        self.tflite_input_name = tflite_input_name or {
            "ids": "serving_default_input_word_ids:0",
            "mask": "serving_default_input_mask:0",
            "segment_ids": "serving_default_input_type_ids:0",
        }
        self.tflite_output_name = tflite_output_name or {
            "start_logits": "StatefulPartitionedCall:1",
            "end_logits": "StatefulPartitionedCall:0",
        }
        self.is_built = False
        self.module_path: Optional[str] = None
        self.vocab_file: Optional[str] = None
        self.tokenizer: Optional[CachedFullTokenizer] = None

    # -- set-up ---------------------------------------------------------------------------

    def build(self):
        """Resolves the encoder and loads its tokenizer (lazily, as Model Maker)."""
        if self.is_built:
            return
        self.module_path = encoders.resolve(self.uri)
        config = hub_format.encoder_config_of(self.module_path)
        if config is not None:  # a TF Hub handle's table is known only once it is resolved
            settings.check_settings({"seq_len": self.seq_len, "query_len": self.query_len},
                                    max_positions=config.max_position_embeddings)
        self.vocab_file, module_lower_case = hub_format.find_vocab(self.module_path)
        if module_lower_case is not None and module_lower_case != self.do_lower_case:
            log.warning("Encoder %s says do_lower_case=%s but the spec has do_lower_case=%s; "
                        "using the spec's value", self.uri, module_lower_case, self.do_lower_case)
        self.tokenizer = CachedFullTokenizer(self.vocab_file, self.do_lower_case)
        self.is_built = True

    def save_vocab(self, vocab_filename: str):
        self.build()
        tf.io.gfile.copy(self.vocab_file, vocab_filename, overwrite=True)
        log.info("Saved vocabulary in %s.", vocab_filename)

    def get_config(self) -> dict:
        """Preprocessing parameters: what cached features depend on."""
        return {"uri": self.uri, "seq_len": self.seq_len, "query_len": self.query_len,
                "doc_stride": self.doc_stride}

    def get_default_quantization_config(self):
        """Dynamic-range quantization, Model Maker's default for QA."""
        return QuantizationConfig.for_dynamic()

    # -- data -----------------------------------------------------------------------------

    def get_name_to_features(self, is_training: bool) -> dict:
        name_to_features = {
            "input_ids": tf.io.FixedLenFeature([self.seq_len], tf.int64),
            "input_mask": tf.io.FixedLenFeature([self.seq_len], tf.int64),
            "segment_ids": tf.io.FixedLenFeature([self.seq_len], tf.int64),
        }
        if is_training:
            name_to_features["start_positions"] = tf.io.FixedLenFeature([], tf.int64)
            name_to_features["end_positions"] = tf.io.FixedLenFeature([], tf.int64)
        else:
            name_to_features["unique_ids"] = tf.io.FixedLenFeature([], tf.int64)
        return name_to_features

    def select_data_from_record(self, record):
        """Splits a decoded record into model inputs and span labels."""
        x, y = {}, {}
        for name, tensor in record.items():
            if name in ("start_positions", "end_positions"):
                y[name] = tensor
            elif name == "input_ids":
                x["input_word_ids"] = tensor
            elif name == "segment_ids":
                x["input_type_ids"] = tensor
            else:
                x[name] = tensor
        return x, y

    def convert_examples_to_features(self, examples, is_training: bool, output_fn: Callable,
                                     batch_size: Optional[int]):
        """squad_lib's windowing of ``examples`` (exact, faster); returns the feature count."""
        self.build()
        return windowing.convert_examples_to_features(
            examples=examples, tokenizer=self.tokenizer, max_seq_length=self.seq_len,
            doc_stride=self.doc_stride, max_query_length=self.query_len,
            is_training=is_training, output_fn=output_fn, batch_size=batch_size)

    # -- model ----------------------------------------------------------------------------

    def create_model(self):
        self.build()
        if self.init_from_squad_model:
            return modeling.create_qa_model_from_squad(self.module_path, self.seq_len,
                                                       self.trainable, self.is_tf2)
        model, _ = modeling.create_qa_model(self.module_path, self.seq_len, self.initializer_range,
                                            self.trainable, self.is_tf2)
        return model

    def train(self, train_input_fn: Callable, epochs: int, steps_per_epoch: int, **kwargs):
        """Fine-tunes a new model: AdamW, 10% warmup, linear decay, mean of start/end loss.

        ``optimizer_recipe`` picks Model Maker's optimizer and schedule (the default) or
        Hugging Face's (``bert_qa.optimization`` says how they differ).

        Besides Model Maker's behaviour, it checkpoints every epoch under ``model_dir``
        (``backup/`` lets a killed run resume where it stopped; ``checkpoints/`` keeps each
        epoch's weights) and writes TensorBoard logs to ``model_dir/tensorboard``. Pass
        ``callbacks=[...]`` to add your own.
        """
        total_steps = epochs * steps_per_epoch
        warmup_steps = optimization.warmup_steps(total_steps)
        with distribute_utils.get_strategy_scope(self.strategy):
            if isinstance(self.strategy, tf.distribute.experimental.ParameterServerStrategy):
                # tf_keras under a parameter-server cluster needs a per-worker dataset function.
                training_dataset = tf_keras.utils.experimental.DatasetCreator(train_input_fn)
            else:
                training_dataset = train_input_fn()
                resumed = self._epochs_done_before_kill()
                if resumed and isinstance(training_dataset, tf.data.Dataset):
                    # BackupAndRestore restores weights and optimizer, not the input pipeline:
                    # without this, the resumed epochs would see epoch 1's batches again. The
                    # shuffled, repeated stream is deterministic, so skipping what was consumed
                    # continues it where the killed run stopped.
                    log.info("resuming after epoch %d: skipping its %d batches", resumed,
                             resumed * steps_per_epoch)
                    training_dataset = training_dataset.skip(resumed * steps_per_epoch)
            model = self._training_model()
            optimizer = optimization.create_optimizer(
                self.optimizer_recipe, self.learning_rate, total_steps, warmup_steps)
            if self._training_policy == "mixed_float16":  # float16 gradients underflow without it
                optimizer = tf_keras.mixed_precision.LossScaleOptimizer(optimizer)
            model.compile(optimizer=optimizer, loss=qa_loss, loss_weights=[0.5, 0.5])
            if isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
                # "auto" sums the already-averaged loss over workers in logs (weights unaffected).
                model.distribute_reduction_method = "first"
        if not model.trainable_variables:
            log.warning("Trainable variables in the model are empty.")
            return model
        callbacks = list(kwargs.pop("callbacks", None) or []) + self._training_callbacks()
        model.fit(x=training_dataset, steps_per_epoch=steps_per_epoch, epochs=epochs,
                  callbacks=callbacks, **kwargs)
        if self._training_policy != "float32":
            model = self._as_float32(model)
        return model

    # -- mixed precision ------------------------------------------------------------------

    @property
    def training_precision(self):
        """The Keras policy the last ``train`` ran under (``mixed_precision="auto"`` resolved:
        where it fell back to float32 is known only then); None before training."""
        return getattr(self, "_training_policy", None)

    def _training_model(self):
        """The model ``train`` fits: the encoder rebuilt natively as Keras layers wherever the
        encoder records its shape, else ``create_model()``'s loaded TF Hub layer (float32 only).

        Why native in float32 too: a loaded SavedModel's dropout ops keep the seeds they were
        exported with, so every ``tf.random.set_seed`` would draw the same sequence of dropout
        masks (issue 23: five "seeds" were five batch orders under one mask sequence). Rebuilt,
        Keras' Dropout layers take their seeds from the global seed, as Hugging Face's do from
        ``torch.manual_seed``. Under a mixed-precision policy it is the only way: a SavedModel
        computes in the dtypes it was traced with. The weights are the SavedModel's either way.
        """
        policy = resolve_mixed_precision(self.mixed_precision)
        native = self._can_rebuild_natively()
        if policy != "float32" and self.mixed_precision == "auto" and not native:
            log.info("mixed_precision='auto': %s cannot be rebuilt natively; training in float32", self.uri)
            policy = "float32"
        self._training_policy = policy
        if policy == "float32" and not native:
            log.info("%s records no encoder shape: training its loaded TF Hub layer, whose dropout "
                     "masks follow the seeds it was exported with, not tf.random's", self.uri)
            return self.create_model()
        return self._native_model(policy)

    def _can_rebuild_natively(self) -> bool:
        self.build()
        return (self.is_tf2 and not self.init_from_squad_model
                and hub_format.encoder_config_of(self.module_path) is not None)

    def _native_model(self, policy: str):
        self.build()
        if self.init_from_squad_model or not self.is_tf2:
            raise ValueError("mixed_precision needs a TF2 encoder (not a TF1 Hub module or a SQuAD "
                             "model): use mixed_precision='float32'")
        config = hub_format.encoder_config_of(self.module_path)
        if config is None:
            raise ValueError(f"mixed_precision={self.mixed_precision!r} rebuilds the encoder natively and "
                             f"needs its shape, which {self.uri} does not record "
                             f"({hub_format.ENCODER_CONFIG_FILE}, or a bertqa import-checkpoint export); "
                             f"use mixed_precision='float32'")
        previous = tf_keras.mixed_precision.global_policy()
        tf_keras.mixed_precision.set_global_policy(policy)
        try:  # layers take the policy when built; the global one goes back at once
            return modeling.create_native_qa_model(self.module_path, self.seq_len, config,
                                                   self.initializer_range, self.trainable)
        finally:
            tf_keras.mixed_precision.set_global_policy(previous)

    def create_native_float32_model(self):
        """The float32 model mixed-precision training exports (its encoder rebuilt natively)."""
        return self._native_model("float32")

    def _as_float32(self, trained):
        """The trained weights in a float32 model (variables are float32 under mixed
        policies), so that evaluation and the exported SavedModel / TFLite are float32."""
        with distribute_utils.get_strategy_scope(self.strategy):
            model = self._native_model("float32")
        model.set_weights(trained.get_weights())
        return model

    def _backup_dir(self) -> str:
        return os.path.join(self.model_dir, "backup")

    def _epochs_done_before_kill(self) -> int:
        """Epochs a killed run completed, from the state BackupAndRestore will restore (its
        ``ckpt_saved_epoch``, 0-based; tf_keras resumes at the next epoch)."""
        latest = tf.train.latest_checkpoint(os.path.join(self._backup_dir(), "chief"))
        if not latest:
            return 0
        try:
            saved = int(tf.train.load_variable(latest, "ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE"))
        except (tf.errors.NotFoundError, ValueError):
            return 0
        return max(saved + 1, 0)

    def _training_callbacks(self) -> List[tf_keras.callbacks.Callback]:
        callbacks = [
            tf_keras.callbacks.ModelCheckpoint(
                os.path.join(self.model_dir, "checkpoints", "epoch-{epoch:03d}"),
                save_weights_only=True, save_freq="epoch"),
            tf_keras.callbacks.TensorBoard(os.path.join(self.model_dir, "tensorboard"),
                                           update_freq=10, profile_batch=0),
        ]
        # tf_keras's BackupAndRestore refuses OneDeviceStrategy (NotImplementedError).
        if not isinstance(self.strategy, tf.distribute.OneDeviceStrategy):
            callbacks.insert(0, tf_keras.callbacks.BackupAndRestore(self._backup_dir()))
        else:
            log.warning("distribution_strategy='one_device': a killed run cannot resume here (tf_keras's "
                        "BackupAndRestore refuses OneDeviceStrategy); per-epoch checkpoints are still "
                        "written to %s. Use 'off' or 'mirrored' to resume after a kill.",
                        os.path.join(self.model_dir, "checkpoints"))
        return callbacks

    # -- inference ------------------------------------------------------------------------

    def predict(self, model, input_fn: Callable, num_steps: int):
        """Raw start/end logits per feature, run under the spec's strategy."""
        strategy = self.strategy or tf.distribute.get_strategy()
        iterator = iter(strategy.distribute_datasets_from_function(input_fn))

        @tf.function
        def predict_step(iterator):
            def replicated_step(inputs):
                x, _ = inputs
                unique_ids = x.pop("unique_ids")
                start_logits, end_logits = model(x, training=False)
                return dict(unique_ids=unique_ids, start_logits=start_logits,
                            end_logits=end_logits)

            outputs = strategy.run(replicated_step, args=(next(iterator),))
            return tf.nest.map_structure(strategy.experimental_local_results, outputs)

        all_results = []
        for step in range(num_steps):
            all_results.extend(run_squad_helper.get_raw_results(predict_step(iterator)))
            if (step + 1) % 50 == 0 or step + 1 == num_steps:
                log.info("Made predictions for %d records.", len(all_results))
        return all_results

    def reorder_input_details(self, tflite_input_details):
        """TFLite input details in the Keras model's order: word ids, mask, type ids."""
        by_role = {}
        for detail in tflite_input_details:
            name = detail["name"]
            if name == self.tflite_input_name["ids"] or "input_word_ids" in name:
                by_role["ids"] = detail
            elif name == self.tflite_input_name["mask"] or "input_mask" in name:
                by_role["mask"] = detail
            elif name == self.tflite_input_name["segment_ids"] or "input_type_ids" in name:
                by_role["segment_ids"] = detail
        missing = {"ids", "mask", "segment_ids"} - set(by_role)
        if missing:
            raise ValueError(f"TFLite inputs {[d['name'] for d in tflite_input_details]} lack "
                             f"{sorted(missing)} (tflite_input_name={self.tflite_input_name})")
        return [by_role["ids"], by_role["mask"], by_role["segment_ids"]]

    def reorder_output_details(self, tflite_output_details):
        """TFLite output details as (start_logits, end_logits)."""
        found = {}
        for detail in tflite_output_details:
            for role in ("start_logits", "end_logits"):
                if detail["name"] == self.tflite_output_name[role]:
                    found[role] = detail
        if len(found) != 2:
            raise ValueError(f"TFLite outputs {[d['name'] for d in tflite_output_details]} do not "
                             f"match tflite_output_name={self.tflite_output_name}")
        return found["start_logits"], found["end_logits"]

    def predict_tflite(self, tflite_filepath: str, input_fn: Callable):
        """Raw results for ``input_fn``'s features from the .tflite model."""
        runner = LiteRunner(tflite_filepath, self.reorder_input_details, self.reorder_output_details)
        all_results = []
        for features, _ in input_fn():
            features = {k: v.numpy() for k, v in features.items()}
            unique_ids = features.pop("unique_ids")
            start_logits, end_logits = runner.run(features)
            for uid, start, end in zip(unique_ids, start_logits, end_logits):
                all_results.append(run_squad_helper.RawResult(
                    unique_id=int(uid), start_logits=start.tolist(), end_logits=end.tolist()))
            if len(all_results) % 100 == 0:
                log.info("Made predictions for %d records.", len(all_results))
        return all_results

    def evaluate(self, model, tflite_filepath, input_fn, num_steps, eval_examples, eval_features,
                 predict_file, version_2_with_negative, max_answer_length,
                 null_score_diff_threshold, verbose_logging, output_dir):
        """Official SQuAD EM/F1 of ``model`` or of the TFLite file (exactly one of them)."""
        if model is not None and tflite_filepath is not None:
            raise ValueError("Exactly one of the paramaters `model` and `tflite_filepath` should be set.")
        if model is None and tflite_filepath is None:
            raise ValueError("At least one of the parameters `model` and `tflite_filepath` are None.")
        if tflite_filepath is not None:
            all_results = self.predict_tflite(tflite_filepath, input_fn)
        else:
            all_results = self.predict(model, input_fn, num_steps)
        predictions, nbest, null_odds = postprocess.postprocess_output(  # = squad_lib's, faster
            eval_examples, eval_features, all_results, n_best_size=N_BEST_SIZE,
            max_answer_length=max_answer_length, do_lower_case=self.do_lower_case,
            version_2_with_negative=version_2_with_negative,
            null_score_diff_threshold=null_score_diff_threshold, verbose=verbose_logging)
        if output_dir is not None:
            write_prediction_files(predictions, nbest, null_odds, version_2_with_negative, output_dir)
        with tf.io.gfile.GFile(predict_file, "r") as f:
            dataset = json.load(f)["data"]
        return scoring.score(dataset, predictions, null_odds if version_2_with_negative else None,
                             version_2_with_negative)


def write_prediction_files(predictions, nbest, null_odds, version_2_with_negative, output_dir):
    """predictions.json, nbest_predictions.json and (v2.0) null_odds.json, as Model Maker."""
    tf.io.gfile.makedirs(output_dir)
    squad_lib.write_to_json_files(predictions, os.path.join(output_dir, "predictions.json"))
    squad_lib.write_to_json_files(nbest, os.path.join(output_dir, "nbest_predictions.json"))
    if version_2_with_negative:
        squad_lib.write_to_json_files(null_odds, os.path.join(output_dir, "null_odds.json"))


def _init_with_defaults(base_init, **defaults):
    """``base_init`` with other defaults: a ``functools.partial`` that is still a class.

    Model Maker's ``mobilebert_qa_spec`` is ``functools.partial(BertQAModelSpec, ...)``; a
    subclass keeps ``isinstance`` and the class name, and ``__signature__`` lets ``help()`` and
    ``inspect`` show the whole signature with these defaults.
    """
    signature = inspect.signature(base_init)
    signature = signature.replace(parameters=[
        p.replace(default=defaults.pop(p.name)) if p.name in defaults else p
        for p in signature.parameters.values()])
    if defaults:
        raise TypeError(f"not arguments of {base_init.__qualname__}: {sorted(defaults)}")

    @functools.wraps(base_init)
    def __init__(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        base_init(*bound.args, **bound.kwargs)

    __init__.__signature__ = signature
    return __init__


class MobileBertQaSpec(BertQaSpec):
    """Model Maker's ``mobilebert_qa_spec``: MobileBERT from a TF1 Hub module, no strategy."""

    __init__ = _init_with_defaults(
        BertQaSpec.__init__, uri=MOBILEBERT_URI, is_tf2=False, distribution_strategy="off",
        learning_rate=4e-05, default_batch_size=32, name="MobileBert")


SPEC_CLASSES = {cls.__name__: cls for cls in (BertQaSpec, MobileBertQaSpec)}
# Arguments that name a place on the machine that made the spec, not a property of the model.
_LOCAL_ARGS = ("model_dir",)


def windowing_defaults(spec_name: str = "BertQaSpec") -> dict:
    """The spec class's own defaults for the windowing arguments (the one place they live)."""
    parameters = inspect.signature(SPEC_CLASSES[spec_name]).parameters
    return {name: parameters[name].default for name in Windowing.names()}


def windowing_of(spec) -> dict:
    """The constructor arguments that decide windowing (``Windowing``): features and model
    must agree on them."""
    return Windowing.of(spec).as_dict()


def spec_record(spec) -> dict:
    """``{"spec": class name, "args": constructor arguments}``: enough to rebuild ``spec``
    in another process (``spec_from_record``). The encoder is recorded as the user named it
    (``encoders.portable_uri``), never as this machine's cache path."""
    name = type(spec).__name__
    if name not in SPEC_CLASSES:
        raise ValueError(f"cannot record a {name}; known specs: {sorted(SPEC_CLASSES)}")
    args = {p: getattr(spec, p) for p in inspect.signature(SPEC_CLASSES[name]).parameters
            if p not in _LOCAL_ARGS}
    args["uri"] = encoders.portable_uri(spec.uri)
    return {"spec": name, "args": args}


def spec_from_record(record: dict, **overrides):
    """The spec ``spec_record`` describes (``overrides``, e.g. ``model_dir``, win)."""
    name = record.get("spec")
    if name not in SPEC_CLASSES:
        raise ValueError(f"spec record names {name!r}; known specs: {sorted(SPEC_CLASSES)}")
    known = inspect.signature(SPEC_CLASSES[name]).parameters
    args = {**record.get("args", {}), **overrides}
    unknown = sorted(set(args) - set(known))
    if unknown:
        raise ValueError(f"spec record has arguments {unknown} that {name} does not take")
    return SPEC_CLASSES[name](**args)
