"""Representative features for int8 calibration, drawn from a SQuAD file.

Full-integer quantization fixes every activation's range from samples; they should be what
the model sees in use, i.e. windowed training questions, not random ids.
"""
from __future__ import annotations

from typing import Dict, Optional

from bert_qa import _env  # noqa: F401


def features_from_squad(path: str, vocab_file: str, do_lower_case: bool, seq_len: int,
                        query_len: int, doc_stride: int, max_features: Optional[int] = 100) -> Dict[str, "object"]:
    """``{input_word_ids, input_mask, input_type_ids}`` int32 arrays [n, seq_len].

    Questions are taken in file order and windowed as for prediction (every window, no
    answer needed), stopping once ``max_features`` windows exist.
    """
    import numpy as np

    from bert_qa import squad_data, windowing
    from bert_qa.tokenization import CachedFullTokenizer

    tokenizer = CachedFullTokenizer(vocab_file, do_lower_case)
    examples, _ = squad_data.to_squad_examples(squad_data.read_questions(path), is_training=False)
    features = []

    class _Enough(Exception):
        pass

    def collect(feature, is_padding=False):
        features.append(feature)
        if max_features is not None and len(features) >= max_features:
            raise _Enough

    try:
        windowing.convert_examples_to_features(
            examples, tokenizer, max_seq_length=seq_len, doc_stride=doc_stride,
            max_query_length=query_len, is_training=False, output_fn=collect, pad_to_batch=False)
    except _Enough:
        pass
    if not features:
        from bert_qa.errors import InputError

        raise InputError(f"{path}: no questions to calibrate int8 with")
    return {
        "input_word_ids": np.array([f.input_ids for f in features], np.int32),
        "input_mask": np.array([f.input_mask for f in features], np.int32),
        "input_type_ids": np.array([f.segment_ids for f in features], np.int32),
    }
