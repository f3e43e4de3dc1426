"""TflitePusher: pushes blessed .tflite models to a versioned destination."""
from bert_qa_pipeline.components.tflite_pusher.component import TflitePusher

__all__ = ["TflitePusher"]
