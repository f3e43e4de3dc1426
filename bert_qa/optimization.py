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
        return model_garden_optimization.create_optimizer(learning_rate, total_steps, num_warmup_steps)
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


class TorchAdamW(legacy_adamw.AdamWeightDecay):
    """``torch.optim.AdamW`` in Keras: epsilon after bias correction, decay before the step.

    Inherits Model Garden's weight-decay exclusions and gradient clipping; differs from it in
    two ways that PyTorch's AdamW has: ``denom = sqrt(v / (1 - b2^t)) + eps`` (Keras adds
    epsilon before correcting, which damps small gradients early in training), and the
    global norm is taken over dense gradients (for embedding lookups Keras would sum squares
    per occurrence of a token rather than per row). And, as ``nn.Embedding(padding_idx=0)``,
    the [PAD] row of the word embeddings gets no gradient.
    """

    def apply_gradients(self, grads_and_vars, name=None, experimental_aggregate_gradients=True):
        grads_and_vars = [(self._torch_gradient(g, v), v) for g, v in grads_and_vars]
        return super().apply_gradients(grads_and_vars, name=name,
                                       experimental_aggregate_gradients=experimental_aggregate_gradients)

    @staticmethod
    def _torch_gradient(grad, var):
        if grad is None:
            return grad
        if isinstance(grad, tf.IndexedSlices):
            grad = tf.convert_to_tensor(grad)
        if WORD_EMBEDDINGS in var.name:
            keep = tf.tensor_scatter_nd_update(tf.ones([tf.shape(grad)[0], 1], grad.dtype),
                                               [[PAD_TOKEN_ID]], tf.zeros([1, 1], grad.dtype))
            grad = grad * keep
        return grad

    def _resource_apply_dense(self, grad, var, apply_state=None):
        var_device, var_dtype = var.device, var.dtype.base_dtype
        coefficients = ((apply_state or {}).get((var_device, var_dtype))
                        or self._fallback_apply_state(var_device, var_dtype))
        lr = coefficients["lr_t"]  # the scheduled rate, before Adam's bias correction
        m, v = self.get_slot(var, "m"), self.get_slot(var, "v")
        decay = self._decay_weights_op(var, lr, apply_state)  # p -= lr * wd * p, as torch
        with tf.control_dependencies([decay]):
            m_t = m.assign(coefficients["beta_1_t"] * m + coefficients["one_minus_beta_1_t"] * grad,
                           use_locking=self._use_locking)
            v_t = v.assign(coefficients["beta_2_t"] * v
                           + coefficients["one_minus_beta_2_t"] * tf.square(grad),
                           use_locking=self._use_locking)
            bias_correction1 = 1.0 - coefficients["beta_1_power"]
            bias_correction2 = 1.0 - coefficients["beta_2_power"]
            denom = tf.sqrt(v_t) / tf.sqrt(bias_correction2) + coefficients["epsilon"]
            return var.assign_sub(lr / bias_correction1 * m_t / denom, use_locking=self._use_locking)

    def _resource_apply_sparse(self, grad, var, indices, apply_state=None):
        dense = tf.math.unsorted_segment_sum(grad, indices, tf.shape(var)[0])
        return self._resource_apply_dense(dense, var, apply_state)
