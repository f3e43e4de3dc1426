"""QaTrainer: fine-tunes a bert_qa spec on windowed features."""
from components.qa_trainer.component import QaTrainer

__all__ = ["QaTrainer"]
