"""TFLite Task Library metadata for span-labeling QA models: writing it, and reading it back.

The Task Library's ``BertQuestionAnswerer`` finds everything it needs in the metadata:
a BertTokenizer input process unit with the vocabulary packed into the file, three input
tensors named ``ids`` / ``mask`` / ``segment_ids`` and two outputs named ``end_logits`` /
``start_logits`` (matched by these metadata names, not by position). We write that with
tflite-support's metadata writers (tflite-support 0.4.4 ships no question-answerer writer,
so the pieces are assembled from ``metadata_info``, as its ``bert_nl_classifier`` writer
does), plus name, version, description, author and licence.

The metadata schema's BertTokenizerOptions has no casing field (the Task Library always
lower-cases ASCII). So that ``bertqa predict`` can run from the .tflite alone, the
tokenizer casing and the windowing parameters also go into a subgraph ``CustomMetadata``
entry named ``bert_qa`` (JSON), which the Task Library ignores.
"""
from __future__ import annotations

import dataclasses
import json
import os
import struct
import tempfile
from typing import Dict, List, Mapping, Optional, Sequence, Union

from bert_qa import _env  # noqa: F401
from bert_qa.errors import InputError

# Model Maker's tensor names (what the TFLite converter produces from our SavedModel).
TFLITE_INPUT_NAME = {
    "ids": "serving_default_input_word_ids:0",
    "mask": "serving_default_input_mask:0",
    "segment_ids": "serving_default_input_type_ids:0",
}
TFLITE_OUTPUT_NAME = {
    "start_logits": "StatefulPartitionedCall:1",
    "end_logits": "StatefulPartitionedCall:0",
}
CUSTOM_METADATA_NAME = "bert_qa"
DEFAULT_DESCRIPTION = (
    "Answers questions from a passage: returns start and end logits over the WordPiece "
    "tokens of '[CLS] question [SEP] passage [SEP]'. Use it with the TensorFlow Lite Task "
    "Library's BertQuestionAnswerer.")
_OUTPUT_DESCRIPTIONS = {
    "start_logits": "Logits of each token being the first token of the answer span.",
    "end_logits": "Logits of each token being the last token of the answer span.",
}


class TfliteModelError(InputError):
    """A .tflite file that cannot be used: missing, not a TFLite model (corrupt or truncated),
    or without the QA metadata; the message names the file."""


@dataclasses.dataclass
class ModelInfo:
    """General model metadata shown by Android Studio and metadata viewers."""

    name: str = "BertQuestionAnswerer"
    version: str = "1"
    description: str = DEFAULT_DESCRIPTION
    author: str = ""
    license: str = "Apache-2.0"


@dataclasses.dataclass
class QaMetadata:
    """What a .tflite QA model says about itself."""

    info: ModelInfo
    vocab_bytes: bytes
    vocab_file_name: str
    input_names: List[str]  # metadata names in the model's input order
    output_names: List[str]  # metadata names in the model's output order
    options: Dict[str, object]  # our custom metadata: do_lower_case, query_len, doc_stride...

    @property
    def vocab(self) -> List[str]:
        """Tokens in id order (one per line, as FullTokenizer's load_vocab reads them)."""
        lines = self.vocab_bytes.decode("utf-8").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return [line.strip() for line in lines]

    @property
    def do_lower_case(self) -> bool:
        # The Task Library lower-cases unconditionally; files without our entry follow it.
        return bool(self.options.get("do_lower_case", True))

    def write_vocab(self, path: str) -> str:
        """Writes the packed vocabulary file back out, byte for byte."""
        with open(path, "wb") as f:
            f.write(self.vocab_bytes)
        return path


