"""The blessing rules, as data: every check with its value, threshold and verdict."""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Scores are percentages (0-100), as the SQuAD leaderboard reports them."""

    min_exact_match: float = 0.0
    min_f1: float = 0.0
    max_f1_drop_vs_baseline: float = 1.0   # points below the latest blessed model
    max_quantized_f1_drop: float = 2.0     # points below the float model
    min_f1_gain_over_untrained: float = 0.0  # points above a randomly initialised model


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    value: Optional[float]
    threshold: Optional[float]
    passed: bool
    detail: str


def decide(metrics: Dict[str, Dict[str, float]], float_variant: str, quantized_variant: Optional[str],
           baseline_f1: Optional[float], t: Thresholds, untrained_f1: Optional[float] = None
           ) -> List[Check]:
    """All checks; the model is blessed when every one passes."""
    current = metrics[float_variant]
    checks = [
        Check("exact_match >= minimum", current["exact_match"], t.min_exact_match,
              current["exact_match"] >= t.min_exact_match, f"{float_variant} EM"),
        Check("f1 >= minimum", current["f1"], t.min_f1, current["f1"] >= t.min_f1, f"{float_variant} F1"),
    ]
    if untrained_f1 is not None:
        gain = t.min_f1_gain_over_untrained
        floor = untrained_f1 + gain
        checks.append(Check("f1 vs untrained model", current["f1"], floor, current["f1"] >= floor,
                            f"randomly initialised encoder and head F1 {untrained_f1:.2f} + {gain} points"))
    if baseline_f1 is None:
        checks.append(Check("f1 vs latest blessed model", None, None, True,
                            "no blessed model yet: nothing to compare with"))
    else:
        floor = baseline_f1 - t.max_f1_drop_vs_baseline
        checks.append(Check("f1 vs latest blessed model", current["f1"], floor, current["f1"] >= floor,
                            f"baseline F1 {baseline_f1:.2f} - {t.max_f1_drop_vs_baseline} points"))
    if quantized_variant:
        if quantized_variant not in metrics:
            checks.append(Check("quantized f1 vs float", None, None, False,
                                f"variant {quantized_variant!r} was not evaluated"))
        else:
            floor = current["f1"] - t.max_quantized_f1_drop
            value = metrics[quantized_variant]["f1"]
            checks.append(Check("quantized f1 vs float", value, floor, value >= floor,
                                f"{quantized_variant} F1 vs {float_variant} F1 {current['f1']:.2f} - "
                                f"{t.max_quantized_f1_drop} points"))
    return checks
