"""WordPiece tokenization identical to tf-models-official's ``FullTokenizer``.

Model Maker tokenizes with ``official.nlp.tools.tokenization.FullTokenizer``; any other
tokenizer (Hugging Face ``tokenizers`` included) differs from it on edge cases (Unicode
category tables, the 200-character word limit, control characters), and a one-token
difference changes features. So we keep FullTokenizer itself and make it fast by
memoising: SQuAD windowing tokenizes every whitespace-separated word of every context once
per question, and a corpus has far fewer distinct words than word occurrences. Because
FullTokenizer's output for a string depends only on that string, the memo is exact.
For pure-ASCII text, which is most of English SQuAD, the first tokenization of a string
also takes a fast path that implements FullTokenizer's rules for ASCII exactly (control
characters dropped, \t\n\r as spaces, every non-alphanumeric printable character its own
token, greedy longest-match WordPiece); everything else goes to FullTokenizer itself.
``tests/test_tokenization.py`` checks both paths against FullTokenizer on every word and
question of the shared real data.
"""
from __future__ import annotations

import os
import re
from typing import Dict, Iterable, List

from bert_qa import _env  # noqa: F401
from official.nlp.tools import tokenization as official_tokenization


# FullTokenizer on ASCII: chars 0-8, 11, 12, 14-31 and 127 are control characters (dropped);
# \t \n \r are whitespace; BERT treats every non-alphanumeric printable ASCII char as
# punctuation, so the pieces are alphanumeric runs and single other characters.
_ASCII_CLEAN = {c: None for c in list(range(0, 9)) + [11, 12] + list(range(14, 32)) + [127]}
_ASCII_CLEAN.update({9: 32, 10: 32, 13: 32})
_ASCII_PIECES = re.compile(r"[0-9A-Za-z]+|[^0-9A-Za-z ]")


class CachedFullTokenizer:
    """A ``FullTokenizer`` with a memo on ``tokenize`` and a fast id lookup."""

    def __init__(self, vocab_file: str, do_lower_case: bool = True, max_cache_entries: int = 2_000_000):
        self.vocab_file = os.fspath(vocab_file)
        self.do_lower_case = do_lower_case
        self._full = official_tokenization.FullTokenizer(self.vocab_file, do_lower_case)
        self.vocab: Dict[str, int] = self._full.vocab
        self.inv_vocab = self._full.inv_vocab
        self._memo: Dict[str, tuple] = {}
        self._piece_memo: Dict[str, tuple] = {}
        self._max_cache_entries = max_cache_entries
        wordpiece = self._full.wordpiece_tokenizer
        self._unk = wordpiece.unk_token
        self._max_chars = wordpiece.max_input_chars_per_word

    @property
    def basic_tokenizer(self):
        return self._full.basic_tokenizer

    @property
    def wordpiece_tokenizer(self):
        return self._full.wordpiece_tokenizer

    def tokenize_cached(self, text: str) -> tuple:
        """Returns the WordPiece tokens of ``text`` as a shared, immutable tuple."""
        pieces = self._memo.get(text)
        if pieces is None:
            pieces = self._tokenize_ascii(text) if text.isascii() else tuple(self._full.tokenize(text))
            if len(self._memo) >= self._max_cache_entries:
                self._memo.clear()
                self._piece_memo.clear()
            self._memo[text] = pieces
        return pieces

    def _tokenize_ascii(self, text: str) -> tuple:
        if text.isalnum():  # one alphanumeric word: a single WordPiece input
            piece = text.lower() if self.do_lower_case else text
            sub = self._piece_memo.get(piece)
            if sub is None:
                sub = self._piece_memo[piece] = self._wordpiece(piece)
            return sub
        text = text.translate(_ASCII_CLEAN)
        if self.do_lower_case:
            text = text.lower()
        out: List[str] = []
        for piece in _ASCII_PIECES.findall(text):
            sub = self._piece_memo.get(piece)
            if sub is None:
                sub = self._piece_memo[piece] = self._wordpiece(piece)
            out.extend(sub)
        return tuple(out)

    def _wordpiece(self, word: str) -> tuple:
        """Greedy longest-match-first WordPiece, as WordpieceTokenizer."""
        if len(word) > self._max_chars:
            return (self._unk,)
        vocab = self.vocab
        pieces = []
        start, n = 0, len(word)
        while start < n:
            end = n
            while start < end:
                sub = word[start:end] if start == 0 else "##" + word[start:end]
                if sub in vocab:
                    pieces.append(sub)
                    break
                end -= 1
            else:
                return (self._unk,)
            start = end
        return tuple(pieces)

    def tokenize(self, text: str) -> List[str]:
        return list(self.tokenize_cached(text))

    def convert_tokens_to_ids(self, tokens: Iterable[str]) -> List[int]:
        vocab = self.vocab
        return [vocab[t] for t in tokens]

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> List[str]:
        inv = self.inv_vocab
        return [inv[i] for i in ids]


def read_vocab(vocab_file: str) -> List[str]:
    """The vocabulary as a list in id order (what TFLite metadata embeds)."""
    vocab = official_tokenization.load_vocab(vocab_file)
    return [tok for tok, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
