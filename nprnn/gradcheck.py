r"""Centred-difference gradient checks that learners can run on any layer or model.

The derivative of a scalar function f with respect to one entry w_i is estimated as

.. math:: \frac{\partial f}{\partial w_i} \approx \frac{f(w + h e_i) - f(w - h e_i)}{2h},

whose error is O(h^2). Compare it with the analytic gradient through the relative error of
CS231n, ``max|a - b| / max(1e-8, max(|a| + |b|))``; in float64 with h = 1e-6 a correct
backward pass gives about 1e-8 or less. Run checks in float64
(``nprnn.config.set_floatx('float64')`` before building the layer or model): float32
rounding alone gives errors near 1e-3.
"""

from __future__ import annotations

import numpy as np

from nprnn import _random


def rel_error(analytic, numeric) -> float:
    """``max|a - b| / max(1e-8, max(|a| + |b|))``: 0 for equal arrays, ~1 for unrelated ones."""
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    if analytic.shape != numeric.shape:
        raise ValueError(f"analytic, numeric: shapes differ, {analytic.shape} vs {numeric.shape}")
    if analytic.size == 0:
        return 0.0
    scale = max(1e-8, float(np.max(np.abs(analytic) + np.abs(numeric))))
    return float(np.max(np.abs(analytic - numeric))) / scale


def numerical_gradient(f, array, h=1e-6):
    """Centred-difference gradient of the scalar ``f()`` with respect to ``array``.

    ``array`` is perturbed in place, one entry at a time, and restored exactly; ``f`` takes
    no arguments and must read ``array`` (a weight, an input). Returns float64 of its shape.
    """
    if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
        raise TypeError("array: expected a float ndarray to perturb in place")
    gradient = np.zeros(array.shape, dtype=np.float64)
    iterator = np.nditer(array, flags=["multi_index"])
    for _ in iterator:
        index = iterator.multi_index
        saved = array[index].copy()
        array[index] = saved + h
        plus = float(f())
        array[index] = saved - h
        minus = float(f())
        array[index] = saved
        gradient[index] = (plus - minus) / (2 * h)
    return gradient


def check_layer(layer, inputs, upstream=None, h=1e-6, seed=0):
    """Relative errors of a layer's backward pass, for every weight and the input.

    The scalar checked is ``sum(layer.forward(inputs) * upstream)`` with a random
    ``upstream`` gradient, so every output entry matters. The layer must be built. Returns
    ``{weight name: error, 'input': error}`` ('input' only for float inputs).
    """
    rng = np.random.default_rng(seed)
    float_input = isinstance(inputs, np.ndarray) and inputs.dtype.kind == "f"

    def forward():
        out = layer.forward(inputs)
        return np.asarray(out.materialize(layer.dtype) if hasattr(out, "materialize") else out)

    if upstream is None:
        upstream = rng.standard_normal(forward().shape)

    def objective():
        return float(np.sum(forward() * upstream))

    objective()
    dinputs = layer.backward(upstream.astype(layer.dtype), need_input_gradient=float_input)
    analytic = [g.copy() for g in layer.grads]
    errors = {name: rel_error(a, numerical_gradient(objective, w, h))
              for name, a, w in zip(layer.weight_names, analytic, layer.weights)}
    if float_input:
        errors["input"] = rel_error(dinputs, numerical_gradient(objective, inputs, h))
    return errors


def check_model(model, x, y, h=1e-6, seed=None):
    """Relative error of every gradient of a compiled model's mean loss on (x, y).

    The loss is taken in training mode. Dropout draws its masks from nprnn's generator: with
    ``seed``, the generator is re-seeded before every evaluation, so that the analytic and
    every numerical evaluation see the same masks. Returns ``{'layer/weight': error}`` in
    ``get_weights()`` order.
    """
    def reseed():
        if seed is not None:
            _random.set_seed(seed)

    reseed()
    analytic = model.compute_gradients(x, y)
    prepared = model._prepare_x(x)
    targets = model._prepare_y(y, len(prepared))
    inputs = model._batch(prepared, slice(None))

    def loss():
        reseed()
        return model._loss_and_backward(inputs, targets)[0]

    names = [f"{layer.name}/{n}" for layer in model.layers for n in layer.weight_names]
    return {name: rel_error(a, numerical_gradient(loss, w, h))
            for name, a, w in zip(names, analytic, model.weights)}
