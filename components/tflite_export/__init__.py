"""TfliteExport: a trained Model to .tflite variants with Task Library metadata."""
from bert_qa_pipeline.components.tflite_export.component import TfliteExport

__all__ = ["TfliteExport"]
