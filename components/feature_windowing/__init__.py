"""FeatureWindowing: questions to windowed BERT features, in parallel with Apache Beam."""
from bert_qa_pipeline.components.feature_windowing.component import FeatureWindowing

__all__ = ["FeatureWindowing"]
