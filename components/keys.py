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
