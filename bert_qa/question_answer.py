"""Model Maker's task API: ``question_answer.create(...)`` -> a trained ``QuestionAnswer``.

    spec = BertQaSpec(uri=...)
    train = DataLoader.from_squad("train.json", spec)
    model = question_answer.create(train, spec, epochs=2)
    model.evaluate(DataLoader.from_squad("dev.json", spec, is_training=False))
    model.export("out/")   # model.tflite (dynamic-range, with Task Library metadata) + vocab.txt
"""
from __future__ import annotations

import logging
import math
import os
from typing import Optional

from bert_qa import _env  # noqa: F401

log = logging.getLogger(__name__)


class ExportFormat:
    TFLITE = "TFLITE"
    SAVED_MODEL = "SAVED_MODEL"
    VOCAB = "VOCAB"


class QuestionAnswer:
    """A spec plus its trained Keras model."""

    DEFAULT_EXPORT_FORMAT = (ExportFormat.TFLITE, ExportFormat.VOCAB)
    ALLOWED_EXPORT_FORMAT = (ExportFormat.TFLITE, ExportFormat.VOCAB, ExportFormat.SAVED_MODEL)

    def __init__(self, model_spec, shuffle: bool = False):
        self.model_spec = model_spec
        self.shuffle = shuffle
        self.model = None

    def summary(self):
        self.model.summary()

    def train(self, train_data, epochs: Optional[float] = None, batch_size: Optional[int] = None,
              steps_per_epoch: Optional[int] = None, **fit_kwargs):
        """Model Maker's ``train``; ``epochs`` may also be a fraction of a pass (1.5), which
        Model Maker's Keras ``fit`` refuses: ``bert_qa.settings.training_schedule``."""
        from bert_qa.settings import check_settings, training_schedule

        batch_size = batch_size or self.model_spec.default_batch_size
        if len(train_data) < batch_size:
            raise ValueError(f"The size of the train_data ({len(train_data)}) can't be smaller than "
                             f"batch_size ({batch_size}). To solve this problem, set the batch_size "
                             f"smaller or increase the size of the train_data.")
        epochs = epochs or 2
        check_settings({"epochs": epochs})
        epochs, steps_per_epoch = training_schedule(epochs, steps_per_epoch or len(train_data) // batch_size)
        input_fn = train_data.input_fn(self.model_spec, batch_size, shuffle=self.shuffle)
        self.model = self.model_spec.train(input_fn, epochs, steps_per_epoch, **fit_kwargs)
        return self.model

    def _evaluate(self, data, tflite_filepath, max_answer_length, null_score_diff_threshold,
                  verbose_logging, output_dir):
        if data.is_training:
            raise ValueError("Evaluate with a DataLoader made with is_training=False")
        batch = self.model_spec.predict_batch_size
        input_fn = data.input_fn(self.model_spec, batch)
        num_steps = int(math.ceil(len(data) / batch))
        return self.model_spec.evaluate(
            self.model if tflite_filepath is None else None, tflite_filepath, input_fn, num_steps,
            data.examples, data.features, data.squad_file, data.version_2_with_negative,
            max_answer_length, null_score_diff_threshold, verbose_logging, output_dir)

    def evaluate(self, data, max_answer_length: int = 30, null_score_diff_threshold: float = 0.0,
                 verbose_logging: bool = False, output_dir: Optional[str] = None):
        """Official EM/F1 of the Keras model; writes predictions.json etc. to ``output_dir``."""
        return self._evaluate(data, None, max_answer_length, null_score_diff_threshold,
                              verbose_logging, output_dir)

    def evaluate_tflite(self, tflite_filepath: str, data, max_answer_length: int = 30,
                        null_score_diff_threshold: float = 0.0, verbose_logging: bool = False,
                        output_dir: Optional[str] = None):
        """Official EM/F1 of an exported .tflite file on ``data``."""
        return self._evaluate(data, tflite_filepath, max_answer_length, null_score_diff_threshold,
                              verbose_logging, output_dir)

    def export(self, export_dir: str, tflite_filename: str = "model.tflite",
               vocab_filename: str = "vocab.txt", saved_model_filename: str = "saved_model",
               quantization_config=None, export_format=None, **metadata_kwargs):
        """Writes the TFLite model (with Task Library metadata), the vocab and/or a SavedModel."""
        from bert_qa.export import tflite as tflite_export

        formats = tuple(export_format or self.DEFAULT_EXPORT_FORMAT)
        if isinstance(export_format, str):
            formats = (export_format,)
        unknown = set(formats) - set(self.ALLOWED_EXPORT_FORMAT)
        if unknown:
            raise ValueError(f"Unsupported export_format {sorted(unknown)}; allowed: {self.ALLOWED_EXPORT_FORMAT}")
        os.makedirs(export_dir, exist_ok=True)
        spec = self.model_spec
        spec.build()
        written = {}
        if ExportFormat.SAVED_MODEL in formats:
            path = os.path.join(export_dir, saved_model_filename)
            tflite_export.export_saved_model(self.model, path, spec=spec)
            written["saved_model"] = path
        if ExportFormat.TFLITE in formats:
            config = quantization_config or spec.get_default_quantization_config()
            path = os.path.join(export_dir, tflite_filename)
            options = {"seq_len": spec.seq_len, "query_len": spec.query_len,
                       "doc_stride": spec.doc_stride, **metadata_kwargs.pop("metadata_options", {})}
            tflite_export.export_tflite(self.model, path, quantization=config,
                                        vocab_file=spec.vocab_file, do_lower_case=spec.do_lower_case,
                                        metadata_options=options, **metadata_kwargs)
            written["tflite"] = path
        if ExportFormat.VOCAB in formats:
            path = os.path.join(export_dir, vocab_filename)
            spec.save_vocab(path)
            written["vocab"] = path
        return written


def create(train_data, model_spec, batch_size: Optional[int] = None, epochs: float = 2,
           steps_per_epoch: Optional[int] = None, shuffle: bool = False, do_train: bool = True,
           **fit_kwargs) -> QuestionAnswer:
    """Fine-tunes ``model_spec`` on ``train_data`` (Model Maker's signature; ``epochs`` may also
    be a fraction of a pass, see ``QuestionAnswer.train``)."""
    qa = QuestionAnswer(model_spec, shuffle=shuffle)
    if do_train:
        log.info("Retraining the models...")
        qa.train(train_data, epochs, batch_size, steps_per_epoch, **fit_kwargs)
    else:
        qa.model = model_spec.create_model()
    return qa
