"""Running a span model's .tflite file with the LiteRT interpreter (Model Maker's ``LiteRunner``).

``run`` takes a batch of features keyed ``input_word_ids`` / ``input_mask`` /
``input_type_ids`` and returns ``[start_logits, end_logits]`` as float32 arrays
[batch, seq_len]. The interpreter is resized to the batch (the converted models have a
dynamic batch dimension) and only re-allocated when the batch size changes. Quantized
input/output tensors are (de)quantized with their scale and zero point, as Model Maker did.
"""
from __future__ import annotations

import os
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Union

from bert_qa import _env  # noqa: F401
import numpy as np

from bert_qa.export.metadata import TFLITE_OUTPUT_NAME, TfliteModelError
from bert_qa.export.quantization import FEATURE_NAMES

_NO_QUANTIZATION = (0.0, 0)
_START_KEYS = ("start_logits", "start_positions")
_END_KEYS = ("end_logits", "end_positions")


class LiteRunner:
    """A LiteRT interpreter over a QA .tflite file with the inputs and outputs in model order."""

    def __init__(self, tflite_path: str,
                 reorder_input_details: Optional[Callable] = None,
                 reorder_output_details: Optional[Callable] = None,
                 num_threads: Optional[int] = None, interpreter_class: Optional[Callable] = None):
        self.tflite_path = tflite_path
        self.interpreter = open_interpreter(tflite_path, num_threads, interpreter_class)
        self.interpreter.allocate_tensors()
        inputs = self.interpreter.get_input_details()
        outputs = self.interpreter.get_output_details()
        try:
            self.input_details = list((reorder_input_details or default_input_order)(inputs))
            if reorder_output_details is not None:
                self.output_details = list(reorder_output_details(outputs))
            else:
                self.output_details = default_output_order(self.interpreter, outputs)
        except ValueError as err:
            raise TfliteModelError(f"{tflite_path}: not a QA span model: {err}") from err
        self.seq_len = int(self.input_details[0]["shape"][1])
        self._batch = int(self.input_details[0]["shape"][0])

    def run(self, features: Union[Mapping[str, np.ndarray], Sequence[np.ndarray]]) -> List[np.ndarray]:
        """[start_logits, end_logits] for features of shape [batch, seq_len] (or [seq_len])."""
        arrays = self._ordered_inputs(features)
        single = arrays[0].ndim == 1
        if single:
            arrays = [a[None, :] for a in arrays]
        batch = arrays[0].shape[0]
        if batch != self._batch:
            for detail, array in zip(self.input_details, arrays):
                self.interpreter.resize_tensor_input(detail["index"], list(array.shape))
            self.interpreter.allocate_tensors()
            self._batch = batch
        for detail, array in zip(self.input_details, arrays):
            self.interpreter.set_tensor(detail["index"], _quantize(array, detail))
        self.interpreter.invoke()
        outputs = [_dequantize(self.interpreter.get_tensor(d["index"]), d) for d in self.output_details]
        return [o[0] for o in outputs] if single else outputs

    def _ordered_inputs(self, features) -> List[np.ndarray]:
        if isinstance(features, Mapping):
            ordered = []
            for detail in self.input_details:
                matches = [k for k in features if k in detail["name"]]
                if not matches:
                    raise ValueError(f"No feature for TFLite input {detail['name']!r} among "
                                     f"{sorted(features)}")
                ordered.append(np.asarray(features[max(matches, key=len)]))
            return ordered
        return [np.asarray(f) for f in features]


def open_interpreter(tflite_path: str, num_threads: Optional[int] = None,
                     interpreter_class: Optional[Callable] = None):
    """The LiteRT interpreter of a .tflite file; a missing or corrupt/truncated file is a
    ``TfliteModelError`` naming it (the interpreter verifies the flatbuffer on load)."""
    if interpreter_class is None:
        from ai_edge_litert.interpreter import Interpreter as interpreter_class
    if not os.path.exists(tflite_path):
        raise TfliteModelError(f"{tflite_path}: model file not found")
    if os.path.isdir(tflite_path):
        raise TfliteModelError(f"{tflite_path}: is a directory, not a .tflite file")
    try:
        return interpreter_class(model_path=tflite_path, num_threads=num_threads)
    except ValueError as err:  # "not a valid Flatbuffer buffer", "mmap of size 0", ...
        raise TfliteModelError(f"{tflite_path}: not a valid TFLite model (corrupt or truncated "
                               f"file?): {' '.join(str(err).split())}") from err


def default_input_order(input_details: Sequence[dict]) -> List[dict]:
    """Input details as (word ids, mask, type ids), matched by the serving input names."""
    by_name = {}
    for name in FEATURE_NAMES:
        found = [d for d in input_details if name in d["name"]]
        if len(found) != 1:
            raise ValueError(f"Expected one TFLite input named like {name!r}; inputs are "
                             f"{[d['name'] for d in input_details]}")
        by_name[name] = found[0]
    return [by_name[n] for n in FEATURE_NAMES]


def default_output_order(interpreter, output_details: Sequence[dict]) -> List[dict]:
    """Output details as (start, end): by signature output name, else Model Maker's names."""
    by_index = {d["index"]: d for d in output_details}
    try:
        signature = interpreter.get_signature_runner().get_output_details()
    except (ValueError, KeyError, RuntimeError):
        signature = {}
    start = [v["index"] for k, v in signature.items() if k in _START_KEYS]
    end = [v["index"] for k, v in signature.items() if k in _END_KEYS]
    if len(start) == 1 and len(end) == 1:
        return [by_index[start[0]], by_index[end[0]]]
    by_name = {d["name"]: d for d in output_details}
    try:
        return [by_name[TFLITE_OUTPUT_NAME["start_logits"]], by_name[TFLITE_OUTPUT_NAME["end_logits"]]]
    except KeyError:
        raise ValueError(f"Cannot tell start from end logits among TFLite outputs "
                         f"{sorted(by_name)} (signature outputs {sorted(signature)})") from None


def _quantize(array: np.ndarray, detail: dict) -> np.ndarray:
    if tuple(detail["quantization"]) != _NO_QUANTIZATION:
        scale, zero_point = detail["quantization"]
        array = np.round(array / scale + zero_point)
    return np.ascontiguousarray(array, dtype=detail["dtype"])


def _dequantize(array: np.ndarray, detail: dict) -> np.ndarray:
    if tuple(detail["quantization"]) != _NO_QUANTIZATION:
        scale, zero_point = detail["quantization"]
        return (array.astype(np.float32) - zero_point) * scale
    return np.array(array, dtype=np.float32)  # a copy: the interpreter reuses its buffers


def describe(tflite_path: str) -> Dict[str, list]:
    """Names, shapes (signature), dtypes and quantization of a model's inputs and outputs."""
    interpreter = open_interpreter(tflite_path)

    def rows(details):
        return [dict(name=d["name"], shape=[int(x) for x in d["shape_signature"]],
                     dtype=np.dtype(d["dtype"]).name, quantization=tuple(d["quantization"]))
                for d in details]

    return {"inputs": rows(interpreter.get_input_details()),
            "outputs": rows(interpreter.get_output_details()),
            "signatures": interpreter.get_signature_list()}
