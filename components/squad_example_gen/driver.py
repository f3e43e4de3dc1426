"""SquadExampleGen's driver: the input files' fingerprint becomes part of the cache key.

The component's parameters are its patterns; files changing under the same pattern (a nightly
drop into ``gs://bucket/squad/*.json``) would otherwise be a cache hit and the pipeline would
silently train on old data (tensorflow/tfx#4226). As TFX's own file-based ExampleGen driver
does, the driver runs before the cache check and adds ``input_fingerprint`` (TFX's
``io_utils.generate_fingerprint``: file count, bytes and modification times per pattern) to
the execution's properties.
"""
from __future__ import annotations

import json

from tfx.dsl.components.base import base_driver as legacy_base_driver
from tfx.orchestration import data_types_utils
from tfx.orchestration.portable import base_driver
from tfx.proto.orchestration import driver_output_pb2
from tfx.utils import io_utils

FINGERPRINT_PROPERTY = "input_fingerprint"


def input_fingerprint(input_patterns: str) -> str:
    """One line per (split, pattern): what the matched files look like now."""
    patterns = json.loads(input_patterns)
    pairs = (sorted((split, p) for split, ps in patterns.items() for p in ps) if isinstance(patterns, dict)
             else [("all", p) for p in patterns])
    return "\n".join(io_utils.generate_fingerprint(split, pattern) for split, pattern in pairs)


class Driver(legacy_base_driver.BaseDriver, base_driver.BaseDriver):
    """Run by TFX's launcher (LocalDagRunner) before it looks for a cached result.

    Both TFX driver bases, as TFX's ExampleGen driver: components must declare a legacy
    driver class; the portable launcher calls ``run``.
    """

    def __init__(self, metadata_handle):
        legacy_base_driver.BaseDriver.__init__(self, metadata_handle)
        base_driver.BaseDriver.__init__(self, metadata_handle)

    def resolve_exec_properties(self, exec_properties, pipeline_info, component_info):
        return {**exec_properties,
                FINGERPRINT_PROPERTY: input_fingerprint(exec_properties["input_patterns"])}

    def run(self, execution_info) -> driver_output_pb2.DriverOutput:
        result = driver_output_pb2.DriverOutput()
        fingerprint = input_fingerprint(execution_info.exec_properties["input_patterns"])
        data_types_utils.set_metadata_value(result.exec_properties[FINGERPRINT_PROPERTY], fingerprint)
        return result
