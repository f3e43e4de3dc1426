"""QaEvaluator's executor: thin over ``BertQaSpec.evaluate``, ``bert_qa.scoring`` and TFMA."""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import tempfile
import time
from typing import Dict, List, Optional, Sequence

from bert_qa import _env  # noqa: F401
import tensorflow as tf
import tensorflow_model_analysis as tfma
from apache_beam.options.pipeline_options import PipelineOptions
from tensorflow_model_analysis.proto import config_pb2
from tfx.components.evaluator import executor as tfx_evaluator_executor

from bert_qa import input_pipeline, scoring, squad_data, windowing
from bert_qa.export import read_metadata, spec_of_saved_model
from bert_qa.tflite_runner import LiteRunner
from bert_qa.tokenization import CachedFullTokenizer
from bert_qa.windowing_params import Windowing
from bert_qa_pipeline.components import artifacts, example_codecs, keys, object_store
from bert_qa_pipeline.components.qa_evaluator import blessing as blessing_rules
from bert_qa_pipeline.components.qa_evaluator import report, slices

log = logging.getLogger(__name__)

SAVED_MODEL = "saved_model"


class ServingModel:
    """A loaded serving SavedModel called like the spec's Keras model: x -> (start, end)."""

    def __init__(self, saved_model_dir: str):
        self._loaded = tf.saved_model.load(saved_model_dir)
        self._fn = self._loaded.signatures["serving_default"]

    def __call__(self, x, training=False):
        out = self._fn(input_word_ids=x["input_word_ids"], input_mask=x["input_mask"],
                       input_type_ids=x["input_type_ids"])
        return out["start_logits"], out["end_logits"]


def percent(official: dict, v2: bool) -> Dict[str, float]:
    """Official scores as percentages (v1.1's scorer gives fractions, v2.0's percentages)."""
    if v2:
        return {"exact_match": float(official["exact"]), "f1": float(official["f1"])}
    return {"exact_match": 100.0 * official["exact_match"], "f1": 100.0 * official["final_f1"]}


def per_question(questions: Sequence[squad_data.Question], predictions: Dict[str, str], v2: bool):
    rows = {}
    for q in questions:
        if q.id not in predictions:
            raise RuntimeError(f"no prediction for question {q.id!r}")
        rows[q.id] = scoring.question_scores(list(q.answer_texts), predictions[q.id], v2)
    return rows


@dataclasses.dataclass
class EvalData:
    questions: List[squad_data.Question]
    examples: list
    features: list
    feature_files: List[str]
    dataset_path: str  # SQuAD JSON of the questions (what the official scorer reads)


def evaluate_one(spec, name: str, data: EvalData, params: dict, out_dir: str,
                 model=None, tflite_file: Optional[str] = None) -> dict:
    """The official scores of one model variant, its predictions and per-question scores."""
    start = time.time()
    batch = int(params["predict_batch_size"])
    input_fn = input_pipeline.make_input_fn(spec, data.feature_files, is_training=False, batch_size=batch)
    v2 = bool(params["version_2_with_negative"])
    variant_dir = os.path.join(out_dir, name)
    log.info(f"QaEvaluator: predicting {len(data.features)} features with {name} ...")
    official = spec.evaluate(model, tflite_file, input_fn, math.ceil(len(data.features) / batch),
                             data.examples, data.features, data.dataset_path, v2,
                             int(params["max_answer_length"]), float(params["null_score_diff_threshold"]),
                             False, variant_dir)
    predictions = artifacts.read_json(os.path.join(variant_dir, "predictions.json"))
    rows = per_question(data.questions, predictions, v2)
    scores = percent(official, v2)
    # The per-question scores that TFMA slices must average to the official scores.
    for key in ("exact_match", "f1"):
        mean = 100.0 * sum(r[key] for r in rows.values()) / len(rows)
        if abs(mean - scores[key]) > 1e-6:
            raise RuntimeError(f"{name}: per-question {key} mean {mean} != official {scores[key]}")
    log.info(f"QaEvaluator: {name}: EM {scores['exact_match']:.2f} F1 {scores['f1']:.2f} "
             f"({len(predictions)} questions, {time.time() - start:.0f} s)")
    return {"scores": scores, "official": official, "per_question": rows,
            "num_predicted": len(predictions), "seconds": time.time() - start}


