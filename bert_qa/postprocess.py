"""Start/end logits -> answer texts: squad_lib's ``postprocess_output``, the same answers, faster.

Model Maker postprocesses with tf-models-official's ``squad_lib.postprocess_output``; on the
10,325 questions of ``benchmarks/postprocess.py`` it takes most of a minute, longer than the
predictions it processes. Its results are the reference (the benchmark and the tests assert
them identical: texts, probabilities, logits, order, null odds); what changes is how:

- the n best start and end positions come from one stable ``argsort`` (squad_lib sorts every
  logit in Python, twice per feature), and each start and each end is checked once, not once
  per (start, end) pair;
- ``get_final_text`` runs BERT's ``BasicTokenizer`` over the original words of every n-best
  span. That tokenizer works character by character and splits on whitespace, so tokenizing
  ``" ".join(words)`` gives the concatenation of each word's tokens: here each word of a
  question's context is tokenized once (memoized) and spans join their words' tokens.

Everything else (the sort of candidates, the softmax, the null-answer rule) is squad_lib's
arithmetic on the same Python floats, so the outputs are the same bits.
"""
from __future__ import annotations

import collections
import math
from typing import Dict, List, Sequence

import numpy as np
from official.nlp.tools import tokenization


def _best_indexes(logits: np.ndarray, n_best_size: int) -> np.ndarray:
    """squad_lib's ``sorted(enumerate(logits), key=logit, reverse=True)[:n]``: a stable sort
    (ties keep index order)."""
    return np.argsort(-logits, kind="stable")[:n_best_size]


def _softmax(scores: Sequence[float]) -> List[float]:
    """squad_lib's ``_compute_softmax``, operation for operation."""
    if not scores:
        return []
    max_score = max(scores)
    exp_scores = [math.exp(s - max_score) for s in scores]
    total = 0.0
    for x in exp_scores:
        total += x
    return [x / total for x in exp_scores]


def _final_text(pred_text: str, orig_text: str, tok_text: str) -> str:
    """squad_lib's ``get_final_text`` given ``tok_text`` (BasicTokenizer's tokens of
    ``orig_text``, space-joined). Its space-stripped position maps are only ever read at the
    two ends of the match, so those two positions are computed instead of whole maps."""
    start = tok_text.find(pred_text)
    if start == -1:
        return orig_text
    end = start + len(pred_text) - 1
    orig_ns_length = len(orig_text) - orig_text.count(" ")
    if orig_ns_length != len(tok_text) - tok_text.count(" "):
        return orig_text
    # A position maps only if it holds a non-space character.
    if end < 0 or tok_text[start] == " " or tok_text[end] == " ":
        return orig_text
    ns_start = start - tok_text[:start].count(" ")
    ns_end = end - tok_text[:end].count(" ")
    positions = [i for i, c in enumerate(orig_text) if c != " "]
    return orig_text[positions[ns_start]:positions[ns_end] + 1]


class _BasicTokens:
    """BasicTokenizer's tokens of single words, memoized for the whole call (words repeat)."""

    def __init__(self, do_lower_case: bool):
        self._tokenizer = tokenization.BasicTokenizer(do_lower_case=do_lower_case)
        self._lower = do_lower_case
        self._cache: Dict[str, str] = {}

    def __call__(self, word: str) -> str:
        found = self._cache.get(word)
        if found is None:
            if word.isascii() and word.isalnum():  # nothing to clean, split or strip
                found = word.lower() if self._lower else word
            else:
                found = " ".join(self._tokenizer.tokenize(word))
            self._cache[word] = found
        return found


