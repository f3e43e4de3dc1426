"""TflitePusher: pushes blessed .tflite models to a versioned destination."""
from components.tflite_pusher.component import TflitePusher

__all__ = ["TflitePusher"]
