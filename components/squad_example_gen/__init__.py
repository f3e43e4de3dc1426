"""SquadExampleGen: SQuAD JSON files to an Examples artifact of questions."""
from bert_qa_pipeline.components.squad_example_gen.component import SquadExampleGen

__all__ = ["SquadExampleGen"]