def load_eval_data(examples, features, split: str, work_dir: str) -> EvalData:
    questions = example_codecs.read_questions(artifacts.split_uri(examples, split))
    eval_examples, skipped = squad_data.to_squad_examples(questions, is_training=False)
    if skipped:  # evaluation mode keeps every question; anything else is a bug
        raise RuntimeError(f"{len(skipped)} evaluation questions were dropped: {skipped[:3]}")
    dataset_path = os.path.join(work_dir, "eval_data.json")
    artifacts.write_json(dataset_path, {"version": "1.1", "data": example_codecs.squad_dataset(questions)})
    split_dir = artifacts.split_uri(features, split)
    return EvalData(questions, eval_examples, example_codecs.read_eval_features(split_dir),
                    artifacts.tfrecord_files(split_dir), dataset_path)


def spec_of(model, work_dir: str):
    """The spec a Model was trained with: the library's record inside its SavedModel."""
    try:
        return spec_of_saved_model(artifacts.serving_model_dir(model), model_dir=work_dir)
    except ValueError as err:
        raise ValueError(f"model {model.uri}: {err}") from err


def check_same_windowing(spec, features, model) -> None:
    if Windowing.of(spec).as_dict() != artifacts.windowing_of(features):
        raise ValueError(f"features {features.uri} were windowed with {artifacts.windowing_of(features)} "
                         f"but model {model.uri} was trained with {Windowing.of(spec).as_dict()}")


def rewindowed(data: EvalData, convert, work_dir: str, name: str) -> EvalData:
    """``data`` with features from ``convert(output_fn)``; padding features are only written
    (as Model Maker's DataLoader does), never mapped back to questions."""
    windows, records = [], []

    def output_fn(feature, is_padding=False):
        records.append(feature)
        if not is_padding:
            windows.append(feature)

    convert(output_fn)
    path = os.path.join(work_dir, f"{name}_features.tfrecord")
    input_pipeline.write_features(records, path, is_training=False)
    return dataclasses.replace(data, features=windows, feature_files=[path])


def windowed_for(spec, data: EvalData, features, work_dir: str, name: str = "rewindowed") -> EvalData:
    """The evaluation data windowed as ``spec`` windows (re-windowed if the features differ)."""
    if Windowing.of(spec).as_dict() == artifacts.windowing_of(features):
        return data
    return rewindowed(data, lambda output_fn: spec.convert_examples_to_features(
        data.examples, False, output_fn, batch_size=spec.predict_batch_size), work_dir, name)


def evaluate_variants(spec, model, tflite_model, data: EvalData, features, params: dict, out_dir: str,
                      work_dir: str) -> Dict[str, dict]:
    """The trained SavedModel and every TFLite variant, each at the length it serves at: a
    .tflite built for another length (TfliteExport's serving_seq_len, e.g. the Task Library's
    384) gets the questions re-windowed at that length, as a device would window them."""
    results = {SAVED_MODEL: evaluate_one(spec, SAVED_MODEL, data, params, out_dir,
                                         model=ServingModel(artifacts.serving_model_dir(model)))}
    results[SAVED_MODEL]["seq_len"] = spec.seq_len
    if tflite_model is None:
        return results
    at_length = {spec.seq_len: (spec, data)}
    for variant in artifacts.variants_of(tflite_model):
        path = artifacts.tflite_path(tflite_model.uri, variant)
        seq_len = LiteRunner(path).seq_len
        if seq_len not in at_length:
            serving_spec = spec_of_saved_model(artifacts.serving_model_dir(model), seq_len=seq_len,
                                               model_dir=os.path.join(work_dir, f"seq{seq_len}"))
            at_length[seq_len] = (serving_spec, windowed_for(serving_spec, data, features, work_dir,
                                                             f"seq{seq_len}"))
        variant_spec, variant_data = at_length[seq_len]
        results[variant] = evaluate_one(variant_spec, variant, variant_data, params, out_dir, tflite_file=path)
        results[variant]["seq_len"] = seq_len
    return results