def postprocess_output(all_examples, all_features, all_results, n_best_size: int, max_answer_length: int,
                       do_lower_case: bool, version_2_with_negative: bool = False,
                       null_score_diff_threshold: float = 0.0, verbose: bool = False):
    """``squad_lib.postprocess_output`` (without its xlnet format): (predictions, nbest, null odds)."""
    del verbose  # squad_lib only logs with it
    by_example: Dict[int, list] = collections.defaultdict(list)
    for feature in all_features:
        by_example[feature.example_index].append(feature)
    results = {r.unique_id: r for r in all_results}
    basic_tokens = _BasicTokens(do_lower_case)

    all_predictions = collections.OrderedDict()
    all_nbest_json = collections.OrderedDict()
    scores_diff_json = collections.OrderedDict()
    for example_index, example in enumerate(all_examples):
        features = by_example[example_index]
        candidates = []  # (score, order, feature_index, start, end, start_logit, end_logit)
        score_null, min_null_feature, null_start, null_end = 1000000, 0, 0, 0
        for feature_index, feature in enumerate(features):
            result = results.get(feature.unique_id)
            if result is None:
                continue
            start_list, end_list = result.start_logits, result.end_logits
            if version_2_with_negative:
                feature_null = start_list[0] + end_list[0]
                if feature_null < score_null:
                    score_null, min_null_feature = feature_null, feature_index
                    null_start, null_end = start_list[0], end_list[0]
            # squad_lib's span checks, once per start and once per end instead of once per pair.
            n_tokens, to_orig = len(feature.tokens), feature.token_to_orig_map
            max_context = feature.token_is_max_context
            starts = _best_indexes(np.asarray(start_list, np.float64), n_best_size).tolist()
            ends = _best_indexes(np.asarray(end_list, np.float64), n_best_size).tolist()
            ends_ok = [(e, e < n_tokens and e in to_orig) for e in ends]
            for s in starts:
                if s >= n_tokens or s not in to_orig or not max_context.get(s):
                    continue
                for e, ok in ends_ok:
                    if not ok or e < s or e - s + 1 > max_answer_length:
                        continue
                    candidates.append((start_list[s] + end_list[e], len(candidates), feature_index, s, e,
                                       start_list[s], end_list[e]))
        if version_2_with_negative:
            candidates.append((null_start + null_end, len(candidates), min_null_feature, 0, 0,
                               null_start, null_end))
        # squad_lib: sorted(key=start+end, reverse=True), which is stable.
        candidates.sort(key=lambda c: (-c[0], c[1]))

        seen, nbest = set(), []
        for _, _, feature_index, s, e, start_logit, end_logit in candidates:
            if len(nbest) >= n_best_size:
                break
            feature = features[feature_index]
            if s > 0:
                tok_text = " ".join(feature.tokens[s:e + 1]).replace(" ##", "").replace("##", "")
                tok_text = " ".join(tok_text.strip().split())
                first, last = feature.token_to_orig_map[s], feature.token_to_orig_map[e]
                orig_text = " ".join(example.doc_tokens[first:last + 1])
                basic = " ".join(t for t in map(basic_tokens, example.doc_tokens[first:last + 1]) if t)
                final_text = _final_text(tok_text, orig_text, basic)
                if final_text in seen:
                    continue
                seen.add(final_text)
            else:
                final_text = ""
                seen.add(final_text)
            nbest.append((final_text, start_logit, end_logit))
        if version_2_with_negative and "" not in seen:
            nbest.append(("", null_start, null_end))
        if not nbest:
            nbest.append(("empty", 0.0, 0.0))

        probs = _softmax([start + end for _, start, end in nbest])
        nbest_json = []
        for (text, start, end), prob in zip(nbest, probs):
            entry = collections.OrderedDict()
            entry["text"], entry["probability"] = text, prob
            entry["start_logit"], entry["end_logit"] = start, end
            nbest_json.append(entry)
        best_non_null = next(((text, start, end) for text, start, end in nbest if text), None)
        if not version_2_with_negative:
            all_predictions[example.qas_id] = nbest_json[0]["text"]
        elif best_non_null is not None:
            score_diff = score_null - best_non_null[1] - best_non_null[2]
            scores_diff_json[example.qas_id] = score_diff
            all_predictions[example.qas_id] = "" if score_diff > null_score_diff_threshold else best_non_null[0]
        else:
            scores_diff_json[example.qas_id] = score_null
            all_predictions[example.qas_id] = ""
        all_nbest_json[example.qas_id] = nbest_json
    return all_predictions, all_nbest_json, scores_diff_json
