"""QaTrainer: fine-tunes a bert_qa spec on windowed features."""
from bert_qa_pipeline.components.qa_trainer.component import QaTrainer

__all__ = ["QaTrainer"]
