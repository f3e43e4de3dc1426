"""Runtime parameters of a compiled pipeline: what it declares, and command-line values typed.

Both submitters (Vertex, Kubeflow) check a submission's parameters against the compiled spec
before any request, so a typo fails here with the list of names, not on the server.
"""
from __future__ import annotations

import json
from typing import Dict, Mapping

_TYPES = {"STRING": str, "NUMBER_INTEGER": int, "NUMBER_DOUBLE": float, "BOOLEAN": bool}


def load_spec(path: str) -> dict:
    """The PipelineSpec of a compiled file: Vertex's PipelineJob JSON or Kubeflow's YAML."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.endswith((".yaml", ".yml")):
        import yaml

        document = yaml.safe_load(text)
    else:
        document = json.loads(text)
    return document.get("pipelineSpec", document)


def declared(spec: Mapping) -> Dict[str, str]:
    """``{name: parameterType}`` of the pipeline's runtime parameters."""
    parameters = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    return {name: p.get("parameterType", "STRING") for name, p in parameters.items()}


def coerce(values: Mapping[str, object], spec: Mapping) -> Dict[str, object]:
    """Values typed as the spec declares them ("3" -> 3 for an integer); unknown names refused."""
    types = declared(spec)
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise ValueError(f"unknown pipeline parameter(s) {unknown}; this pipeline takes {sorted(types)}")
    typed = {}
    for name, value in values.items():
        kind = _TYPES.get(types[name], str)
        if isinstance(value, str) and kind is not str:
            try:
                value = (value.lower() in ("1", "true", "yes")) if kind is bool else kind(value)
            except ValueError as err:
                raise ValueError(f"parameter {name} must be {types[name]}, not {value!r}") from err
        typed[name] = value
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