def evaluate_baseline(baseline, model, current: dict, data: EvalData, features, params: dict,
                      work_dir: str) -> dict:
    """Scores of the latest blessed model on the same questions (its own windowing)."""
    if baseline is None:
        return {}
    if baseline.uri == model.uri:
        # Re-evaluating the model that is itself the latest blessed one: its own F1 is the baseline.
        return {"uri": baseline.uri, "id": baseline.id, **current}
    spec = spec_of(baseline, work_dir)
    result = evaluate_one(spec, "baseline", windowed_for(spec, data, features, work_dir), params, work_dir,
                          model=ServingModel(artifacts.serving_model_dir(baseline)))
    return {"uri": baseline.uri, "id": baseline.id, **result["scores"]}


def evaluate_published(destination: str, data: EvalData, params: dict, work_dir: str) -> dict:
    """Scores of the newest model published under ``destination`` (what devices run now).

    The baseline where no MLMD resolver runs (Kubeflow Pipelines accepts container tasks only):
    the .tflite file alone says how to use it (Task Library metadata: vocab, casing, query_len,
    doc_stride; seq_len from its inputs), so the questions are windowed from that.
    """
    from bert_qa.spec import BertQaSpec  # lazy: the spec's Keras model code (seconds), only to run

    directory = artifacts.latest_published(destination) if destination else None
    if directory is None:
        return {}
    tflite_file = os.path.join(work_dir, "published.tflite")
    object_store.copy(os.path.join(directory, artifacts.PUBLISHED_MODEL_FILE), tflite_file, overwrite=True)
    metadata = read_metadata(tflite_file)
    # A spec only to run and postprocess the .tflite file (never built: no encoder is needed).
    spec = BertQaSpec(uri=tflite_file, model_dir=work_dir, seq_len=LiteRunner(tflite_file).seq_len,
                      query_len=int(metadata.options["query_len"]), doc_stride=int(metadata.options["doc_stride"]),
                      do_lower_case=metadata.do_lower_case, distribution_strategy="off")
    tokenizer = CachedFullTokenizer(metadata.write_vocab(os.path.join(work_dir, "published_vocab.txt")),
                                    metadata.do_lower_case)
    published = rewindowed(data, lambda output_fn: windowing.convert_examples_to_features(
        data.examples, tokenizer, spec.seq_len, spec.doc_stride, spec.query_len, False, output_fn,
        pad_to_batch=False), work_dir, "published")
    result = evaluate_one(spec, "baseline", published, params, work_dir, tflite_file=tflite_file)
    # A file, not an MLMD artifact.
    return {"uri": directory, "id": None, "seq_len": spec.seq_len, **result["scores"]}


def evaluate_untrained(spec, data: EvalData, params: dict, work_dir: str) -> Dict[str, float]:
    """Scores of the same architecture with random encoder and head: what training must beat."""
    from bert_qa import modeling  # lazy: the Keras model code (seconds), only to run

    if not int(params.get("evaluate_untrained", 1)):
        return {}
    model = spec.create_model()
    modeling.reinitialize(model, spec.initializer_range, seed=0)
    result = evaluate_one(spec, "untrained", data, params, os.path.join(work_dir, "untrained_eval"),
                          model=model)
    return dict(result["scores"])


def write_per_question(path: str, questions, results: Dict[str, dict]) -> None:
    """One tf.Example per question: slice keys and each variant's EM/F1 (TFMA's input)."""
    def floats(v):
        return tf.train.Feature(float_list=tf.train.FloatList(value=[v]))

    def strs(v):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode("utf-8")]))

    with tf.io.TFRecordWriter(path) as writer:
        for q in questions:
            fields = {"id": strs(q.id), "label": floats(1.0)}
            fields.update({k: strs(v) for k, v in slices.slice_values(q).items()})
            for variant, result in results.items():
                fields[f"f1__{variant}"] = floats(result["per_question"][q.id]["f1"])
                fields[f"em__{variant}"] = floats(result["per_question"][q.id]["exact_match"])
            writer.write(tf.train.Example(features=tf.train.Features(feature=fields)).SerializeToString())


