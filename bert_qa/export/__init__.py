"""Exporting span models: serving SavedModel, TFLite variants, Task Library metadata.

Importing this package is cheap (TensorFlow loads on first use), so that
``spec.get_default_quantization_config()`` and the CLI stay fast.
"""
from bert_qa import _env  # noqa: F401
from bert_qa.export.metadata import (ModelInfo, QaMetadata, TFLITE_INPUT_NAME, TFLITE_OUTPUT_NAME,
                                     TfliteModelError, add_metadata, metadata_json, read_metadata,
                                     write_metadata)
from bert_qa.export.quantization import QUANTIZATIONS, QuantizationConfig, representative_samples
from bert_qa.export.tflite import (DEFAULT_VARIANTS, ExportInputError, convert, export_at_seq_len, export_saved_model,
                                   export_tflite, export_tflite_variants, saved_model_info,
                                   spec_of_saved_model, trained_model)

__all__ = [
    "DEFAULT_VARIANTS", "ExportInputError", "ModelInfo", "QUANTIZATIONS", "QaMetadata",
    "QuantizationConfig", "TFLITE_INPUT_NAME", "TFLITE_OUTPUT_NAME", "TfliteModelError",
    "add_metadata", "convert", "export_at_seq_len", "export_saved_model", "export_tflite", "export_tflite_variants",
    "metadata_json", "read_metadata", "representative_samples", "saved_model_info",
    "spec_of_saved_model", "trained_model", "write_metadata",
]
