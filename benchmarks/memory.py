"""Peak memory and time of SquadExampleGen and FeatureWindowing against input size (issue 22).

Input sizes are multiples of a base (default: SQuAD v1.1 train, 87,599 questions), made by
repeating data/new_wiki_train.json (2,773 real questions, 1.2 MB): copy ``i`` gets ids and
titles suffixed ``-r<i>`` so that every question is new, and is written as its own file (an
input glob of many files, as big SQuAD-format sets come). Each component runs alone in a
fresh child process (the executors as the pipeline calls them, FeatureWindowing on the
DirectRunner with the pipeline's default Beam args and model.seq_len/query_len/doc_stride);
the parent samples the RSS of the child's whole process tree every 0.1 s (Beam workers
included) and reports the peak, and the wall time.

    nice -n 10 uv run --frozen python -m benchmarks.memory --scales 1,3,6 [--base 87599]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SQUAD_V11_TRAIN = 87_599
SOURCE = os.path.join(REPO, "data", "new_wiki_train.json")


def make_input(directory: str, n_questions: int) -> dict:
    """Copies of the shipped training file (whole copies, the last one cut) up to ``n_questions``."""
    with open(SOURCE, encoding="utf-8") as f:
        source = json.load(f)
    os.makedirs(directory, exist_ok=True)
    written, copy, files, size = 0, 0, 0, 0
    while written < n_questions:
        articles = []
        for article in source["data"]:
            paragraphs = []
            for p in article["paragraphs"]:
                if written >= n_questions:
                    break
                qas = [dict(qa, id=f"{qa['id']}-r{copy}") for qa in p["qas"][:n_questions - written]]
                written += len(qas)
                paragraphs.append(dict(p, qas=qas))
            if paragraphs:
                articles.append({"title": f"{article['title']}-r{copy}", "paragraphs": paragraphs})
        path = os.path.join(directory, f"train-{copy:05d}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"version": "1.1", "data": articles}, f)
        size += os.path.getsize(path)
        files += 1
        copy += 1
    return {"questions": written, "files": files, "bytes": size}


def tree_rss(pid: int) -> int:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc] + proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def measure(argv) -> dict:
    """Runs ``python -m benchmarks.memory <argv>`` and samples its process tree."""
    start = time.time()
    child = subprocess.Popen([sys.executable, "-m", "benchmarks.memory", *argv], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0
    import threading

    lines = []
    reader = threading.Thread(target=lambda: lines.extend(child.stdout), daemon=True)
    reader.start()
    while child.poll() is None:
        peak = max(peak, tree_rss(child.pid))
        time.sleep(0.1)
    reader.join()
    if child.returncode != 0:
        sys.stderr.write("".join(lines[-40:]))
        raise RuntimeError(f"{argv[0]} failed ({child.returncode})")
    result = json.loads([line for line in lines if line.startswith("RESULT ")][-1][len("RESULT "):])
    result.update(peak_rss=peak, seconds=time.time() - start)
    return result


# -- children --------------------------------------------------------------------------------

def child_baseline() -> dict:
    """The imports both components need, nothing run: the floor under every figure."""
    from bert_qa import _env  # noqa: F401
    import apache_beam  # noqa: F401
    import tensorflow  # noqa: F401
    from bert_qa_pipeline.components.feature_windowing import executor  # noqa: F401
    from bert_qa_pipeline.components.squad_example_gen import executor as gen  # noqa: F401

    return {}


def child_example_gen(input_dir: str, out_dir: str) -> dict:
    from bert_qa import _env  # noqa: F401
    from tfx.types import standard_artifacts

    from bert_qa_pipeline.components.squad_example_gen import executor

    examples = standard_artifacts.Examples()
    examples.uri = os.path.join(out_dir, "examples")
    start = time.time()
    executor.Executor().Do({}, {"examples": [examples]}, {
        "input_patterns": json.dumps({"train": [os.path.join(input_dir, "*.json")]}), "hash_buckets": None})
    return {"run_seconds": time.time() - start,
            "questions": examples.get_int_custom_property("num_questions_train")}


def child_windowing(examples_uri: str, out_dir: str) -> dict:
    from bert_qa import _env  # noqa: F401
    from tfx.dsl.components.base import base_beam_executor
    from tfx.types import standard_artifacts

    from bert_qa_pipeline.components import artifacts
    from bert_qa_pipeline.components.feature_windowing import executor
    from bert_qa_pipeline.pipeline import config as config_lib

    config = config_lib.load_config(None, [])
    examples = standard_artifacts.Examples()
    examples.uri = examples_uri
    artifacts.set_split_names(examples, ["train"])
    features = standard_artifacts.Examples()
    features.uri = os.path.join(out_dir, "features")
    beam_args = list(config.beam.args)
    context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=beam_args)
    m = config.model
    start = time.time()
    executor.Executor(context).Do({"examples": [examples]}, {"features": [features]}, {
        "encoder_uri": config.encoder_uri,
        "do_lower_case": 1, "seq_len": m.seq_len, "query_len": m.query_len, "doc_stride": m.doc_stride,
        "training_splits": '["train"]', "version_2_with_negative": 0, "multi_answer": "first",
        "num_shards": 0})
    return {"run_seconds": time.time() - start, "beam_args": beam_args,
            "features": features.get_int_custom_property("num_features_train")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scales", default="1,3,6", help="multiples of --base (comma-separated)")
    p.add_argument("--base", type=int, default=SQUAD_V11_TRAIN, help="questions in 1x (default: SQuAD v1.1 train)")
    p.add_argument("--components", default="example_gen,windowing")
    p.add_argument("--work-dir", help="default: a temporary directory, removed afterwards")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--args", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        result = {"baseline": child_baseline, "example_gen": child_example_gen,
                  "windowing": child_windowing}[args.child](*(args.args or []))
        print("RESULT " + json.dumps(result), flush=True)
        return 0

    work = args.work_dir or tempfile.mkdtemp(prefix="bertqa_memory_")
    components = args.components.split(",")
    rows = []
    base = measure(["--child", "baseline"])
    print(f"imports only: peak RSS {base['peak_rss'] / 2**20:.0f} MiB, {base['seconds']:.0f} s", flush=True)
    try:
        for scale in [float(s) for s in args.scales.split(",")]:
            n = round(scale * args.base)
            run_dir = os.path.join(work, f"x{scale:g}")
            info = make_input(os.path.join(run_dir, "input"), n)
            row = {"scale": scale, **info}
            if "example_gen" in components or "windowing" in components:
                gen = measure(["--child", "example_gen", "--args", os.path.join(run_dir, "input"), run_dir])
                row["example_gen"] = gen
                print(f"{scale:g}x SquadExampleGen: {json.dumps(gen)}", flush=True)
            if "windowing" in components:
                win = measure(["--child", "windowing", "--args",
                               os.path.join(run_dir, "examples"), run_dir])
                row["windowing"] = win
                print(f"{scale:g}x FeatureWindowing: {json.dumps(win)}", flush=True)
            rows.append(row)
            shutil.rmtree(run_dir, ignore_errors=True)
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)

    mib = lambda b: f"{b / 2**20:,.0f}"  # noqa: E731
    print()
    print(f"| input | questions | files | JSON MB | SquadExampleGen peak RSS MiB | Do() s "
          f"| FeatureWindowing peak RSS MiB | Do() s | features |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        g, w = r.get("example_gen", {}), r.get("windowing", {})
        print(f"| {r['scale']:g}x | {r['questions']:,} | {r['files']} | {r['bytes'] / 1e6:.0f} "
              f"| {mib(g['peak_rss']) if g else '-'} | {g.get('run_seconds', 0):.0f} "
              f"| {mib(w['peak_rss']) if w else '-'} | {w.get('run_seconds', 0):.0f} | {w.get('features', '-')} |")
    print(f"(imports only: {mib(base['peak_rss'])} MiB; base {args.base:,} questions; Do() s: the "
          f"executor's own time, without the child's ~30-70 s of imports)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
