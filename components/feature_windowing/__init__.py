"""FeatureWindowing: questions to windowed BERT features, in parallel with Apache Beam."""
from components.feature_windowing.component import FeatureWindowing

__all__ = ["FeatureWindowing"]