def add_metadata(model_buffer: bytes, vocab_file: str, do_lower_case: bool = True,
                 info: Optional[ModelInfo] = None,
                 input_name: Optional[Mapping[str, str]] = None,
                 output_name: Optional[Mapping[str, str]] = None,
                 options: Optional[Mapping[str, object]] = None) -> bytes:
    """``model_buffer`` with Task Library QA metadata and the vocabulary packed in.

    ``input_name`` / ``output_name`` map the metadata roles (ids, mask, segment_ids;
    start_logits, end_logits) to the model's tensor names; the defaults are Model Maker's.
    """
    import flatbuffers
    import tensorflow as tf
    from tensorflow_lite_support.metadata import metadata_schema_py_generated as md_fb
    from tensorflow_lite_support.metadata.python import metadata as md_lib
    from tensorflow_lite_support.metadata.python.metadata_writers import (
        metadata_info, metadata_writer, writer_utils)

    info = info or ModelInfo()
    input_name = dict(input_name or TFLITE_INPUT_NAME)
    output_name = dict(output_name or TFLITE_OUTPUT_NAME)
    model_buffer = bytearray(model_buffer)

    with tempfile.TemporaryDirectory() as tmp:
        # The file is packed under its base name; keep the conventional one.
        vocab_path = os.path.join(tmp, "vocab.txt")
        tf.io.gfile.copy(vocab_file, vocab_path, overwrite=True)  # local or gs:// vocab
        inputs = metadata_info.BertInputTensorsMd(
            model_buffer, input_name["ids"], input_name["mask"], input_name["segment_ids"],
            tokenizer_md=metadata_info.BertTokenizerMd(vocab_path))

        model_outputs = writer_utils.get_output_tensor_names(model_buffer)
        if sorted(model_outputs) != sorted(output_name.values()):
            raise ValueError(f"Model outputs {model_outputs} do not match output names {output_name}")
        role_of = {tensor: role for role, tensor in output_name.items()}
        output_metadata = [
            metadata_info.TensorMd(name=role_of[t], description=_OUTPUT_DESCRIPTIONS[role_of[t]],
                                   tensor_name=t).create_metadata()
            for t in model_outputs]

        general = metadata_info.GeneralMd(name=info.name, version=info.version,
                                          description=info.description,
                                          author=info.author or None, licenses=info.license)
        # Assembled as MetadataWriter.create_from_metadata does, plus our custom entry
        # (the writers have no parameter for custom metadata).
        subgraph = md_fb.SubGraphMetadataT()
        subgraph.inputTensorMetadata = inputs.create_input_tesnor_metadata()
        subgraph.outputTensorMetadata = output_metadata
        subgraph.inputProcessUnits = inputs.create_input_process_unit_metadata()
        custom = md_fb.CustomMetadataT()
        custom.name = CUSTOM_METADATA_NAME
        custom.data = list(json.dumps({"do_lower_case": bool(do_lower_case),
                                       **dict(options or {})}, sort_keys=True).encode("utf-8"))
        subgraph.customMetadata = [custom]
        model_md = general.create_metadata()
        model_md.subgraphMetadata = [subgraph]
        builder = flatbuffers.Builder(0)
        builder.Finish(model_md.Pack(builder), md_lib.MetadataPopulator.METADATA_FILE_IDENTIFIER)
        writer = metadata_writer.MetadataWriter(model_buffer, builder.Output(),
                                                inputs.get_tokenizer_associated_files())
        return with_fixed_zip_times(bytes(writer.populate()))


# 1980-01-01 00:00:00, the earliest MS-DOS date a zip entry can carry.
_ZIP_TIME, _ZIP_DATE = 0, (0 << 9) | (1 << 5) | 1


def with_fixed_zip_times(model_buffer: bytes) -> bytes:
    """The populated model with its packed files' zip timestamps set to 1980-01-01.

    tflite-support packs the vocabulary with ``ZipFile.writestr`` and the time of packing, so
    two exports of the same weights differed in 4 bytes; with a fixed time the .tflite is a
    function of the model alone (a repeated seeded run pushes a byte-identical file). Only the
    two time fields of each local header and central directory entry change: sizes, offsets
    and CRCs (over contents) stay valid.
    """
    import io
    import zipfile

    buffer = bytearray(model_buffer)
    with zipfile.ZipFile(io.BytesIO(model_buffer)) as archive:  # offsets made absolute by zipfile
        entries = archive.infolist()
        position = archive.start_dir
    for entry in entries:
        if buffer[entry.header_offset:entry.header_offset + 4] != b"PK\x03\x04":
            raise ValueError("unexpected zip layout in the populated TFLite model")
        struct.pack_into("<HH", buffer, entry.header_offset + 10, _ZIP_TIME, _ZIP_DATE)
    for _ in entries:
        if buffer[position:position + 4] != b"PK\x01\x02":
            raise ValueError("unexpected zip central directory in the populated TFLite model")
        struct.pack_into("<HH", buffer, position + 12, _ZIP_TIME, _ZIP_DATE)
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", buffer, position + 28)
        position += 46 + name_len + extra_len + comment_len
    return bytes(buffer)


def write_metadata(tflite_path: str, vocab_file: str, do_lower_case: bool = True,
                   info: Optional[ModelInfo] = None, **kwargs) -> str:
    """Adds QA metadata to the .tflite file in place; returns its path."""
    with open(tflite_path, "rb") as f:
        buffer = f.read()
    populated = add_metadata(buffer, vocab_file, do_lower_case, info, **kwargs)
    with open(tflite_path, "wb") as f:
        f.write(populated)
    return tflite_path


