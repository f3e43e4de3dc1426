"""Cron expressions checked on this machine with each service's own field rules, before any request.

Pure functions (no network, no TensorFlow): ``bertqa schedule`` refuses "61 25 * * *" here, with
the field and its range, instead of after credentials and a round trip.

Kubeflow Pipelines
    The API server validates ``cron.Parse(cron)`` of github.com/robfig/cron v1.2.0
    (kubeflow/pipelines backend/src/apiserver/server/api_converter.go:2088-2093, imported at
    :35; go.mod:42 pins v1.2.0) and the ScheduledWorkflow controller runs the same ``cron.Parse``
    (backend/src/crd/controller/scheduledworkflow/util/cron_schedule.go:84). robfig/cron v1.2.0's
    ``Parse`` is ``NewParser(Second | Minute | Hour | Dom | Month | DowOptional | Descriptor)``
    (parser.go:174-186): 5 or 6 fields, **seconds first**, day of week optional, or a descriptor
    (@daily, "@every 1h", parser.go:316-380; refused here all the same: Vertex has none).
    Fields (spec.go:18-46): second 0-59, minute 0-59, hour 0-23, day of month 1-31, month 1-12
    or jan-dec, day of week 0-6 or sun-sat (no 7), names case-insensitive (parser.go:272-280).
    Each field is a comma list of ranges ``*``/``?``/N/N-M with an optional /STEP, STEP >= 1, "N/STEP"
    meaning N-max/STEP (parser.go:188-270). A 5-field user cron is read as seconds-first (its
    minute would become the second), so ``kfp_cron`` prepends "0"; v1.2.0 has no TZ= prefix.

Vertex AI
    ``Schedule.cron`` (google.cloud.aiplatform.v1.Schedule): "Cron schedule
    (https://en.wikipedia.org/wiki/Cron) to launch scheduled runs. To explicitly set a timezone
    to the cron tab, apply a prefix in the cron tab: "CRON_TZ=${IANA_TIME_ZONE}" or
    "TZ=${IANA_TIME_ZONE}". The ${IANA_TIME_ZONE} may only be a valid string from IANA time zone
    database." (https://cloud.google.com/php/docs/reference/cloud-ai-platform/latest/V1.Schedule;
    the scheduling guide: https://cloud.google.com/vertex-ai/docs/pipelines/schedule-pipeline-run).
    The five unix-cron fields: minute 0-59, hour 0-23, day of month 1-31, month 1-12 or JAN-DEC,
    day of week 0-6 or SUN-SAT (7 also Sunday); each a comma list of ``*``, N or N-M, each with
    an optional /STEP (STEP >= 1). The same rules as tests/fake_vertex_server.py's.
"""
from __future__ import annotations

import zoneinfo
from typing import Dict, Optional, Tuple

Field = Tuple[str, int, int, Dict[str, int]]

_MONTHS = {name: i + 1 for i, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}
_DAYS = {name: i for i, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}

