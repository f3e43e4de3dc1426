"""Encoders in TF Hub format: exporting our own, and loading any (TF2 or TF1) as a layer.

TF2 TF Hub BERT encoders are SavedModels called with a dict (input_word_ids, input_mask,
input_type_ids) that return a dict (pooled_output, sequence_output, ...), and carry their
tokenizer as ``vocab_file`` (an Asset) and ``do_lower_case`` (a Variable). We export in the
same layout (as ``official.nlp.tools.export_tfhub_lib`` does) so that our own encoders,
test fixtures and converted Hugging Face checkpoints load exactly like hub.dev ones.

TF1 Hub-format modules (MobileBERT's default) cannot be fine-tuned through
``hub.KerasLayer`` under tensorflow_hub 0.16, so ``TF1SignatureLayer`` calls the module's
signature and exposes the loaded variables as its trainable weights (Model Maker's
``hub_loader.HubKerasLayerV1V2`` did the same).
"""
from __future__ import annotations

import dataclasses
import hashlib
import http.client
import logging
import os
import socket
import ssl
import tarfile
import urllib.error
import zlib
from typing import Dict, Optional, Tuple

import numpy as np

from bert_qa import _env  # noqa: F401
from bert_qa.errors import InputError
import tensorflow as tf
import tf_keras
import tensorflow_hub as hub
from official.nlp.modeling import networks

log = logging.getLogger(__name__)

