"""Training recipes: Model Maker's optimizer and schedule, or Hugging Face's, by name.

``model_maker`` is what TFLite Model Maker's BertQaSpec runs, Model Garden's
``official.nlp.optimization.create_optimizer``: ``AdamWeightDecay`` (epsilon 1e-6 added to the
uncorrected second moment, as Keras's Adam does), warmup to the rate, then linear decay that
is counted from step 0 over all steps (at the end of a 10% warmup the rate is already 0.9x).

``huggingface`` is Hugging Face ``run_qa.py`` / ``Trainer``'s: ``torch.optim.AdamW`` (epsilon
1e-8 added after bias correction) and ``get_linear_schedule_with_warmup`` (full rate at the
end of warmup, then linear decay to zero over the remaining steps). Both decay every weight
except biases and layer-norm parameters (rate 0.01) and clip gradients at global norm 1.0.
Hugging Face's ``BertEmbeddings`` also declares ``padding_idx=0``, so PyTorch never updates
the [PAD] token's embedding (it is only weight-decayed); Keras trains it like any other row.
Keras and Model Garden have no AdamW with PyTorch's epsilon placement or that frozen row,
hence the small optimizer below; ``tests/test_training_parity.py`` holds it to PyTorch step
by step.
"""
from __future__ import annotations

from bert_qa import _env  # noqa: F401
import tensorflow as tf
import tf_keras
from official.modeling.optimization import legacy_adamw
from official.nlp import optimization as model_garden_optimization

RECIPES = ("model_maker", "huggingface")
WEIGHT_DECAY = 0.01
NO_DECAY = ["LayerNorm", "layer_norm", "bias"]
PAD_TOKEN_ID = 0  # "[PAD]" in every BERT WordPiece vocab
WORD_EMBEDDINGS = "word_embeddings"
GRADIENT_CLIP_NORM = 1.0
WARMUP_FRACTION = 0.1


def warmup_steps(total_steps: int) -> int:
    """10% of the steps (Model Maker's and run_qa's ``warmup_ratio``), rounded down."""
    return int(total_steps * WARMUP_FRACTION)


def create_optimizer(recipe: str, learning_rate: float, total_steps: int, num_warmup_steps: int):
    """The optimizer (with its learning-rate schedule) of ``recipe``."""
    if recipe == "model_maker":
        model_garden = model_garden_optimization.create_optimizer(learning_rate, total_steps, num_warmup_steps)
        # The same optimizer and schedule object, given dense gradients (DenseGradientsAdamW).
        # get_config() leaves out the weight-decay exclusions and the clipping norm: copied here.
        return DenseGradientsAdamW(**{**model_garden.get_config(), "learning_rate": model_garden.learning_rate},
                                   include_in_weight_decay=model_garden._include_in_weight_decay,
                                   exclude_from_weight_decay=model_garden._exclude_from_weight_decay,
                                   gradient_clip_norm=model_garden.gradient_clip_norm)
    if recipe == "huggingface":
        return TorchAdamW(
            learning_rate=LinearWarmupDecay(learning_rate, num_warmup_steps, total_steps),
            weight_decay_rate=WEIGHT_DECAY, epsilon=1e-8, exclude_from_weight_decay=NO_DECAY,
            gradient_clip_norm=GRADIENT_CLIP_NORM)
    raise ValueError(f"optimizer_recipe must be one of {RECIPES}, not {recipe!r}")


def learning_rate_at(optimizer, step) -> float:
    """The rate ``optimizer`` applies at (0-based) ``step``."""
    schedule = optimizer.learning_rate
    if isinstance(schedule, tf_keras.optimizers.schedules.LearningRateSchedule):
        return float(schedule(step))
    return float(tf_keras.backend.get_value(schedule))


class LinearWarmupDecay(tf_keras.optimizers.schedules.LearningRateSchedule):
    """``transformers.get_linear_schedule_with_warmup``: 0 -> rate over warmup, then -> 0."""

    def __init__(self, learning_rate: float, num_warmup_steps: int, total_steps: int):
        super().__init__()
        self.learning_rate = learning_rate
        self.num_warmup_steps = num_warmup_steps
        self.total_steps = total_steps

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = tf.cast(self.num_warmup_steps, tf.float32)
        total = tf.cast(self.total_steps, tf.float32)
        rising = step / tf.maximum(1.0, warmup)
        falling = tf.maximum(0.0, (total - step) / tf.maximum(1.0, total - warmup))
        return self.learning_rate * tf.where(step < warmup, rising, falling)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "num_warmup_steps": self.num_warmup_steps,
                "total_steps": self.total_steps}


