"""QaEvaluator: official EM/F1, TFMA slices, blessing, report."""
from bert_qa_pipeline.components.qa_evaluator.component import QaEvaluator

__all__ = ["QaEvaluator"]
