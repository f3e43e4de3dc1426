"""The evaluation report: Markdown tables and a PNG chart of F1 per slice."""
from __future__ import annotations

import io
import os
from typing import Dict, List, Sequence

import tensorflow as tf

from bert_qa_pipeline.components.artifacts import CHART_FILE, REPORT_FILE
from bert_qa_pipeline.components.qa_evaluator.blessing import Check


def slice_label(slice_key) -> str:
    return "overall" if not slice_key else ", ".join(f"{k}={v}" for k, v in slice_key)


def write_chart(path: str, slice_f1: Dict[str, Dict[str, float]], variants: Sequence[str]) -> str:
    """Horizontal bars: F1 of every slice, one bar per evaluated variant."""
    import matplotlib  # lazy: matplotlib with its file backend, only to draw the chart

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: after choosing the backend

    labels = list(slice_f1)
    height = 0.8 / max(len(variants), 1)
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(labels) * max(1, len(variants) / 2) + 1.5))
    for i, variant in enumerate(variants):
        ys = [j + i * height for j in range(len(labels))]
        ax.barh(ys, [slice_f1[label].get(variant, 0.0) for label in labels], height=height, label=variant)
    ax.set_yticks([j + height * (len(variants) - 1) / 2 for j in range(len(labels))])
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("F1 (%)")
    ax.set_xlim(0, 100)
    ax.set_title("F1 per slice (TFMA)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    with tf.io.gfile.GFile(path, "wb") as f:  # local path or any gfile URI
        f.write(buffer.getvalue())
    return path


def write_report(directory: str, model_uri: str, overall: Dict[str, Dict[str, float]],
                 slice_rows: Dict[str, Dict[str, Dict[str, float]]], variants: Sequence[str],
                 checks: List[Check], blessed: bool, counts: Dict[str, int],
                 baseline: Dict[str, object], untrained: Dict[str, float] = None,
                 seq_lens: Dict[str, int] = None) -> str:
    lines = [f"# QA evaluation: {'BLESSED' if blessed else 'NOT BLESSED'}", "",
             f"Model: `{model_uri}`  ",
             f"Questions: {counts['questions']} evaluated, {counts['features']} features; every "
             f"variant predicted {counts['predicted_min']} of {counts['questions']} questions.", "",
             "## Official SQuAD scores (%)", "",
             "Each variant is scored at the token length it serves at (questions re-windowed).", "",
             "| variant | tokens | exact match | F1 |", "|---|---:|---:|---:|"]
    seq_lens = seq_lens or {}
    for variant in variants:
        lines.append(f"| {variant} | {seq_lens.get(variant, '')} | {overall[variant]['exact_match']:.2f} | "
                     f"{overall[variant]['f1']:.2f} |")
    if baseline.get("f1") is not None:
        lines.append(f"| latest blessed model (`{baseline['uri']}`) | {baseline.get('seq_len', '')} | "
                     f"{baseline['exact_match']:.2f} | {baseline['f1']:.2f} |")
    if untrained:
        lines.append(f"| untrained (random encoder and head, same architecture) | {seq_lens.get('saved_model', '')} | "
                     f"{untrained['exact_match']:.2f} | {untrained['f1']:.2f} |")
    lines += ["", "## Blessing checks", "", "| check | value | threshold | passed | detail |",
              "|---|---:|---:|---|---|"]
    for c in checks:
        value = "" if c.value is None else f"{c.value:.2f}"
        threshold = "" if c.threshold is None else f"{c.threshold:.2f}"
        lines.append(f"| {c.name} | {value} | {threshold} | {'yes' if c.passed else 'NO'} | {c.detail} |")
    lines += ["", f"## F1 per slice (%), from TFMA", "", f"![F1 per slice]({CHART_FILE})", "",
              "| slice | questions | " + " | ".join(f"F1 {v}" for v in variants) + " |",
              "|---|---:|" + "---:|" * len(variants)]
    for label, row in slice_rows.items():
        lines.append(f"| {label} | {int(row['count'])} | "
                     + " | ".join(f"{row.get(v, float('nan')):.2f}" for v in variants) + " |")
    path = os.path.join(directory, REPORT_FILE)
    with tf.io.gfile.GFile(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path
