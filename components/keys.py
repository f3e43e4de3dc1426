"""Every name the components, the pipeline and the compiler share, defined once (TFX's style:
``tfx/types/standard_component_specs.py``).

The component names are the ids of the DAG's container steps, in pipeline order: the keys of
``resources.<Component>`` in the configuration, the executor labels of the compiled spec.
"""

# -- components (their ids in the DAG) -------------------------------------------------------
SQUAD_EXAMPLE_GEN = "SquadExampleGen"
FEATURE_WINDOWING = "FeatureWindowing"
QA_TRAINER = "QaTrainer"
TFLITE_EXPORT = "TfliteExport"
QA_EVALUATOR = "QaEvaluator"
TFLITE_PUSHER = "TflitePusher"
# The container steps of the DAG (the baseline resolver is a Vertex service-side query).
COMPONENTS = (SQUAD_EXAMPLE_GEN, FEATURE_WINDOWING, QA_TRAINER, TFLITE_EXPORT, QA_EVALUATOR,
              TFLITE_PUSHER)

# -- artifact channels: the components' INPUTS / OUTPUTS keys ---------------------------------
EXAMPLES_KEY = "examples"              # SquadExampleGen's questions (Examples)
FEATURES_KEY = "features"              # FeatureWindowing's windowed features (Examples)
MODEL_KEY = "model"                    # QaTrainer's serving SavedModel (Model)
MODEL_RUN_KEY = "model_run"            # QaTrainer's logs (ModelRun)
TFLITE_MODEL_KEY = "tflite_model"      # TfliteExport's .tflite variants (Model)
BASELINE_MODEL_KEY = "baseline_model"  # QaEvaluator's baseline (Model, optional)
EVALUATION_KEY = "evaluation"          # QaEvaluator's scores (ModelEvaluation)
BLESSING_KEY = "blessing"              # QaEvaluator's verdict (ModelBlessing)
PUSHED_MODEL_KEY = "pushed_model"      # TflitePusher's record (PushedModel)

# -- execution properties more than one module reads -------------------------------------------
SPEC_KEY = "spec"                      # the spec class name: BertQaSpec | MobileBertQaSpec
SPEC_ARGS_KEY = "spec_args"            # JSON constructor arguments of the spec
# QaTrainer's Vertex AI CustomJob launch (JSON); never sent to the job's replicas.
VERTEX_CUSTOM_JOB_KEY = "vertex_custom_job"
