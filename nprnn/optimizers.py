r"""Optimizers with Keras' update rules, updating weights in place.

An optimizer holds one slot array per weight (created on the first step) and a step counter
``iterations``. Before the update, gradients may be clipped, as Keras' ``clipvalue``
(elementwise to [-c, c]), ``clipnorm`` (each gradient rescaled to norm <= c) and
``global_clipnorm`` (all gradients rescaled together to global norm <= c).
"""

from __future__ import annotations

import math

import numpy as np

from nprnn import kernels
from nprnn._validation import check_bool, check_float, check_str


class Optimizer:
    """Base class: clipping, slots, ``apply(weights, grads)``, state for saving."""

    slot_names: tuple[str, ...] = ()

    def __init__(self, learning_rate, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 name=None):
        self.learning_rate = check_float(learning_rate, "learning_rate", low=0.0)
        if clipnorm is not None and global_clipnorm is not None:
            raise ValueError(
                "clipnorm, global_clipnorm: expected at most one of them, got both "
                f"({clipnorm}, {global_clipnorm})"
            )
        self.clipnorm = None if clipnorm is None else check_float(
            clipnorm, "clipnorm", low=0.0, low_open=True)
        self.clipvalue = None if clipvalue is None else check_float(
            clipvalue, "clipvalue", low=0.0, low_open=True)
        self.global_clipnorm = None if global_clipnorm is None else check_float(
            global_clipnorm, "global_clipnorm", low=0.0, low_open=True)
        self.name = type(self).__name__.lower() if name is None else check_str(name, "name")
        self.iterations = 0
        self.slots: dict[str, list[np.ndarray]] = {}

    def build(self, weights):
        """Create zero slots shaped like ``weights``."""
        self.slots = {name: [np.zeros(w.shape, w.dtype) for w in weights]
                      for name in self.slot_names}

    def clip(self, grads):
        """Apply clipvalue, clipnorm and global_clipnorm, in that order; returns new arrays."""
        if self.clipvalue is not None:
            grads = [np.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        if self.clipnorm is not None:
            grads = [g * min(1.0, self.clipnorm / max(np.sqrt(np.sum(g * g)), 1e-30))
                     for g in grads]
        if self.global_clipnorm is not None:
            norm = np.sqrt(sum(float(np.sum(g * g)) for g in grads))
            scale = min(1.0, self.global_clipnorm / max(norm, 1e-30))
            grads = [g * scale for g in grads]
        return grads

    def apply(self, weights, grads):
        """Update every weight in place from its gradient (same order, same shapes).

        Returns True; or False, changing nothing (weights, slots, ``iterations``), when the
        step would produce a NaN or an infinity anywhere.
        """
        weights, grads = list(weights), list(grads)
        if len(weights) != len(grads):
            raise ValueError(f"grads: expected one gradient per weight ({len(weights)}), got "
                             f"{len(grads)}")
        for position, (weight, grad) in enumerate(zip(weights, grads)):
            if not isinstance(weight, np.ndarray) or weight.dtype.kind != "f":
                raise TypeError(f"weights: item {position} must be a float ndarray (updated in "
                                f"place), got {type(weight).__name__}")
            if np.shape(grad) != weight.shape:
                raise ValueError(f"grads: item {position} has shape {np.shape(grad)}, its weight "
                                 f"{weight.shape}")
        if self.slots and any(len(values) != len(weights) for values in self.slots.values()):
            raise ValueError(f"weights: this optimizer holds state for "
                             f"{len(next(iter(self.slots.values())))} weights, got "
                             f"{len(weights)}; use a new optimizer for another model")
        built_now = not self.slots and bool(self.slot_names)
        if built_now:
            self.build(weights)
        if self.clipvalue is not None or self.clipnorm is not None or self.global_clipnorm:
            grads = self.clip(grads)
        # Stage every new value first and write them only if all are finite, so that a step
        # that overflows leaves weights, slots and ``iterations`` exactly as they were.
        self.iterations += 1
        staged = []
        for index, (weight, grad) in enumerate(zip(weights, grads)):
            staged.extend(self.update(index, weight, grad))
        if not all(_is_finite(new_value) for _, new_value in staged):
            self.iterations -= 1
            if built_now:
                self.slots = {}
            return False
        for target, new_value in staged:
            target[...] = new_value
        return True

    def update(self, index, weight, grad):
        """New values for one weight and its slots: a list of ``(array, new value)`` pairs.

        Pure: the arrays are written by :meth:`apply` once every new value is known finite.
        """
        raise NotImplementedError

    # -- saving --------------------------------------------------------------------------
    def get_config(self):
        config = {"name": self.name, "learning_rate": self.learning_rate}
        for key in ("clipnorm", "clipvalue", "global_clipnorm"):
            if getattr(self, key) is not None:
                config[key] = getattr(self, key)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_state(self):
        """``{'iterations': int, slot name: [arrays]}``, for saving."""
        return {"iterations": self.iterations, **{k: list(v) for k, v in self.slots.items()}}

    def set_state(self, state, weights):
        """Restore what :meth:`get_state` returned, checking shapes against ``weights``."""
        self.iterations = int(state["iterations"])
        if not self.slot_names or all(not state.get(name) for name in self.slot_names):
            return
        self.build(weights)
        for name in self.slot_names:
            values = state[name]
            if len(values) != len(weights):
                raise ValueError(
                    f"optimizer state: {name} has {len(values)} arrays for {len(weights)} weights"
                )
            for slot, value in zip(self.slots[name], values):
                if np.shape(value) != slot.shape:
                    raise ValueError(f"optimizer state: {name} shape {np.shape(value)} does "
                                     f"not match the weight's {slot.shape}")
                slot[...] = value


class RMSprop(Optimizer):
    r"""RMSprop, Keras' rule (``keras/src/optimizers/rmsprop.py``).

    .. math::

        v &\leftarrow \rho v + (1-\rho) g^2 \\
        w &\leftarrow w - \eta\, g / \sqrt{v + \epsilon}

    Epsilon sits *inside* the square root, as in Keras 3 and TensorFlow's fused
    ``ApplyRMSProp``; tf.keras 2.x with ``momentum=0`` (the book's TF 2.3) and PyTorch's
    ``torch.optim.RMSprop`` add it outside, :math:`g/(\sqrt v + \epsilon)` (PyTorch calls rho
    ``alpha``). The two forms are far apart wherever :math:`v` is not much larger than
    :math:`\epsilon` (with eps = 1e-7: 5% at v = 1e-6, a factor 3.3 at v = 1e-8), which is
    the case for small gradients early in training; on the book's models, runs over 11
    seeds with either form gave best validation accuracies within 0.004 of each other.

    Embedding gradients (a known difference from Keras 3 on TensorFlow). nprnn applies the
    gradient of an Embedding as one dense (V, E) array: a row whose token occurs k times in
    the batch gets :math:`g = \sum_i g_i`, and the accumulator takes the square of that true
    gradient, :math:`v \leftarrow \rho v + (1-\rho)(\sum_i g_i)^2`. Keras 3 with the TensorFlow
    backend hands RMSprop the embedding's ``IndexedSlices`` (one row per token occurrence,
    duplicates kept) and its ops square each slice before the duplicates are summed, so its
    accumulator takes the *sum of the squares*, :math:`(1-\rho)\sum_i g_i^2`, while the step
    still uses :math:`\sum_i g_i` (``model.fit`` and ``train_on_batch`` do this; verified by
    ``tests/fixtures/make_keras_fixtures.py``, docs/keras_reference.md section 4). On the
    fixture batch after one step the velocities differ by up to 3.1e-2 and the embeddings by
    up to 3.1e-4 (about :math:`\eta\sqrt{10}`), only on the 98 of 295 touched rows whose token
    repeats (padding id 0 among them); rows seen once and all other weights are identical.
    nprnn keeps the dense rule because it is RMSprop applied to the gradient of the loss,
    whatever data structure carries it: the book's one-hot model, whose SimpleRNN kernel
    gets the same row sums as a dense array, follows the same rule in Keras too; tf.keras 2.x
    (the book's TF 2.3) sums duplicate indices before its sparse update and so agrees with
    nprnn; and the result does not depend on how tokens happen to repeat within a batch.
    ``tests/test_keras_parity.py`` checks nprnn against Keras' steps taken with dense
    gradients (``emb_step1_*``/``emb_step3_*`` in ``keras_parity.npz``); the fixture's
    ``emb_sparse_step*`` keys hold what Keras 3's ``fit`` does instead.

    Parameters
    ----------
    learning_rate : float, default 0.001 (the book uses 1e-4)
    rho : float in [0, 1), default 0.9
    epsilon : float > 0, default 1e-7
    clipnorm, clipvalue, global_clipnorm : float, optional
    """

    slot_names = ("velocity",)

    def __init__(self, learning_rate=0.001, rho=0.9, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho = check_float(rho, "rho", low=0.0, high=1.0, high_open=True)
        self.epsilon = check_float(epsilon, "epsilon", low=0.0, low_open=True)

    def update(self, index, weight, grad):
        velocity = self.slots["velocity"][index]
        new_weight, new_velocity = kernels.active().rmsprop_update(
            weight, grad, velocity, self.learning_rate, self.rho, self.epsilon)
        return [(weight, new_weight), (velocity, new_velocity)]

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional momentum, Keras' rule.

    Without momentum :math:`w \leftarrow w - \eta g`. With momentum :math:`\mu`:
    :math:`m \leftarrow \mu m - \eta g;\ w \leftarrow w + m` (Nesterov:
    :math:`w \leftarrow w + \mu m - \eta g`).
    """

    slot_names = ("momentum",)

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.momentum = check_float(momentum, "momentum", low=0.0, high=1.0)
        self.nesterov = check_bool(nesterov, "nesterov")

    def update(self, index, weight, grad):
        if self.momentum == 0:
            return [(weight, weight - self.learning_rate * grad)]
        velocity = self.slots["momentum"][index]
        new_velocity = self.momentum * velocity - self.learning_rate * grad
        if self.nesterov:
            new_weight = weight + self.momentum * new_velocity - self.learning_rate * grad
        else:
            new_weight = weight + new_velocity
        return [(weight, new_weight), (velocity, new_velocity)]

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    r"""Adam, Keras' rule (``keras/src/optimizers/adam.py``), at step t = iterations:

    .. math::

        m &\leftarrow m + (1-\beta_1)(g - m), \quad v \leftarrow v + (1-\beta_2)(g^2 - v) \\
        w &\leftarrow w - \eta \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,
              \frac{m}{\sqrt v + \epsilon}

    (epsilon outside the root here, as in Keras' Adam.)
    """

    slot_names = ("momentum", "velocity")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = check_float(beta_1, "beta_1", low=0.0, high=1.0, high_open=True)
        self.beta_2 = check_float(beta_2, "beta_2", low=0.0, high=1.0, high_open=True)
        self.epsilon = check_float(epsilon, "epsilon", low=0.0, low_open=True)

    def update(self, index, weight, grad):
        m = self.slots["momentum"][index]
        v = self.slots["velocity"][index]
        t = self.iterations
        new_m = m + (1 - self.beta_1) * (grad - m)
        new_v = v + (1 - self.beta_2) * (grad * grad - v)
        step = self.learning_rate * np.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        new_weight = weight - step * new_m / (np.sqrt(new_v) + self.epsilon)
        return [(weight, new_weight), (m, new_m), (v, new_v)]

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


def _is_finite(array) -> bool:
    """True if every entry is finite: one float64 sum, which is finite exactly then.

    A float32 array cannot overflow a float64 sum; a float64 one can only with entries near
    1e300, which are as unusable as an infinity.
    """
    return math.isfinite(np.add.reduce(array, axis=None, dtype=np.float64))


_BY_NAME = {"rmsprop": RMSprop, "sgd": SGD, "adam": Adam}
_CLASSES = {cls.__name__: cls for cls in (RMSprop, SGD, Adam)}


def get(identifier):
    """An optimizer from a name ('rmsprop', 'adam', 'sgd') or an instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        raise TypeError(f"optimizer: got the class {identifier.__name__}; pass an instance "
                        f"such as {identifier.__name__}() or a name from {sorted(_BY_NAME)}")
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(
        f"optimizer: expected one of {sorted(_BY_NAME)} or an Optimizer, got {identifier!r}"
    )


def deserialize(class_name, config):
    if class_name not in _CLASSES:
        raise ValueError(f"optimizer class: expected one of {sorted(_CLASSES)}, got {class_name!r}")
    return _CLASSES[class_name].from_config(config)