# robfig/cron v1.2.0 spec.go:18-46, in Parse's order (parser.go:119-126).
KFP_FIELDS: Tuple[Field, ...] = (
    ("second", 0, 59, {}), ("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS), ("day of week", 0, 6, _DAYS))

# Unix cron, as Vertex's Schedule.cron takes it.
VERTEX_FIELDS: Tuple[Field, ...] = (
    ("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS), ("day of week", 0, 7, _DAYS))


class CronError(ValueError):
    """A cron expression the service would refuse; says which field and its range."""


def _number(text: str, field: Field, expr: str) -> int:
    name, low, high, names = field
    if text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        allowed = f"{low}-{high}" + (f" or {'/'.join(n.upper() for n in names)}" if names else "")
        raise CronError(f"cron expression {expr!r}: {name} {text!r} is not a number ({allowed})")
    return int(text)


def _check_field(text: str, field: Field, expr: str, question_mark: bool) -> None:
    name, low, high, _ = field
    for item in text.split(","):
        span, slash, step = item.partition("/")
        if slash and not (step.isdigit() and int(step) >= 1):
            raise CronError(f"cron expression {expr!r}: the step of {name} {item!r} must be a whole number >= 1")
        if span == "*" or (question_mark and span == "?"):
            continue
        if span.count("-") > 1:
            raise CronError(f"cron expression {expr!r}: {name} {item!r} has more than one '-'")
        first, dash, last = span.partition("-")
        start = _number(first, field, expr)
        end = _number(last, field, expr) if dash else start
        for value in (start, end):
            if not low <= value <= high:
                raise CronError(f"cron expression {expr!r}: {name} {value} is out of range: it must be "
                                f"{low}-{high}")
        if start > end:
            raise CronError(f"cron expression {expr!r}: {name} range {span!r} runs backwards")


def kfp_cron(expr: str) -> str:
    """``expr`` as the 6-field, seconds-first cron Kubeflow Pipelines parses (a 5-field
    "30 2 * * *" becomes "0 30 2 * * *"), checked by robfig/cron v1.2.0's rules; a CronError
    naming the field and its range otherwise. Descriptors (@daily), which robfig/cron reads
    but Vertex does not, are refused with their 5-field form, so one --cron works on both."""
    if not isinstance(expr, str) or not expr.strip():
        raise CronError(f"cron expression {expr!r} is empty; e.g. \"30 2 * * *\" (every day at 02:30)")
    text = expr.strip()
    if text.startswith("@"):  # robfig/cron reads them; Vertex does not: one form for both targets
        raise CronError(f"cron expression {expr!r}: give the 5 fields (minute hour day-of-month month "
                        f"day-of-week) that both Vertex AI and Kubeflow Pipelines read, e.g. @daily is "
                        f"\"0 0 * * *\", @hourly \"0 * * * *\"")
    fields = text.split()
    if fields[0].startswith(("TZ=", "CRON_TZ=")):
        raise CronError(f"cron expression {expr!r}: Kubeflow Pipelines' cron (robfig/cron v1) has no time zone "
                        f"prefix; recurring runs follow the cluster's time zone")
    if len(fields) == 5:
        fields = ["0"] + fields
    if len(fields) != 6:
        raise CronError(f"cron expression {expr!r} has {len(fields)} fields; expected 5 (minute hour day-of-month "
                        f"month day-of-week) or 6 (seconds first, as Kubeflow reads it)")
    for text_field, field in zip(fields, KFP_FIELDS):
        _check_field(text_field, field, expr, question_mark=True)
    return " ".join(fields)


def _time_zones() -> Optional[set]:
    try:
        zones = zoneinfo.available_timezones()
    except Exception:  # noqa: BLE001 (no zone database here: leave the zone to the service)
        return None
    return zones or None


def vertex_cron(expr: str) -> str:
    """``expr`` unchanged if Vertex AI's Schedule.cron takes it (5 unix-cron fields, optionally
    prefixed TZ=/CRON_TZ= and an IANA zone); a CronError naming the field and its range otherwise."""
    if not isinstance(expr, str) or not expr.strip():
        raise CronError(f"cron expression {expr!r} is empty; e.g. \"30 2 * * *\" (every day at 02:30)")
    fields = expr.split()
    if fields[0].startswith(("TZ=", "CRON_TZ=")):
        zone = fields.pop(0).split("=", 1)[1]
        zones = _time_zones()
        if zones is not None and zone not in zones:
            raise CronError(f"cron expression {expr!r}: {zone!r} is not an IANA time zone (e.g. Europe/Paris)")
    if len(fields) != 5:
        raise CronError(f"cron expression {expr!r}: Vertex schedules take a 5-field cron (minute hour "
                        f"day-of-month month day-of-week, optionally prefixed TZ=...), not {len(fields)} fields")
    for text_field, field in zip(fields, VERTEX_FIELDS):
        _check_field(text_field, field, expr, question_mark=False)
    return expr
