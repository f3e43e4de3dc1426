"""Building a ``bert_qa`` spec from plain component parameters, and recording it in a Model.

Components receive the spec as its class name plus JSON constructor arguments (plain
strings travel through every orchestrator); the trained Model carries the same record in
``spec.json`` so that exporters and evaluators rebuild the spec the model was trained with.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional

from components import artifacts

SPEC_FILE = "spec.json"
SPEC_NAMES = ("BertQaSpec", "MobileBertQaSpec")
# Constructor arguments that decide windowing, so features and model must agree on them.
WINDOWING_ARGS = ("seq_len", "query_len", "doc_stride", "do_lower_case")


DEFAULT_ENCODER = "default"


def resolve_encoder_uri(uri: str) -> str:
    """``"default"`` (or empty): the cached all-MiniLM-L6-v2 conversion, made on first use."""
    if uri in ("", DEFAULT_ENCODER):
        from bert_qa.pretrained import default_encoder_dir

        return default_encoder_dir()
    return uri


def make_spec(spec_name: str, spec_args: Dict[str, Any], model_dir: Optional[str] = None):
    import bert_qa

    if spec_name not in SPEC_NAMES:
        raise ValueError(f"spec must be one of {SPEC_NAMES}, not {spec_name!r}")
    args = dict(spec_args)
    if model_dir is not None:
        args["model_dir"] = model_dir
    return getattr(bert_qa, spec_name)(**args)


def check_features_match(spec_args: Dict[str, Any], features) -> None:
    """The features were windowed with the spec's parameters (else training is garbage)."""
    defaults = {"seq_len": 384, "query_len": 64, "doc_stride": 128, "do_lower_case": True}
    for name in WINDOWING_ARGS:
        want = int(spec_args.get(name, defaults[name]))
        got = features.get_int_custom_property(name)
        if got != want:
            raise ValueError(f"features were windowed with {name}={got} but the spec has {name}={want}")


def write_spec_record(directory: str, spec_name: str, spec_args: Dict[str, Any]) -> str:
    path = os.path.join(directory, SPEC_FILE)
    artifacts.write_json(path, {"spec": spec_name, "args": spec_args})
    return path


def read_spec_record(directory: str) -> Dict[str, Any]:
    return artifacts.read_json(os.path.join(directory, SPEC_FILE))


def spec_json(spec_name: str, spec_args: Dict[str, Any]) -> str:
    return json.dumps({"spec": spec_name, "args": spec_args}, sort_keys=True)