class DenseGradientsAdamW(legacy_adamw.AdamWeightDecay):
    """Model Garden's ``AdamWeightDecay`` (Model Maker's optimizer), given dense gradients.

    Why: Model Maker trains the encoder as a loaded TF Hub layer, whose embedding gradients
    reach the optimizer dense. Rebuilt natively as Keras layers (how bert_qa trains an encoder
    that records its shape, so that its dropout follows the seed), the embedding lookups give
    ``tf.IndexedSlices``, and three things would change: the global norm the gradients are
    clipped to sums squares per token occurrence instead of per row, Adam updates only the rows
    looked up (rows not in the batch keep their momentum unapplied), and replicas all-reduce
    the slices in another order (two processes would no longer train one process's model bit
    for bit). Made dense first, the arithmetic is the TF Hub layer's.
    """

    def apply_gradients(self, grads_and_vars, name=None, experimental_aggregate_gradients=True):
        grads_and_vars = [(self._dense(g, v), v) for g, v in grads_and_vars]
        return super().apply_gradients(grads_and_vars, name=name,
                                       experimental_aggregate_gradients=experimental_aggregate_gradients)

    @staticmethod
    def _dense(grad, var):
        return tf.convert_to_tensor(grad) if isinstance(grad, tf.IndexedSlices) else grad


class TorchAdamW(DenseGradientsAdamW):
    """``torch.optim.AdamW`` in Keras: epsilon after bias correction, decay before the step.

    Inherits Model Garden's weight-decay exclusions and gradient clipping; differs from it in
    two ways that PyTorch's AdamW has: ``denom = sqrt(v / (1 - b2^t)) + eps`` (Keras adds
    epsilon before correcting, which damps small gradients early in training), and the
    global norm is taken over dense gradients (for embedding lookups Keras would sum squares
    per occurrence of a token rather than per row). And, as ``nn.Embedding(padding_idx=0)``,
    the [PAD] row of the word embeddings gets no gradient.
    """

    @staticmethod
    def _dense(grad, var):
        if grad is None:
            return grad
        grad = DenseGradientsAdamW._dense(grad, var)
        if WORD_EMBEDDINGS in var.name:
            keep = tf.tensor_scatter_nd_update(tf.ones([tf.shape(grad)[0], 1], grad.dtype),
                                               [[PAD_TOKEN_ID]], tf.zeros([1, 1], grad.dtype))
            grad = grad * keep
        return grad

    def _resource_apply_dense(self, grad, var, apply_state=None):
        """PyTorch's AdamW step, in TensorFlow's fused Adam kernel.

        torch: ``p -= lr * wd * p``; ``m = b1 m + (1 - b1) g``; ``v = b2 v + (1 - b2) g^2``;
        ``p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)`` with ``bc = 1 - b^t``.
        ``ResourceApplyAdam`` computes ``p -= lr sqrt(bc2) / bc1 * m / (sqrt(v) + eps')``,
        the same step when ``eps' = eps sqrt(bc2)``. One kernel updates m, v and p in a few
        vectorised passes, where the same arithmetic written as TensorFlow ops took about a
        dozen kernels and temporaries per variable (the optimizer was 9% of a float32 step;
        issue 21). It rounds differently in the last bit (``m + (g - m)(1 - b1)``).
        """
        var_device, var_dtype = var.device, var.dtype.base_dtype
        coefficients = ((apply_state or {}).get((var_device, var_dtype))
                        or self._fallback_apply_state(var_device, var_dtype))
        lr = coefficients["lr_t"]  # the scheduled rate, before Adam's bias correction
        decay = self._decay_weights_op(var, lr, apply_state)  # p -= lr * wd * p, as torch
        with tf.control_dependencies([decay]):
            return tf.raw_ops.ResourceApplyAdam(
                var=var.handle, m=self.get_slot(var, "m").handle, v=self.get_slot(var, "v").handle,
                beta1_power=coefficients["beta_1_power"], beta2_power=coefficients["beta_2_power"],
                lr=lr, beta1=coefficients["beta_1_t"], beta2=coefficients["beta_2_t"],
                epsilon=coefficients["epsilon"] * tf.sqrt(1.0 - coefficients["beta_2_power"]),
                grad=grad, use_locking=self._use_locking)

    def _resource_apply_sparse(self, grad, var, indices, apply_state=None):
        dense = tf.math.unsorted_segment_sum(grad, indices, tf.shape(var)[0])
        return self._resource_apply_dense(dense, var, apply_state)