def eval_config(variants: Sequence[str]):
    """Model-agnostic TFMA config: each variant is a 'model' whose predictions are its scores."""
    return config_pb2.EvalConfig(
        model_specs=[config_pb2.ModelSpec(
            name=v, label_key="label",
            prediction_keys={"f1": f"f1__{v}", "exact_match": f"em__{v}"}) for v in variants],
        metrics_specs=[config_pb2.MetricsSpec(
            metrics=[config_pb2.MetricConfig(class_name="MeanPrediction"),
                     config_pb2.MetricConfig(class_name="ExampleCount")],
            model_names=list(variants), output_names=["f1", "exact_match"])],
        slicing_specs=[config_pb2.SlicingSpec()] + [
            config_pb2.SlicingSpec(feature_keys=[k]) for k in slices.SLICE_FEATURES])


def run_tfma(output_dir: str, data_path: str, variants: Sequence[str], beam_pipeline_args=()):
    """``tfma.run_model_analysis`` with the component's Beam options; returns
    {slice label: {variant: F1 %, 'count': n}}."""
    tfma.run_model_analysis(eval_config=eval_config(variants), data_location=data_path,
                            output_path=output_dir, file_format="tfrecords",
                            pipeline_options=PipelineOptions(list(beam_pipeline_args)))
    rows: Dict[str, Dict[str, float]] = {}
    for variant in variants:
        result = tfma.load_eval_result(output_dir, model_name=variant)
        for slice_key, metrics in result.slicing_metrics:
            row = rows.setdefault(report.slice_label(slice_key), {})
            f1 = metrics["f1"][""]
            row[variant] = 100.0 * f1["mean_prediction"]["doubleValue"]
            row["count"] = f1["example_count"]["doubleValue"]
    overall = rows.pop("overall")
    ordered = {"overall": overall}
    for feature in slices.SLICE_FEATURES:
        for label in sorted(k for k in rows if k.startswith(feature + "=")):
            ordered[label] = rows[label]
    return ordered


def slice_with_tfma(out_dir: str, questions, results: Dict[str, dict], beam_pipeline_args=()):
    """Per-question scores of every variant, sliced and averaged by TFMA."""
    path = os.path.join(out_dir, artifacts.PER_QUESTION_FILE)
    write_per_question(path, questions, results)
    log.info("QaEvaluator: slicing with TFMA ...")
    return run_tfma(out_dir, path, list(results), beam_pipeline_args)


def bless(params: dict, results: Dict[str, dict], tflite_model, baseline: dict,
          untrained: Dict[str, float]) -> List[blessing_rules.Check]:
    thresholds = blessing_rules.Thresholds(
        float(params["min_exact_match"]), float(params["min_f1"]),
        float(params["max_f1_drop_vs_baseline"]), float(params["max_quantized_f1_drop"]),
        float(params.get("min_f1_gain_over_untrained") or 0.0))
    quantized = params.get("quantized_variant") or None
    if quantized and tflite_model is None:
        quantized = None  # nothing exported: nothing to compare
    return blessing_rules.decide({v: r["scores"] for v, r in results.items()}, SAVED_MODEL, quantized,
                                 baseline.get("f1"), thresholds, untrained_f1=untrained.get("f1"))


