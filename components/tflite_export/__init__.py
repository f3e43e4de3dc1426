"""TfliteExport: a trained Model to .tflite variants with Task Library metadata."""
from components.tflite_export.component import TfliteExport

__all__ = ["TfliteExport"]
