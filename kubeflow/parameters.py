"""Runtime parameters of a compiled pipeline: what it declares, and command-line values typed.

Both submitters (Vertex, Kubeflow) check a submission's parameters against the compiled spec
before any request, so a typo fails here with the list of names, not on the server.
"""
from __future__ import annotations

import json
import math
from typing import Any, Dict, Optional

import yaml

_INTEGER, _DOUBLE, _STRING = "NUMBER_INTEGER", "NUMBER_DOUBLE", "STRING"
_BOOLEAN, _LIST, _STRUCT = "BOOLEAN", "LIST", "STRUCT"


def load_spec(path: str) -> dict:
    """The PipelineSpec of a compiled file: Vertex's PipelineJob JSON or Kubeflow's YAML."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.endswith((".yaml", ".yml")):
        document = yaml.safe_load(text)
    else:
        document = json.loads(text)
    return document.get("pipelineSpec", document)


def declared_parameters(spec: dict) -> dict:
    """The pipeline's runtime parameters: name -> declaration (``parameterType``,
    ``defaultValue``, ``isOptional``), from ``root.inputDefinitions.parameters``."""
    return (spec.get("root") or {}).get("inputDefinitions", {}).get("parameters", {}) or {}


def _refuse(name: str, kind: str, value: Any) -> ValueError:
    return ValueError(f"pipeline parameter {name} is {kind}; got {value!r}")


def _coerce(name: str, value: Any, parameter_type: Optional[str]) -> Any:
    """One value in the JSON type the API server checks for ``parameter_type``; strings from a
    command line are parsed, anything ambiguous (3.5 for an integer, "yes") is refused."""
    if parameter_type == _INTEGER:
        if isinstance(value, bool):
            raise _refuse(name, "an integer", value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise _refuse(name, "an integer", value)
    if parameter_type == _DOUBLE:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                pass
        if number is None or not math.isfinite(number):  # JSON has no NaN/inf to send
            raise _refuse(name, "a finite number", value)
        return number
    if parameter_type == _STRING:
        if not isinstance(value, str):
            raise _refuse(name, "a string", value)
        return value
    if parameter_type == _BOOLEAN:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise _refuse(name, "a boolean (true/false)", value)
    if parameter_type in (_LIST, _STRUCT):
        wanted = list if parameter_type == _LIST else dict
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        if not isinstance(value, wanted):
            raise _refuse(name, f"a JSON {'list' if wanted is list else 'object'}", value)
        return value
    raise ValueError(f"pipeline parameter {name} has type {parameter_type!r}, which cannot be set at submission")


def coerce_params(params: dict, declared: dict) -> dict:
    """``params`` checked against the declared runtime parameters and typed for the API.

    Unknown names are refused with the list of declared ones (a typo would otherwise surface
    as the server's "parameter(s) provided are not required by pipeline"); parameters without
    a default must be given, as the server also requires.
    """
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise ValueError(f"unknown pipeline parameter(s) {', '.join(unknown)}; "
                         f"the pipeline declares: {', '.join(sorted(declared)) or '(none)'}")
    typed = {name: _coerce(name, value, declared[name].get("parameterType")) for name, value in params.items()}
    missing = sorted(name for name, decl in declared.items()
                     if name not in typed and "defaultValue" not in decl and not decl.get("isOptional"))
    if missing:
        raise ValueError(f"pipeline parameter(s) {', '.join(missing)} have no default; pass a value")
    return typed


def parse_assignments(items) -> Dict[str, str]:
    """``["epochs=3", "min_f1=40"]`` (the CLI's ``--param``) as a dict."""
    out = {}
    for item in items or ():
        if "=" not in item:
            raise ValueError(f"--param {item!r} must look like name=value")
        name, value = item.split("=", 1)
        out[name.strip()] = value
    return out