def write_outputs(evaluation, blessing, model, data: EvalData, results: Dict[str, dict], slice_rows,
                  checks, baseline: dict, untrained: Dict[str, float], params: dict) -> bool:
    """Report, chart, scores.json and properties on the evaluation; TFX's blessing layout."""
    blessed = all(c.passed for c in checks)
    overall = {v: r["scores"] for v, r in results.items()}
    variants = list(results)
    counts = {"questions": len(data.questions), "features": len(data.features),
              "predicted_min": min(r["num_predicted"] for r in results.values())}
    report.write_chart(os.path.join(evaluation.uri, artifacts.CHART_FILE), slice_rows, variants)
    seq_lens = {v: r["seq_len"] for v, r in results.items() if "seq_len" in r}
    report_path = report.write_report(evaluation.uri, model.uri, overall, slice_rows, variants,
                                      checks, blessed, counts, baseline, untrained, seq_lens)
    artifacts.write_json(os.path.join(evaluation.uri, artifacts.SCORES_FILE), {
        "scores": overall, "official": {v: r["official"] for v, r in results.items()},
        "baseline": baseline, "untrained": untrained, "checks": [dataclasses.asdict(c) for c in checks],
        "blessed": blessed, "slices": slice_rows, "counts": counts, "seq_len": seq_lens,
        "seconds": {v: r["seconds"] for v, r in results.items()}})

    props = {"num_questions": counts["questions"], "num_features": counts["features"],
             "report": report_path, "blessed": int(blessed)}
    for variant, scores in overall.items():
        props[f"exact_match_{variant}"] = scores["exact_match"]
        props[f"f1_{variant}"] = scores["f1"]
        props[f"num_predicted_{variant}"] = results[variant]["num_predicted"]
    artifacts.record_counts(evaluation, props)

    failed = [c.name for c in checks if not c.passed]
    artifacts.write_blessing(blessing, blessed, model, {
        "f1": overall[SAVED_MODEL]["f1"], "exact_match": overall[SAVED_MODEL]["exact_match"],
        "failed_checks": failed, "report": report_path,
        **({artifacts.BLESSING_PIPELINE_KEY: params["pipeline_name"]} if params.get("pipeline_name") else {}),
        "blessing_message": (f"blessed: all {len(checks)} checks passed" if blessed
                             else f"not blessed: failed {', '.join(failed)}")})
    if baseline:
        artifacts.set_blessing_baseline(blessing, baseline["uri"], baseline["id"])
        artifacts.record_counts(blessing, {"baseline_f1": baseline["f1"]})
    return blessed


class Executor(tfx_evaluator_executor.Executor):
    """Our own ``Do``; TFX's Evaluator executor as the base class because TFX's Kubeflow V2
    entrypoint rewrites a blessing's ``current_model_id`` / ``baseline_model_id`` to the
    runtime artifact names (what the latest-blessed-model resolver matches on Vertex) only
    for its subclasses (``kubeflow_v2_run_executor``), and so that the component's Beam
    options reach TFMA."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        examples = artifacts.single(input_dict[keys.EXAMPLES_KEY], keys.EXAMPLES_KEY)
        features = artifacts.single(input_dict[keys.FEATURES_KEY], keys.FEATURES_KEY)
        model = artifacts.single(input_dict[keys.MODEL_KEY], keys.MODEL_KEY)
        tflite_model = artifacts.optional_single(input_dict.get(keys.TFLITE_MODEL_KEY))
        baseline_model = artifacts.optional_single(input_dict.get(keys.BASELINE_MODEL_KEY))
        evaluation = artifacts.single(output_dict[keys.EVALUATION_KEY], keys.EVALUATION_KEY)
        blessing = artifacts.single(output_dict[keys.BLESSING_KEY], keys.BLESSING_KEY)
        params = dict(exec_properties)
        tf.io.gfile.makedirs(evaluation.uri)
        work_dir = tempfile.mkdtemp(prefix="qa_evaluator_")
        try:
            # load: the questions, their features, and the spec the model was trained with
            data = load_eval_data(examples, features, params["eval_split"], evaluation.uri)
            spec = spec_of(model, work_dir)
            check_same_windowing(spec, features, model)
            # predict: every variant, the untrained reference, the latest blessed model
            results = evaluate_variants(spec, model, tflite_model, data, features, params, evaluation.uri, work_dir)
            untrained = evaluate_untrained(spec, data, params, work_dir)
            if baseline_model is None and params.get("baseline_destination"):
                baseline = evaluate_published(params["baseline_destination"], data, params, work_dir)
            else:
                baseline = evaluate_baseline(baseline_model, model, results[SAVED_MODEL]["scores"], data,
                                             features, params, work_dir)
            # TFMA, bless, report
            slice_rows = slice_with_tfma(evaluation.uri, data.questions, results, self._beam_pipeline_args)
            checks = bless(params, results, tflite_model, baseline, untrained)
            blessed = write_outputs(evaluation, blessing, model, data, results, slice_rows, checks,
                                    baseline, untrained, params)
        finally:
            tf.io.gfile.rmtree(work_dir)
        log.info(f"QaEvaluator: {'BLESSED' if blessed else 'NOT BLESSED'}; report "
                 f"{os.path.join(evaluation.uri, artifacts.REPORT_FILE)}")