def metadata_json(model: Union[str, bytes]) -> str:
    """The populated metadata as JSON (what metadata viewers show)."""
    from tensorflow_lite_support.metadata.python import metadata as md_lib

    return md_lib.MetadataDisplayer.with_model_buffer(_read(model)).get_metadata_json()


def read_metadata(model: Union[str, bytes]) -> QaMetadata:
    """Vocabulary, tokenizer options and tensor roles from a .tflite file or buffer."""
    from tensorflow_lite_support.metadata import metadata_schema_py_generated as md_fb
    from tensorflow_lite_support.metadata.python import metadata as md_lib

    buffer = _read(model)
    label = _label(model)
    if not buffer:
        raise TfliteModelError(f"{label}: the file is empty, not a TFLite model")
    try:
        displayer = md_lib.MetadataDisplayer.with_model_buffer(buffer)
    except ValueError as err:
        raise TfliteModelError(f"{label} has no TFLite metadata ({err}); export it with "
                               "`bertqa export` or bert_qa.export.write_metadata") from err
    except (struct.error, IndexError) as err:  # the flatbuffer's offsets point outside the file
        raise TfliteModelError(f"{label}: not a valid TFLite model (corrupt or truncated: {err})") from err
    try:
        model_md = md_fb.ModelMetadataT.InitFromObj(
            md_fb.ModelMetadata.GetRootAsModelMetadata(displayer.get_metadata_buffer(), 0))
        if not model_md.subgraphMetadata:
            raise TfliteModelError(f"{label}: its TFLite metadata describes no subgraph (not QA "
                                   f"metadata); export it with `bertqa export`")
        subgraph = model_md.subgraphMetadata[0]
        vocab_name = _bert_vocab_name(subgraph, md_fb)
        input_names = [_text(t.name) for t in subgraph.inputTensorMetadata or []]
        output_names = [_text(t.name) for t in subgraph.outputTensorMetadata or []]
        custom_data = [bytes(c.data) for c in subgraph.customMetadata or []
                       if _text(c.name) == CUSTOM_METADATA_NAME]
        info = ModelInfo(name=_text(model_md.name), version=_text(model_md.version),
                         description=_text(model_md.description), author=_text(model_md.author),
                         license=_text(model_md.license))
    except (struct.error, IndexError, UnicodeDecodeError) as err:
        raise TfliteModelError(f"{label}: its TFLite metadata is damaged (corrupt or truncated "
                               f"file: {type(err).__name__}: {err})") from err
    if vocab_name is None:
        raise TfliteModelError(f"{label} has no BertTokenizer vocabulary in its metadata")
    try:
        vocab_bytes = bytes(displayer.get_associated_file_buffer(vocab_name))
    except ValueError as err:
        raise TfliteModelError(f"{label}: its metadata names the vocabulary {vocab_name!r} but the "
                               f"file packed with the model is missing or damaged (truncated "
                               f"file?): {err}") from err
    options: Dict[str, object] = {}
    for data in custom_data:
        try:
            options = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise TfliteModelError(f"{label}: its {CUSTOM_METADATA_NAME!r} custom metadata is not "
                                   f"JSON: {err}") from err
        if not isinstance(options, dict):
            raise TfliteModelError(f"{label}: its {CUSTOM_METADATA_NAME!r} custom metadata is not "
                                   f"a JSON object")
    return QaMetadata(info=info, vocab_bytes=vocab_bytes, vocab_file_name=vocab_name,
                      input_names=input_names, output_names=output_names, options=options)


def _bert_vocab_name(subgraph, md_fb) -> Optional[str]:
    for unit in subgraph.inputProcessUnits or []:
        if unit.optionsType == md_fb.ProcessUnitOptions.BertTokenizerOptions:
            for f in unit.options.vocabFile or []:
                return _text(f.name)
    return None


def _text(value) -> str:
    if value is None:
        return ""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _read(model: Union[str, bytes]) -> bytearray:
    if isinstance(model, (bytes, bytearray)):
        return bytearray(model)
    try:
        with open(model, "rb") as f:
            return bytearray(f.read())
    except FileNotFoundError:
        raise TfliteModelError(f"{model}: model file not found") from None
    except IsADirectoryError:
        raise TfliteModelError(f"{model}: is a directory, not a .tflite file") from None


def _label(model) -> str:
    return model if isinstance(model, str) else "model buffer"
