"""The DataLoader's feature cache: private per user, keyed on everything that decides the
features, never trusted when its file is not the one it recorded, never tripped by leftovers."""
from __future__ import annotations

import os
import shutil
import stat
import time

import pytest
import tensorflow as tf

from bert_qa import BertQaSpec, DataLoader, dataloader
from tests import fixtures


def _articles(n: int = 6):
    out = []
    for article in fixtures.load_squad("english_tydiqa_train.json")["data"]:
        for p in article["paragraphs"]:
            out.append({"title": article.get("title", ""),
                        "paragraphs": [dict(p, qas=[dict(qa, answers=qa["answers"][:1]) for qa in p["qas"]])]})
            if len(out) == n:
                return out
    return out


def _spec(encoder: str, **kwargs) -> BertQaSpec:
    return BertQaSpec(uri=encoder, seq_len=96, query_len=24, doc_stride=48, distribution_strategy="off",
                      **kwargs)


def _records(path: str) -> int:
    return sum(1 for _ in tf.data.TFRecordDataset(path))


@pytest.fixture(scope="module")
def train_file(tmp_path_factory):
    return fixtures.write_squad(str(tmp_path_factory.mktemp("cache_data") / "train.json"), _articles())


def test_a_damaged_cache_entry_is_rebuilt_not_trained_on(tiny_encoder, train_file, tmp_path):
    spec, cache = _spec(tiny_encoder), str(tmp_path / "cache")
    first = DataLoader.from_squad(train_file, spec, is_training=True, cache_dir=cache)
    assert first.features is not None and _records(first.tfrecord_file) == first.size > 0
    again = DataLoader.from_squad(train_file, spec, is_training=True, cache_dir=cache)
    assert again.features is None  # a verified hit
    # A kill while copying the cache, or someone else's file in its place: same name, other bytes.
    with open(first.tfrecord_file, "r+b") as f:
        f.truncate(os.path.getsize(first.tfrecord_file) // 2)
    rebuilt = DataLoader.from_squad(train_file, spec, is_training=True, cache_dir=cache)
    assert rebuilt.features is not None  # not served from the damaged file
    assert _records(rebuilt.tfrecord_file) == first.size
    # A metadata file that is not JSON is a miss as well, not a crash.
    with open(rebuilt.tfrecord_file.replace(".tfrecord", ".meta.json"), "w") as f:
        f.write("{trunc")
    assert DataLoader.from_squad(train_file, spec, is_training=True, cache_dir=cache).features is not None


def test_key_covers_vocabulary_and_casing(tiny_encoder, train_file, tmp_path):
    cache = str(tmp_path / "cache")
    lower = DataLoader.from_squad(train_file, _spec(tiny_encoder), is_training=True, cache_dir=cache)
    cased = DataLoader.from_squad(train_file, _spec(tiny_encoder, do_lower_case=False), is_training=True,
                                  cache_dir=cache)
    assert cased.tfrecord_file != lower.tfrecord_file and cased.features is not None
    # The same uri, seq_len and strides (the same get_config()) with another vocabulary.
    other = str(tmp_path / "encoder_other_vocab")
    shutil.copytree(tiny_encoder, other)
    vocab = os.path.join(other, "assets", "vocab.txt")
    lines = open(vocab, encoding="utf-8").read().splitlines()
    lines[2000], lines[2001] = lines[2001], lines[2000]
    open(vocab, "w", encoding="utf-8").write("\n".join(lines) + "\n")
    spec_a, spec_b = _spec(tiny_encoder), _spec(other)
    spec_a.build(), spec_b.build()
    spec_b.uri = spec_a.uri  # identical configs: only the vocabulary tells them apart
    assert spec_a.get_config() == spec_b.get_config()
    moved = DataLoader.from_squad(train_file, spec_b, is_training=True, cache_dir=cache)
    assert moved.tfrecord_file != lower.tfrecord_file and moved.features is not None


def test_default_cache_is_private_to_the_user(monkeypatch, tmp_path):
    monkeypatch.setenv("BERT_QA_CACHE", str(tmp_path / "home_cache"))
    path = dataloader.default_cache_dir()
    assert path == str(tmp_path / "home_cache" / "features")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    assert not path.startswith(os.path.join(os.path.realpath("/tmp"), "bert_qa_features"))


def test_only_stale_temporaries_are_swept(tiny_encoder, train_file, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    stale, fresh = cache / "abc.tfrecord.dead.tmp", cache / "abc.tfrecord.live.tmp"
    stale.write_bytes(b"x"), fresh.write_bytes(b"y")
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(stale, (day_ago, day_ago))
    DataLoader.from_squad(train_file, _spec(tiny_encoder), is_training=False, cache_dir=str(cache))
    assert not stale.exists()  # a writer killed long ago
    assert fresh.exists()      # may belong to a writer still running
    assert not [n for n in os.listdir(cache) if n.endswith(".tmp") and n != fresh.name]