ENCODER_INPUTS = ("input_word_ids", "input_mask", "input_type_ids")
TF1_INPUTS = ("input_ids", "input_mask", "segment_ids")


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    """BERT encoder shape (Hugging Face ``config.json`` names where they exist)."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12


def build_bert_encoder(config: EncoderConfig) -> tf_keras.Model:
    """A Model Garden ``BertEncoder`` with dict outputs, as TF Hub encoders give."""
    if abs(config.layer_norm_eps - 1e-12) > 1e-15:
        raise ValueError(f"BertEncoder's layer norms use epsilon 1e-12, not {config.layer_norm_eps}")
    encoder = networks.BertEncoder(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        num_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        inner_dim=config.intermediate_size,
        inner_activation=activation(config.hidden_act),
        max_sequence_length=config.max_position_embeddings,
        type_vocab_size=config.type_vocab_size,
        output_dropout=config.hidden_dropout_prob,
        attention_dropout=config.attention_probs_dropout_prob,
        initializer=tf_keras.initializers.TruncatedNormal(stddev=config.initializer_range),
        dict_outputs=True,
    )
    # Model Garden's TransformerEncoderBlock drops the attention sublayer's output (after its
    # projection, before the residual add) at the *attention* rate; BERT (Google's
    # modeling.py, Hugging Face's BertSelfOutput) uses the hidden rate there. Equal in most
    # checkpoints (0.1 and 0.1), not in all. Dropout reads its rate at call time, so setting
    # it on the built blocks is what every later trace (export, training) uses.
    for block in encoder.transformer_layers:
        block._attention_dropout.rate = config.hidden_dropout_prob
    return encoder


def activation(name: str):
    """The Keras activation for a Hugging Face ``hidden_act``; ValueError if unknown."""
    # Hugging Face "gelu" is the exact (erf) GELU; "gelu_new"/"gelu_pytorch_tanh" the tanh one.
    if name == "gelu":
        return lambda x: tf_keras.activations.gelu(x, approximate=False)
    if name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        return lambda x: tf_keras.activations.gelu(x, approximate=True)
    return tf_keras.activations.get(name)


# Graph-level seed the exported dropout ops are traced under (see ``export_encoder``).
EXPORT_DROPOUT_SEED = 1234


# The encoder's shape, written beside the SavedModel by ``export_encoder`` when it is known:
# what rebuilding it natively (mixed precision) needs and the SavedModel's graph does not say.
ENCODER_CONFIG_FILE = "bert_encoder_config.json"
# Written by ``checkpoint_import`` (kept in sync there); its "config" is Hugging Face's config.json.
_IMPORT_PROVENANCE_FILE = "bert_qa_import.json"


def encoder_config_of(path: str) -> Optional[EncoderConfig]:
    """The ``EncoderConfig`` an encoder directory records, or None (TF Hub downloads record none)."""
    import json

    names = set(EncoderConfig.__dataclass_fields__)
    for file_name, key in ((ENCODER_CONFIG_FILE, None), (_IMPORT_PROVENANCE_FILE, "config")):
        candidate = os.path.join(path, file_name)
        if not tf.io.gfile.exists(candidate):
            continue
        try:
            with tf.io.gfile.GFile(candidate) as f:
                values = json.load(f)
            values = values[key] if key else values
            return EncoderConfig(**{k: v for k, v in values.items() if k in names})
        except (ValueError, KeyError, TypeError) as err:
            raise CorruptEncoderError(f"{candidate}: not a readable encoder config ({err})") from None
    return None


def export_encoder(encoder: tf_keras.Model, export_dir: str, vocab_file: str,
                   do_lower_case: bool, config: Optional[EncoderConfig] = None) -> str:
    """Saves ``encoder`` as a TF2 TF Hub-format SavedModel with its vocab attached.

    Keras dropout without a seed becomes a stateful random op whose seed attributes are taken
    from the graph seed at trace time; traced with none, they are (0, 0) and the restored op
    draws fresh masks in every process, so fine-tuning could never be repeated. Tracing under
    a fixed graph seed bakes non-zero seeds in: a loaded encoder then gives the same dropout
    sequence in every process (masks still change from step to step).
    """
    if isinstance(encoder.inputs, dict):
        inputs = encoder.inputs
    else:
        inputs = {x.name.split(":")[0]: x for x in encoder.inputs}
    outputs = dict(encoder(inputs))
    outputs["default"] = outputs["pooled_output"]
    core_model = tf_keras.Model(inputs=inputs, outputs=outputs)
    core_model.vocab_file = tf.saved_model.Asset(vocab_file)
    core_model.do_lower_case = tf.Variable(do_lower_case, trainable=False)
    tf.random.set_seed(EXPORT_DROPOUT_SEED)
    try:
        core_model.save(export_dir, include_optimizer=False, save_format="tf")
    finally:
        tf.random.set_seed(None)  # leave the caller's random state unseeded, as it most likely was
    if config is not None:
        import json

        with tf.io.gfile.GFile(os.path.join(export_dir, ENCODER_CONFIG_FILE), "w") as f:
            json.dump(dataclasses.asdict(config), f, indent=1, sort_keys=True)
    return export_dir


class EncoderError(InputError):
    """An encoder (TF Hub handle or directory) that cannot be used; names the handle or path."""


class EncoderNotFoundError(EncoderError, FileNotFoundError):
    """No encoder directory (or no vocabulary in it) where the uri says."""


class CorruptEncoderError(EncoderError):
    """The encoder's files are there but cannot be read: not a SavedModel, a saved_model.pb
    that does not parse, truncated variables. Names the path."""


class HubHandleError(EncoderError, RuntimeError):
    """A TF Hub handle that cannot be resolved here; the subclasses say why."""


class HubDownloadError(HubHandleError):
    """Not cached and cannot be downloaded: no network, DNS failure, timeout, HTTP error."""


class HubHandleNotFoundError(HubHandleError):
    """The server answered that there is no such handle (HTTP 404 / 410)."""


class HubModuleCorruptError(HubHandleError, CorruptEncoderError):
    """What was downloaded (or is in the cache) is not a usable SavedModel / TF Hub module."""


# tensorflow_hub opens its URLs without a timeout: where DNS works but packets are dropped,
# resolving an uncached handle would block for minutes. The timeout bounds each socket
# operation (connect, one read), not a whole download, so large models still download.
HUB_SOCKET_TIMEOUT_S = float(os.environ.get("BERT_QA_HUB_TIMEOUT", "30"))

# Failures of the connection itself (urlopen wraps most in URLError; a read can raise the rest).
_NETWORK_ERRORS = (urllib.error.URLError, ConnectionError, TimeoutError, socket.gaierror,
                   socket.herror, ssl.SSLError, http.client.HTTPException)
# A download that is not a tar archive of a module (truncated, HTML error page, ...).
_ARCHIVE_ERRORS = (tarfile.TarError, EOFError, zlib.error)


def hub_cache_location(uri: str) -> str:
    """Where tensorflow_hub caches ``uri``: ``$TFHUB_CACHE_DIR/<sha1 of the handle>``."""
    from tensorflow_hub import resolver

    cache_dir = resolver.tfhub_cache_dir(use_temp=True)
    return os.path.join(cache_dir, hashlib.sha1(uri.encode("utf8")).hexdigest())


def resolve_uri(uri: str, timeout: Optional[float] = None) -> str:
    """A local directory for ``uri``: itself if local, else TF Hub's cache (or a download).

    Failures say which they are: ``EncoderNotFoundError`` (no such directory),
    ``HubDownloadError`` (not cached and no network / DNS / HTTP error: "cannot download"),
    ``HubHandleNotFoundError`` (the server has no such handle), ``HubModuleCorruptError`` (the
    download or the cached copy is not a usable module; names the cache path). Anything else
    (e.g. a TF Hub cache directory that cannot be written) propagates as raised.
    """
    if tf.io.gfile.isdir(uri):
        return uri
    if "://" not in uri:
        raise EncoderNotFoundError(f"Encoder directory not found: {uri!r}")
    previous_timeout = socket.getdefaulttimeout()
    if timeout is None:
        timeout = previous_timeout if previous_timeout is not None else HUB_SOCKET_TIMEOUT_S
    socket.setdefaulttimeout(timeout)
    try:
        path = hub.resolve(uri)
    except urllib.error.HTTPError as err:  # before URLError, its base class
        if err.code in (404, 410):
            raise HubHandleNotFoundError(
                f"TF Hub handle {uri!r} does not exist: the server answered HTTP {err.code} "
                f"{err.reason}. Check the handle (publisher, model name, version), or pass "
                f"uri=<local directory of the SavedModel>.") from err
        raise HubDownloadError(_cannot_download(uri, f"HTTP {err.code} {err.reason}")) from err
    except _NETWORK_ERRORS as err:
        raise HubDownloadError(_cannot_download(uri, f"{type(err).__name__}: {err}")) from err
    except _ARCHIVE_ERRORS as err:
        raise HubModuleCorruptError(_corrupt_download(uri, err)) from err
    except OSError as err:
        # tensorflow_hub turns an unreadable archive into IOError("... does not appear to be a
        # valid module."), raised while handling the tarfile error.
        if isinstance(err.__context__, _ARCHIVE_ERRORS):
            raise HubModuleCorruptError(_corrupt_download(uri, err)) from err
        if not uri.startswith(("http://", "https://")) and not tf.io.gfile.exists(uri):
            raise EncoderNotFoundError(f"Encoder not found: {uri!r} ({err})") from err
        raise
    except tf.errors.UnimplementedError as err:  # "File system scheme 'x' not implemented"
        raise EncoderError(f"Encoder {uri!r}: {err.message}; give a TF Hub handle (https://...) or "
                           f"a directory (local, gs://, ...)") from err
    except ValueError as err:
        if _raised_in(err, os.path.join("tensorflow_hub", "file_utils.py")):
            # "Unexpected object type in tar archive", "Relative path ... is invalid"
            raise HubModuleCorruptError(_corrupt_download(uri, err)) from err
        raise
    finally:
        socket.setdefaulttimeout(previous_timeout)
    if path != uri:  # a download, or TF Hub's cached copy of one
        try:
            check_saved_model_files(path)
        except CorruptEncoderError as err:
            raise HubModuleCorruptError(f"TF Hub handle {uri!r}: the downloaded module is not "
                                        f"usable: {err}") from err
    return path


def _cannot_download(uri: str, reason: str) -> str:
    cache = os.environ.get("TFHUB_CACHE_DIR", "<system temp>/tfhub_modules")
    return (f"Cannot resolve TF Hub handle {uri!r}: {reason}\n"
            f"It is not in the TF Hub cache (looked for {hub_cache_location(uri)}) and this "
            f"machine cannot download it. Either pre-download it where the network is "
            f"reachable (TFHUB_CACHE_DIR={cache} python -c \"import tensorflow_hub as hub; "
            f"hub.resolve('{uri}')\") and copy the cache here with TFHUB_CACHE_DIR set, or "
            f"pass uri=<local directory of the SavedModel> (see `bertqa import-checkpoint` "
            f"to convert a Hugging Face BERT checkpoint).")


def _corrupt_download(uri: str, err: BaseException) -> str:
    return (f"TF Hub handle {uri!r}: the download is not a TF Hub module archive (corrupt, "
            f"truncated or unsupported: {type(err).__name__}: {err}); nothing was cached at "
            f"{hub_cache_location(uri)}. Retry, or pass uri=<local directory of the SavedModel>.")


def _raised_in(err: BaseException, filename_suffix: str) -> bool:
    tb = err.__traceback__
    last = None
    while tb is not None:
        last, tb = tb, tb.tb_next
    return last is not None and last.tb_frame.f_code.co_filename.endswith(filename_suffix)


def check_saved_model_files(path: str) -> None:
    """Refuses, naming the file, a module directory that is not a SavedModel or TF Hub module or
    whose saved_model.pb does not parse (``CorruptEncoderError``)."""
    from tensorflow.python.saved_model import loader_impl

    names = ("saved_model.pb", "saved_model.pbtxt", "tfhub_module.pb")
    if not any(tf.io.gfile.exists(os.path.join(path, name)) for name in names):
        raise CorruptEncoderError(f"{path} is not a SavedModel or TF Hub module (no "
                                  f"saved_model.pb){_cache_hint(path)}")
    if is_tf1_hub_module(path):
        return
    try:
        loader_impl.parse_saved_model(path)
    except OSError as err:  # "Cannot parse file ...: Error parsing message"
        raise CorruptEncoderError(f"{os.path.join(path, 'saved_model.pb')} is corrupt or truncated "
                                  f"(it does not parse as a SavedModel){_cache_hint(path)}") from err


def _cache_hint(path: str) -> str:
    from tensorflow_hub import resolver

    cache_dir = os.path.abspath(resolver.tfhub_cache_dir(use_temp=True))
    if os.path.dirname(os.path.abspath(path)) == cache_dir:
        return f"; it is TF Hub's cached copy of a download: delete {path} to download it again"
    return ""


def is_tf1_hub_module(path: str) -> bool:
    return tf.io.gfile.exists(os.path.join(path, "tfhub_module.pb"))


def find_vocab(path: str) -> Tuple[str, Optional[bool]]:
    """(vocab file, do_lower_case or None if the module does not say) of a local module.

    A TF2 module's ``vocab_file`` asset wins; ``assets/vocab.txt`` is the fallback for TF1
    modules and SavedModels without that asset. A SavedModel that cannot be read (corrupt or
    truncated saved_model.pb or variables) is a ``CorruptEncoderError`` naming it, never a
    silent fallback to whatever ``assets/vocab.txt`` holds.
    """
    candidate = os.path.join(path, "assets", "vocab.txt")
    if not is_tf1_hub_module(path):
        check_saved_model_files(path)
        recorded = _recorded_vocab(path)
        if recorded is not None:
            return recorded
        try:
            loaded = tf.saved_model.load(path)
        except (OSError, IndexError, tf.errors.DataLossError) as err:
            # IndexError: "Read less bytes than requested" from truncated variables
            raise CorruptEncoderError(f"{path}: the SavedModel cannot be loaded (corrupt or "
                                      f"truncated files?): {type(err).__name__}: {err}"
                                      f"{_cache_hint(path)}") from err
        except ValueError as err:  # a valid SavedModel that is not a TF2 object graph
            if not tf.io.gfile.exists(candidate):
                raise EncoderNotFoundError(
                    f"No vocabulary in encoder {path!r}: it cannot be loaded as a TF2 SavedModel "
                    f"to read a `vocab_file` asset ({err}) and has no assets/vocab.txt") from err
            log.warning("%s: cannot load it as a TF2 SavedModel to read its vocab_file asset (%s); "
                        "using %s", path, err, candidate)
            loaded = None
        if loaded is not None and hasattr(loaded, "vocab_file"):
            lower = bool(loaded.do_lower_case.numpy()) if hasattr(loaded, "do_lower_case") else None
            return loaded.vocab_file.asset_path.numpy().decode("utf-8"), lower
    if tf.io.gfile.exists(candidate):
        return candidate, None
    raise EncoderNotFoundError(
        f"No vocabulary in encoder {path!r}: expected a `vocab_file` asset or assets/vocab.txt")


def _recorded_vocab(path: str) -> Optional[Tuple[str, Optional[bool]]]:
    """``find_vocab``'s answer read from the files, without loading the SavedModel: the root
    object's ``vocab_file`` asset from saved_model.pb's object graph, and its ``do_lower_case``
    variable from the variables checkpoint. ``tf.saved_model.load`` restores every function
    to read those two (2.5 s for all-MiniLM-L6-v2 on 2 cores, paid by each spec built), this
    takes a fraction of a second. Every tensor of the checkpoint is read, so truncated variables
    are refused here as the full load refused them. None when the root records no such asset
    (a SavedModel without a TF2 object graph, or another layout): the caller loads it then."""
    from tensorflow.python.saved_model import loader_impl

    meta_graph = loader_impl.parse_saved_model(path).meta_graphs[0]
    nodes = meta_graph.object_graph_def.nodes
    if not nodes:
        return None
    children = {child.local_name: nodes[child.node_id] for child in nodes[0].children}
    vocab_node, lower_node = children.get("vocab_file"), children.get("do_lower_case")
    if vocab_node is None or vocab_node.WhichOneof("kind") != "asset":
        return None
    vocab = os.path.join(path, "assets",
                         meta_graph.asset_file_def[vocab_node.asset.asset_file_def_index].filename)
    prefix = os.path.join(path, "variables", "variables")
    try:
        reader = tf.train.load_checkpoint(prefix)
        values = {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
    except (OSError, IndexError, ValueError, tf.errors.OpError) as err:
        raise CorruptEncoderError(f"{path}: the SavedModel cannot be loaded (corrupt or truncated "
                                  f"variables?): {type(err).__name__}: {err}{_cache_hint(path)}") from err
    if lower_node is None:
        return vocab, None
    key = "do_lower_case/.ATTRIBUTES/VARIABLE_VALUE"  # a child of the root: its checkpoint key
    if lower_node.WhichOneof("kind") != "variable" or key not in values:
        return None
    return vocab, bool(values[key])


def saved_variables(path: str) -> Dict[str, np.ndarray]:
    """Every variable of a TF2 SavedModel, by the name ``tf.saved_model.load`` gives it
    (``name:0``), read from its files without loading it.

    saved_model.pb's object graph names each variable node; the variables checkpoint's object
    graph has the same node ids (both come from one graph view when TensorFlow saves, which is
    how its loader restores them) and gives the node's checkpoint key. Loading the SavedModel
    restores every function as well: 2.5 s for all-MiniLM-L6-v2 on 2 cores, against 0.13 s
    here, paid by every model built natively.
    """
    from tensorflow.core.protobuf import trackable_object_graph_pb2
    from tensorflow.python.saved_model import loader_impl

    nodes = loader_impl.parse_saved_model(path).meta_graphs[0].object_graph_def.nodes
    reader = tf.train.load_checkpoint(os.path.join(path, "variables", "variables"))
    checkpoint_graph = trackable_object_graph_pb2.TrackableObjectGraph()
    checkpoint_graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    if len(checkpoint_graph.nodes) != len(nodes):
        raise ValueError(f"{path}: saved_model.pb's object graph has {len(nodes)} nodes, its variables "
                         f"checkpoint's {len(checkpoint_graph.nodes)}: not one SavedModel")
    weights = {}
    for node_id, node in enumerate(nodes):
        if node.WhichOneof("kind") == "variable":
            keys = [attribute.checkpoint_key for attribute in checkpoint_graph.nodes[node_id].attributes
                    if attribute.name == "VARIABLE_VALUE"]
            if len(keys) != 1:
                raise ValueError(f"{path}: variable {node.variable.name!r} has {len(keys)} values in its "
                                 f"variables checkpoint, not one")
            weights[f"{node.variable.name}:0"] = reader.get_tensor(keys[0])
    return weights


class TF1SignatureLayer(tf_keras.layers.Layer):
    """Calls a signature of a TF1 Hub-format module; its variables train with the model."""

    def __init__(self, path: str, signature: str = "tokens", trainable: bool = True, **kwargs):
        super().__init__(trainable=trainable, **kwargs)
        self._path = path
        self._signature_name = signature
        self._module = hub.load(path, tags=[])
        if signature not in self._module.signatures:
            raise ValueError(f"TF1 Hub module {path!r} has no {signature!r} signature; it has "
                             f"{sorted(self._module.signatures)}")
        self._fn = self._module.signatures[signature]
        variables = list(self._module.variables)
        # Track the module's variables as this layer's weights so that Keras trains,
        # saves and distributes them.
        self._module_variables = variables
        for v in variables:
            if trainable and v.trainable:
                self._trainable_weights.append(v)
            else:
                self._non_trainable_weights.append(v)

    def call(self, inputs: Dict[str, tf.Tensor]):
        args = {name: tf.cast(inputs[name], tf.int32) for name in TF1_INPUTS}
        return dict(self._fn(**args))

    def get_config(self):
        return {**super().get_config(), "path": self._path, "signature": self._signature_name}
