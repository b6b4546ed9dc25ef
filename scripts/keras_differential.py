"""Adversarial differential test of nprnn's recurrent layers against Keras 3.  Run by hand.

TensorFlow and Keras are NOT dependencies of nprnn or of its tests: run this from a scratch
virtual environment that has them (plus nprnn's own dependencies), with the repository on
``PYTHONPATH``::

    KERASENV=path/to/scratch-venv    # tensorflow-cpu 2.21, keras 3.15, and nprnn's requirements
    PYTHONPATH=. TF_CPP_MIN_LOG_LEVEL=3 "$KERASENV/bin/python" scripts/keras_differential.py \
        [--configs 200] [--models 40] [--seed 0] [--backend numpy|numba|both]

It draws random small configurations and builds each in BOTH libraries, copies Keras' weights
into nprnn (``set_weights``), and compares, in float64 on both sides:

* eager layer calls ``layer(x, mask=..., initial_state=..., training=False)``: every returned
  array (output and states), and the gradients of ``L = sum_i sum(out_i * R_i)`` (fixed random
  R_i) with respect to the input, the initial states and every weight (Keras:
  ``tf.GradientTape``; nprnn: ``layer.backward`` and ``layer.grads``). Drawn over SimpleRNN,
  LSTM, GRU (reset_after True and False), activations, use_bias, return_sequences,
  return_state, go_backwards, zero_output_for_mask, initial_state, masks (pre, post, holes in
  the middle, all-masked rows, all-True), dropout rates with ``training=False``, Bidirectional
  (concat, sum, mul, ave, None) and edge sizes (T = 1, N = 1, units = 1);
* Sequential models ``Embedding(mask_zero=True)`` or ``Masking`` -> 1 to 3 recurrent layers
  (some Bidirectional, some go_backwards) -> ``Dense(1, sigmoid)``: predictions, and gradients
  of the binary cross-entropy with respect to every weight (the mask travelling between the
  layers);
* stateful layers over split sequences, the initial weights that the settings decide
  (``unit_forget_bias``), dropout's training-time semantics (one mask per sequence, 1/(1-p)
  scaling), and the error behaviour of invalid calls (where Keras raises, nprnn must raise too,
  naming the argument).

It prints one line per discrepancy and a summary; the exit status is 1 if any was found.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import nprnn  # noqa: E402

OUT_TOL = 1e-10
GRAD_TOL = 1e-9

ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear", None)
RECURRENT_ACTIVATIONS = ("sigmoid", "tanh", "relu", "linear")
MERGE_MODES = ("concat", "sum", "mul", "ave", None)


class Report:
    def __init__(self):
        self.counts = {}
        self.failures = []

    def count(self, section):
        self.counts[section] = self.counts.get(section, 0) + 1

    def fail(self, section, what, detail):
        self.failures.append((section, what, detail))
        print(f"DISCREPANCY [{section}] {what}: {detail}", flush=True)


def as_list(result):
    return list(result) if isinstance(result, (list, tuple)) else [result]


def max_rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return np.inf
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


# ------------------------------------------------------------------------------------------
# Random configurations
# ------------------------------------------------------------------------------------------
def random_mask(rng, N, T, kind):
    if kind == "pre":
        lengths = rng.integers(0, T + 1, size=N)
        return np.arange(T)[None, :] >= (T - lengths)[:, None]
    if kind == "post":
        lengths = rng.integers(0, T + 1, size=N)
        return np.arange(T)[None, :] < lengths[:, None]
    if kind == "mid":
        mask = rng.random((N, T)) > 0.4
        mask[0] = False  # one all-masked row
        return mask
    if kind == "all_true":
        return np.ones((N, T), bool)
    if kind == "all_false":
        return np.zeros((N, T), bool)
    return None


def random_layer_config(rng):
    kind = rng.choice(["SimpleRNN", "LSTM", "GRU", "GRU_before"])
    cfg = {"class": "GRU" if kind == "GRU_before" else str(kind),
           "units": int(rng.choice([1, 2, 3, 5])),
           "activation": ACTIVATIONS[rng.integers(len(ACTIVATIONS))],
           "use_bias": bool(rng.random() < 0.8),
           "return_sequences": bool(rng.random() < 0.5),
           "return_state": bool(rng.random() < 0.5),
           "go_backwards": bool(rng.random() < 0.4)}
    if rng.random() < 0.2:
        cfg["zero_output_for_mask"] = True
    if rng.random() < 0.2:
        cfg["dropout"] = 0.3
    if rng.random() < 0.2:
        cfg["recurrent_dropout"] = 0.4
    if kind != "SimpleRNN":
        cfg["recurrent_activation"] = str(rng.choice(RECURRENT_ACTIVATIONS))
    if kind == "LSTM":
        cfg["unit_forget_bias"] = bool(rng.random() < 0.5)
    if kind == "GRU_before":
        cfg["reset_after"] = False
    if kind == "GRU" and rng.random() < 0.3:
        cfg["reset_after"] = True
    if rng.random() < 0.15:
        cfg["cell"] = True  # RNN(<Class>Cell(...))
    if rng.random() < 0.15:
        cfg["unroll"] = True  # Keras' Python-unrolled loop; nprnn accepts and loops
    return cfg


_LAYER_KEYS = ("return_sequences", "return_state", "go_backwards", "stateful",
               "zero_output_for_mask", "unroll")


def make_rnn(k, cfg, **override):
    """The layer of ``cfg``; with ``cfg['cell']`` as ``RNN(<Class>Cell(...))``."""
    cfg = {**cfg, **override}
    args = {key: value for key, value in cfg.items() if key not in ("class", "cell")}
    if not cfg.get("cell"):
        return getattr(k.layers, cfg["class"])(**args)
    layer_args = {key: args.pop(key) for key in _LAYER_KEYS if key in args}
    cell = getattr(k.layers, cfg["class"] + "Cell")(**args)
    return k.layers.RNN(cell, **layer_args)


def unroll_quirk(cfg, bidi):
    """Keras' unrolled loop (``backend.rnn`` with ``unroll=True``) zeroes the masked outputs
    of a ``go_backwards`` layer with the mask in input order while its outputs are in
    reversed order (``zero_output_for_mask``, which Bidirectional forces with
    return_sequences), so it disagrees with Keras' own while-loop there. nprnn gives the
    loop's result: compare such layers with Keras' unroll=False."""
    reads_backwards = cfg.get("go_backwards") or bidi
    zero_output = cfg.get("zero_output_for_mask") or (bidi and cfg.get("return_sequences"))
    return bool(cfg.get("unroll") and reads_backwards and zero_output)


def make_layer(k, spec):
    cfg = spec["cfg"]
    if k is keras and unroll_quirk(cfg, spec["bidi"]):
        cfg = {**cfg, "unroll": False}
    layer = make_rnn(k, cfg)
    if spec["bidi"]:
        backward = None
        if spec.get("backward"):
            back = spec["backward"]
            if k is keras and unroll_quirk(back, True):
                back = {**back, "unroll": False}
            backward = make_rnn(k, back)
        return k.layers.Bidirectional(layer, merge_mode=spec["merge_mode"],
                                      backward_layer=backward)
    return layer


def random_eager_spec(rng):
    cfg = random_layer_config(rng)
    bidi = bool(rng.random() < 0.35)
    if bidi:
        cfg["go_backwards"] = False  # Keras refuses go_backwards=True inside Bidirectional
    backward = None
    if bidi and rng.random() < 0.3:
        # an explicit backward layer, possibly of another kind (Keras allows it)
        backward = random_layer_config(rng)
        backward.pop("cell", None)
        backward.update(go_backwards=True, return_sequences=cfg["return_sequences"],
                        return_state=cfg["return_state"], units=cfg["units"])
        if state_count(backward) != state_count(cfg) and cfg["return_state"]:
            backward["class"] = cfg["class"]
            backward.pop("unit_forget_bias", None)
            backward.pop("reset_after", None)
            if cfg["class"] == "SimpleRNN":
                backward.pop("recurrent_activation", None)
            else:
                backward.setdefault("recurrent_activation", "sigmoid")
    mixed_states = backward is not None and state_count(backward) != state_count(cfg)
    spec = {"cfg": cfg, "bidi": bidi, "backward": backward,
            "merge_mode": MERGE_MODES[rng.integers(len(MERGE_MODES))] if bidi else None,
            "N": int(rng.choice([1, 3, 4])), "T": int(rng.choice([1, 2, 5, 6])),
            "D": int(rng.choice([1, 2, 4])),
            "mask": rng.choice(["none", "none", "pre", "post", "mid", "all_true", "all_false"]),
            # Keras splits initial_state in halves: an LSTM beside a GRU cannot take one
            "initial_state": bool(rng.random() < 0.4) and not mixed_states,
            # training=True only where it changes nothing (no dropout anywhere)
            "training": bool(rng.random() < 0.2) and not any(
                c.get("dropout") or c.get("recurrent_dropout") for c in (cfg, backward or {})),
            "seed": int(rng.integers(1 << 30))}
    return spec


# ------------------------------------------------------------------------------------------
# Eager layer calls
# ------------------------------------------------------------------------------------------
def state_count(cfg):
    return 2 if cfg["class"] == "LSTM" else 1


def keras_eager(spec, x, mask, states, probes_rng):
    keras.utils.set_random_seed(spec["seed"])
    layer = make_layer(keras, spec)
    xv = tf.Variable(x)
    sv = [tf.Variable(s) for s in states]
    kwargs = {"training": spec["training"]}
    if mask is not None:
        kwargs["mask"] = tf.constant(mask)
    if sv:
        kwargs["initial_state"] = sv
    result = as_list(layer(xv, **kwargs))  # builds
    weights = layer.get_weights()
    probes = [probes_rng.normal(size=r.shape) for r in result]
    with tf.GradientTape() as tape:
        result = as_list(layer(xv, **kwargs))
        loss = tf.add_n([tf.reduce_sum(r * p) for r, p in zip(result, probes)])
    grads = tape.gradient(loss, [xv] + sv + list(layer.trainable_weights))
    grads = [np.zeros(v.shape) if g is None else tf.convert_to_tensor(g).numpy()
             for g, v in zip(grads, [xv] + sv + list(layer.trainable_weights))]
    dx, dstates, dweights = grads[0], grads[1:1 + len(sv)], grads[1 + len(sv):]
    return [r.numpy() for r in result], weights, probes, dx, dstates, dweights


def nprnn_eager(spec, x, mask, states, weights, probes):
    layer = make_layer(nprnn, spec)
    kwargs = {"training": spec["training"], "mask": mask}
    if states:
        kwargs["initial_state"] = [s.copy() for s in states]
    layer(x, **kwargs)  # builds
    layer.set_weights(weights)
    result = as_list(layer(x, **kwargs))
    doutputs = probes if len(probes) > 1 else probes[0]
    dx = layer.backward(doutputs, need_input_gradient=True)
    dweights = [g.copy() for g in layer.grads]
    if spec["bidi"]:
        dstates = list(layer.forward_layer.initial_state_gradients) + list(
            layer.backward_layer.initial_state_gradients)
    else:
        dstates = list(layer.initial_state_gradients)
    return result, dx, dstates if states else [], dweights


def run_eager(spec, report, section="eager", dtype="float64"):
    rng = np.random.default_rng(spec["seed"])
    N, T, D, cfg = spec["N"], spec["T"], spec["D"], spec["cfg"]
    x = rng.normal(size=(N, T, D)).astype(dtype)
    mask = random_mask(rng, N, T, spec["mask"])
    states = []
    if spec["initial_state"]:
        count = state_count(cfg) + (state_count(spec["backward"] or cfg) if spec["bidi"] else 0)
        states = [0.7 * rng.normal(size=(N, cfg["units"])).astype(dtype)
                  for _ in range(count)]
    label = describe(spec)
    try:
        k_out, weights, probes, k_dx, k_dstates, k_dw = keras_eager(
            spec, x, mask, states, np.random.default_rng(spec["seed"] + 1))
    except Exception as error:  # noqa: BLE001
        report.fail(section, label, f"Keras raised {type(error).__name__}: {error}")
        return
    if not all(np.isfinite(a).all() for a in [*k_out, k_dx, *k_dstates, *k_dw]):
        report.count(f"{section} skipped: Keras' numbers not finite")
        return
    try:
        n_out, n_dx, n_dstates, n_dw = nprnn_eager(spec, x, mask, states, weights, probes)
    except Exception as error:  # noqa: BLE001
        report.fail(section, label, f"nprnn raised where Keras did not: "
                                    f"{type(error).__name__}: {error}\n"
                    + traceback.format_exc(limit=4))
        return
    report.count(section)
    out_tol, grad_tol = (OUT_TOL, GRAD_TOL) if dtype == "float64" else (2e-5, 2e-4)
    wrong = [np.asarray(o).dtype for o in n_out if np.asarray(o).dtype != dtype]
    if wrong:
        report.fail(section, label, f"outputs of dtype {wrong}, expected {dtype}")
    compare_lists(report, section, label, "outputs", n_out, k_out, out_tol)
    compare_lists(report, section, label, "d input", [n_dx], [k_dx], grad_tol)
    compare_lists(report, section, label, "d initial_state", n_dstates, k_dstates, grad_tol)
    compare_lists(report, section, label, "d weights", n_dw, k_dw, grad_tol)


def compare_lists(report, section, label, what, got, expected, tol):
    if len(got) != len(expected):
        report.fail(section, label, f"{what}: nprnn returned {len(got)} arrays, Keras "
                                    f"{len(expected)}")
        return
    for i, (g, e) in enumerate(zip(got, expected)):
        if g is None:
            report.fail(section, label, f"{what}[{i}]: nprnn gave None")
            continue
        if np.shape(g) != np.shape(e):
            report.fail(section, label, f"{what}[{i}]: shape {np.shape(g)} vs Keras "
                                        f"{np.shape(e)}")
            continue
        err = max_rel(g, e)
        if not err <= tol:
            report.fail(section, label, f"{what}[{i}]: max rel err {err:.3e}")


def describe(spec):
    cfg = {k: v for k, v in spec["cfg"].items()}
    text = f"{cfg.pop('class')}({cfg})"
    if spec.get("bidi"):
        text = (f"Bidirectional({text}, merge_mode={spec['merge_mode']!r}, "
                f"backward_layer={spec.get('backward')})")
    extras = {k: spec[k] for k in ("N", "T", "D", "mask", "initial_state", "training", "seed")
              if k in spec}
    return f"{text} {extras}"


# ------------------------------------------------------------------------------------------
# Sequential models: masks travelling through stacks
# ------------------------------------------------------------------------------------------
def random_model_spec(rng):
    depth = int(rng.integers(1, 4))
    layers = []
    for position in range(depth):
        cfg = random_layer_config(rng)
        cfg.pop("return_state")
        cfg.pop("zero_output_for_mask", None)
        cfg.pop("dropout", None)
        cfg.pop("recurrent_dropout", None)
        # the last layer returns one vector: nprnn takes (N,) or (N, 1) targets only (Keras
        # would also mask a per-step loss with the sequence's mask)
        cfg["return_sequences"] = position < depth - 1
        bidi = bool(rng.random() < 0.3)
        if bidi:
            cfg["go_backwards"] = False
        layers.append({"cfg": cfg, "bidi": bidi,
                       "merge_mode": str(rng.choice(["concat", "sum", "mul", "ave"])),
                       # a per-step Dense or a Dropout after a sequence-returning layer: the
                       # mask passes through both in Keras
                       "then": str(rng.choice(["", "", "dense", "dropout"]))
                       if cfg["return_sequences"] else ""})
    plain = rng.random() < 0.3
    if plain:
        # what nprnn's fused route (numba backend) takes: default activations, biases,
        # forward reading, nothing between the recurrent layers; token ids, one-hot floats,
        # or an Embedding(mask_zero=True)
        for layer in layers:
            cfg = layer["cfg"]
            for key in ("activation", "recurrent_activation", "go_backwards", "unroll", "cell"):
                cfg.pop(key, None)
            if cfg["class"] == "GRU":
                cfg.pop("reset_after", None)
            cfg["use_bias"] = True
            layer.update(bidi=False, then="")
    return {"layers": layers, "input": str(rng.choice(["ids", "floats", "embedding"])) if plain else
            str(rng.choice(["embedding", "embedding", "masking"])),
            # between the mask's source and the first recurrent layer (the mask passes)
            "first": "" if plain else str(rng.choice(["", "", "dense", "dropout"])),
            "mask_value": float(rng.choice([0.0, 0.0, 0.5])),
            "pad": str(rng.choice(["pre", "post", "mid"])), "N": int(rng.choice([1, 4, 5])),
            "T": int(rng.choice([1, 3, 6])), "seed": int(rng.integers(1 << 30))}


V, E, F = 11, 3, 2
LR = 1e-2


def build_model(k, spec):
    if spec["input"] == "embedding":
        body = [k.Input((spec["T"],), dtype="int32"), k.layers.Embedding(V, E, mask_zero=True)]
    elif spec["input"] == "ids":
        body = [k.Input((spec["T"],), dtype="int32"), k.layers.Embedding(V, E)]
    elif spec["input"] == "floats":
        body = [k.Input((spec["T"], F))]
    else:
        body = [k.Input((spec["T"], F)), k.layers.Masking(mask_value=spec["mask_value"])]
    if spec["first"] == "dense":
        body.append(k.layers.Dense(3, activation="relu"))
    elif spec["first"] == "dropout":
        body.append(k.layers.Dropout(0.25))
    for layer in spec["layers"]:
        body.append(make_layer(k, layer))
        if layer["then"] == "dense":
            body.append(k.layers.Dense(2, activation="tanh"))
        elif layer["then"] == "dropout":
            body.append(k.layers.Dropout(0.5))
    body.append(k.layers.Dense(1, activation="sigmoid"))
    model = k.Sequential(body)
    model.compile(optimizer=k.optimizers.RMSprop(learning_rate=LR), loss="binary_crossentropy")
    return model


def model_data(spec, rng):
    N, T = spec["N"], spec["T"]
    mask = random_mask(rng, N, T, spec["pad"])
    if spec["pad"] == "mid" and N > 1:
        mask[-1] = True
    if spec["input"] in ("ids", "floats"):
        mask = np.ones((N, T), bool)
    if spec["input"] in ("embedding", "ids"):
        x = rng.integers(1, V, size=(N, T)).astype(np.int32) * mask
    else:
        x = np.where(mask[:, :, None], rng.normal(size=(N, T, F)), spec["mask_value"])
    y = rng.integers(0, 2, size=(N, 1)).astype(np.float64)
    return x, y


def run_model(spec, report):
    rng = np.random.default_rng(spec["seed"])
    x, y = model_data(spec, rng)
    label = f"model {spec}"
    try:
        keras.utils.set_random_seed(spec["seed"])
        model = build_model(keras, spec)
        weights = model.get_weights()
        k_pred = model(x, training=False).numpy()
        with tf.GradientTape() as tape:  # training=False: no Dropout layer noise
            loss = keras.losses.BinaryCrossentropy()(y, model(x, training=False))
        k_grads = [tf.convert_to_tensor(g).numpy()
                   for g in tape.gradient(loss, model.trainable_weights)]
    except Exception as error:  # noqa: BLE001
        report.fail("model", label, f"Keras raised {type(error).__name__}: {error}")
        return
    if not (np.isfinite(k_pred).all() and all(np.isfinite(g).all() for g in k_grads)):
        report.count("model skipped: Keras' numbers not finite (relu/linear cells blow up)")
        return
    try:
        twin = build_model(nprnn, spec)
        twin.set_weights(weights)
        n_pred = twin.predict(x, verbose=0)
        for layer in twin.layers:  # Keras' gradients were taken at training=False
            if isinstance(layer, nprnn.layers.Dropout):
                layer.rate = 0.0
        n_grads = twin.compute_gradients(x, y)
    except Exception as error:  # noqa: BLE001
        report.fail("model", label, f"nprnn raised {type(error).__name__}: {error}\n"
                    + traceback.format_exc(limit=4))
        return
    report.count("model")
    compare_lists(report, "model", label, "predict", [n_pred], [k_pred], OUT_TOL)
    compare_lists(report, "model", label, "gradients", n_grads, k_grads, GRAD_TOL)
    if spec["first"] != "dropout" and not any(
            layer["then"] == "dropout" for layer in spec["layers"]):
        # One RMSprop(rho=0.9, eps=1e-7) step from zero velocity with Keras' dense gradients:
        # v = 0.1 g^2, w -= lr g / sqrt(v + eps) (fit on one batch: the fused route if it fits).
        expected = [w - LR * g / np.sqrt(0.1 * g * g + 1e-7) for w, g in zip(weights, k_grads)]
        twin.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
        compare_lists(report, "model", label, "weights after one step", twin.get_weights(),
                      expected, GRAD_TOL)
        plan = nprnn._fused.plan_for(twin) if nprnn.config.backend() == "numba" else None
        if plan is not None and plan.accepts(x):
            # predict and the step ran the fused kernels
            kind = "masked" if spec["input"] == "embedding" else "unmasked"
            key = f"model (fused route, {kind})"
            report.counts[key] = report.counts.get(key, 0) + 1


# ------------------------------------------------------------------------------------------
# Stateful layers, initial weights, dropout semantics
# ------------------------------------------------------------------------------------------
def run_stateful(rng, report):
    for cls in ("SimpleRNN", "LSTM", "GRU"):
        for return_sequences in (False, True):
            N, T, D, H = 3, 6, 2, 3
            x = rng.normal(size=(N, T, D))
            cfg = {"class": cls, "units": H, "stateful": True, "return_state": True,
                   "return_sequences": return_sequences}
            keras.utils.set_random_seed(7)
            k_layer = make_rnn(keras, cfg)
            n_layer = make_rnn(nprnn, cfg)
            k_calls = [as_list(k_layer(x[:, :2]))]
            n_layer(x[:, :2])
            n_layer.set_weights(k_layer.get_weights())
            n_layer.reset_states()
            n_calls = [as_list(n_layer(x[:, :2]))]
            for piece in (x[:, 2:3], x[:, 3:]):
                k_calls.append(as_list(k_layer(piece)))
                n_calls.append(as_list(n_layer(piece)))
            k_layer.reset_states()
            n_layer.reset_states()
            k_calls.append(as_list(k_layer(x[:, :2])))
            n_calls.append(as_list(n_layer(x[:, :2])))
            label = f"stateful {cls} return_sequences={return_sequences}"
            report.count("stateful")
            for i, (n, k) in enumerate(zip(n_calls, k_calls)):
                compare_lists(report, "stateful", label, f"call {i}", n, [a.numpy() for a in k],
                              OUT_TOL)


def run_stateful_extras(rng, report):
    """Stateful layers with masks, with an initial_state, and inside Bidirectional."""
    N, T, D, H = 3, 6, 2, 2
    x = rng.normal(size=(N, T, D))
    mask = rng.random((N, T)) > 0.3
    h0 = [rng.normal(size=(N, H)) for _ in range(4)]
    for cls in ("LSTM", "GRU"):
        count = state_count({"class": cls})
        plans = {
            "mask": lambda layer, k, cls=cls: [layer(x[:, :3], mask=mask[:, :3]),
                                               layer(x[:, 3:], mask=mask[:, 3:])],
            "initial_state then carried": lambda layer, k, count=count: [
                layer(x[:, :3], initial_state=h0[:count]), layer(x[:, 3:])],
            "bidirectional": None,
        }
        for plan_name, plan in plans.items():
            results = []
            for k in (keras, nprnn):
                keras.utils.set_random_seed(11)
                # (Keras 3.15's Bidirectional.compute_mask fails on a stateful layer that
                # returns states: "unsupported operand type(s) for *: 'generator' and 'int'")
                cfg = {"class": cls, "units": H, "stateful": True,
                       "return_state": plan is not None, "return_sequences": True}
                layer = make_rnn(k, cfg)
                if plan is None:
                    layer = k.layers.Bidirectional(layer)
                layer(x[:, :3])
                if k is keras:
                    weights = layer.get_weights()
                else:
                    layer.set_weights(weights)
                layer.reset_states()
                if plan is None:
                    calls = [layer(x[:, :3]), layer(x[:, 3:])]
                    layer.reset_states()
                    calls.append(layer(x[:, 3:]))
                else:
                    calls = plan(layer, k)
                results.append([np.asarray(a) for call in calls for a in as_list(call)])
            report.count("stateful")
            compare_lists(report, "stateful", f"stateful {cls} {plan_name}", "outputs",
                          results[1], results[0], OUT_TOL)


def run_initial_weights(report):
    """What the settings decide in the initial weights (beyond random draws): biases."""
    for cfg in ({"class": "LSTM", "units": 3, "unit_forget_bias": True},
                {"class": "LSTM", "units": 3, "unit_forget_bias": False},
                {"class": "LSTM", "units": 3, "unit_forget_bias": True,
                 "bias_initializer": "ones"},
                {"class": "GRU", "units": 3}, {"class": "GRU", "units": 3, "reset_after": False},
                {"class": "SimpleRNN", "units": 3, "use_bias": False}):
        k_layer, n_layer = make_rnn(keras, cfg), make_rnn(nprnn, cfg)
        x = np.zeros((1, 2, 2))
        k_layer(x)
        n_layer(x)
        k_w, n_w = k_layer.get_weights(), n_layer.get_weights()
        report.count("initial weights")
        label = f"initial weights {cfg}"
        if [w.shape for w in k_w] != [w.shape for w in n_w]:
            report.fail("initial weights", label, f"shapes {[w.shape for w in n_w]} vs "
                                                  f"{[w.shape for w in k_w]}")
            continue
        if cfg.get("use_bias", True):
            compare_lists(report, "initial weights", label, "bias", [n_w[2]], [k_w[2]], 0.0)


def run_dropout_semantics(rng, report):
    """training=True: one mask per call shared by every step; E[output] scaling 1/(1-p)."""
    for cls in ("SimpleRNN", "LSTM", "GRU"):
        N, T, D, H = 400, 4, 3, 2
        x = np.repeat(rng.normal(size=(1, T, D)), N, axis=0)
        layer = make_rnn(nprnn, {"class": cls, "units": H, "dropout": 0.5,
                                 "return_sequences": True})
        layer(x)
        kernel = layer.get_weights()
        # A linear probe of the masking: with dropout on inputs only, sample n's output equals
        # the dropout-free layer's on x * m_n, where m_n (D,) is one mask for all steps. Find it.
        layer.cell.dropout = 0.5
        out = layer(x, training=True)
        free = make_rnn(nprnn, {"class": cls, "units": H, "return_sequences": True})
        free(x)
        free.set_weights(kernel)
        patterns = [np.array(bits) * 2.0 for bits in np.ndindex(*(2,) * D)]
        outputs = np.stack([free(x[:1] * p[None, None, :])[0] for p in patterns])
        matched = 0
        for n in range(N):
            errors = np.abs(outputs - out[n][None]).max(axis=(1, 2))
            matched += errors.min() < 1e-12
        report.count("dropout semantics")
        if matched != N:
            report.fail("dropout semantics", f"{cls}(dropout=0.5) training=True",
                        f"{N - matched} of {N} samples are not the dropout-free layer on "
                        "x * m with one mask m in {0, 2}^D for all steps")


# ------------------------------------------------------------------------------------------
# Error behaviour
# ------------------------------------------------------------------------------------------
def outcome(fn):
    try:
        fn()
    except Exception as error:  # noqa: BLE001
        return f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"
    return None


def error_cases():
    x3 = np.ones((2, 3, 4))
    return {
        "2-D input": lambda k: make_rnn(k, {"class": "LSTM", "units": 2})(np.ones((2, 3))),
        "4-D input": lambda k: make_rnn(k, {"class": "GRU", "units": 2})(np.ones((2, 3, 4, 1))),
        "initial_state wrong units": lambda k: make_rnn(k, {"class": "GRU", "units": 2})(
            x3, initial_state=[np.ones((2, 3))]),
        "initial_state wrong batch": lambda k: make_rnn(k, {"class": "SimpleRNN", "units": 2})(
            x3, initial_state=[np.ones((3, 2))]),
        "LSTM initial_state one array": lambda k: make_rnn(k, {"class": "LSTM", "units": 2})(
            x3, initial_state=[np.ones((2, 2))]),
        "LSTM initial_state three arrays": lambda k: make_rnn(k, {"class": "LSTM", "units": 2})(
            x3, initial_state=[np.ones((2, 2))] * 3),
        "mask wrong shape": lambda k: make_rnn(k, {"class": "LSTM", "units": 2})(
            x3, mask=np.ones((2, 4), bool)),
        "features change after build": lambda k: _call_twice(
            make_rnn(k, {"class": "LSTM", "units": 2}), x3, np.ones((2, 3, 5))),
        "Bidirectional initial_state 3 for LSTM": lambda k: k.layers.Bidirectional(
            make_rnn(k, {"class": "LSTM", "units": 2}))(x3, initial_state=[np.ones((2, 2))] * 3),
        "Bidirectional initial_state 1 for GRU": lambda k: k.layers.Bidirectional(
            make_rnn(k, {"class": "GRU", "units": 2}))(x3, initial_state=[np.ones((2, 2))]),
        "Bidirectional of go_backwards layer": lambda k: k.layers.Bidirectional(
            make_rnn(k, {"class": "LSTM", "units": 2, "go_backwards": True})),
        "Bidirectional backward_layer same direction": lambda k: k.layers.Bidirectional(
            make_rnn(k, {"class": "LSTM", "units": 2}),
            backward_layer=make_rnn(k, {"class": "LSTM", "units": 2})),
        "Bidirectional backward_layer return_sequences differ": lambda k: k.layers.Bidirectional(
            make_rnn(k, {"class": "LSTM", "units": 2}),
            backward_layer=make_rnn(k, {"class": "LSTM", "units": 2, "go_backwards": True,
                                        "return_sequences": True})),
        "Bidirectional backward_layer return_state differ": lambda k: k.layers.Bidirectional(
            make_rnn(k, {"class": "GRU", "units": 2}),
            backward_layer=make_rnn(k, {"class": "GRU", "units": 2, "go_backwards": True,
                                        "return_state": True})),
        "Bidirectional merge_mode 'max'": lambda k: k.layers.Bidirectional(
            make_rnn(k, {"class": "LSTM", "units": 2}), merge_mode="max"),
        "Bidirectional of a Dense": lambda k: k.layers.Bidirectional(k.layers.Dense(2)),
        "stateful batch size change": lambda k: _call_twice(
            make_rnn(k, {"class": "GRU", "units": 2, "stateful": True}), x3, np.ones((3, 3, 4))),
        "float mask (0.0/1.0)": lambda k: make_rnn(k, {"class": "LSTM", "units": 2})(
            x3, mask=np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])),
        "GRU initial_state as one array": lambda k: make_rnn(k, {"class": "GRU", "units": 2})(
            x3, initial_state=np.ones((2, 2))),
        "int inputs": lambda k: make_rnn(k, {"class": "SimpleRNN", "units": 2})(
            np.ones((2, 3, 4), dtype="int32")),
        "zero timesteps": lambda k: make_rnn(k, {"class": "SimpleRNN", "units": 2})(
            np.ones((2, 0, 4))),
        "zero samples": lambda k: make_rnn(k, {"class": "LSTM", "units": 2})(
            np.ones((0, 3, 4))),
        "dropout=1.0": lambda k: make_rnn(k, {"class": "LSTM", "units": 2, "dropout": 1.0})(
            x3, training=True),
        "dropout=-0.1": lambda k: make_rnn(k, {"class": "LSTM", "units": 2, "dropout": -0.1}),
        "stateful with initial_state": lambda k: make_rnn(
            k, {"class": "GRU", "units": 2, "stateful": True})(
            x3, initial_state=[np.ones((2, 2))]),
        "units=0": lambda k: make_rnn(k, {"class": "LSTM", "units": 0}),
        "units=-1": lambda k: make_rnn(k, {"class": "LSTM", "units": -1}),
        "unknown activation": lambda k: make_rnn(k, {"class": "SimpleRNN", "units": 2,
                                                     "activation": "nope"}),
    }


def _call_twice(layer, first, second):
    layer(first)
    layer(second)


# Differences nprnn keeps on purpose (a clear error or a usable result instead of Keras').
KNOWN = {
    "zero samples": "Keras fails inside its loop (InvalidArgumentError); nprnn returns an "
                    "empty (0, units) output",
    "dropout=1.0": "Keras clips the rate to [0, 1] and LSTM/GRU then drop nothing (strict "
                   "'< 1.0' test); nprnn refuses a rate outside [0, 1)",
    "dropout=-0.1": "Keras clips the rate to 0; nprnn refuses a rate outside [0, 1)",
}


def run_errors(report):
    for name, case in error_cases().items():
        k_result = outcome(lambda case=case: case(keras))
        n_result = outcome(lambda case=case: case(nprnn))
        report.count("errors")
        print(f"  error case {name!r}:\n    Keras: {k_result}\n    nprnn: {n_result}")
        if name in KNOWN:
            print(f"    known difference: {KNOWN[name]}")
        elif k_result and not n_result:
            report.fail("errors", name, f"Keras raises ({k_result}), nprnn does not")
        elif n_result and not k_result:
            report.fail("errors", name, f"nprnn raises ({n_result}), Keras does not")


# ------------------------------------------------------------------------------------------
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=200)
    parser.add_argument("--models", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", choices=("numpy", "numba", "both"), default="numpy")
    parser.add_argument("--sections",
                        default="eager,model,stateful,weights,dropout,float32,errors")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    keras.config.set_floatx("float64")
    nprnn.config.set_floatx("float64")
    sections = set(args.sections.split(","))
    report = Report()
    backends = ("numpy", "numba") if args.backend == "both" else (args.backend,)
    rng = np.random.default_rng(args.seed)
    eager_specs = [random_eager_spec(rng) for _ in range(args.configs)]
    model_specs = [random_model_spec(rng) for _ in range(args.models)]
    for backend in backends:
        nprnn.config.set_backend(backend)
        print(f"--- backend {backend}", flush=True)
        if "eager" in sections:
            for spec in eager_specs:
                run_eager(spec, report, f"eager/{backend}")
        if "model" in sections:
            for spec in model_specs:
                run_model(spec, report)
        if "stateful" in sections:
            run_stateful(np.random.default_rng(args.seed + 1), report)
            run_stateful_extras(np.random.default_rng(args.seed + 3), report)
        if "dropout" in sections:
            run_dropout_semantics(np.random.default_rng(args.seed + 2), report)
    if "float32" in sections:
        # Keras' default float32 against nprnn's float32, with float32 tolerances.
        keras.config.set_floatx("float32")
        keras.config.set_dtype_policy("float32")  # set_floatx alone keeps the old policy
        nprnn.config.set_floatx("float32")
        for backend in backends:
            nprnn.config.set_backend(backend)
            for spec in eager_specs[: max(1, len(eager_specs) // 4)]:
                run_eager(spec, report, f"float32/{backend}", dtype="float32")
        keras.config.set_floatx("float64")
        keras.config.set_dtype_policy("float64")
        nprnn.config.set_floatx("float64")
    if "weights" in sections:
        run_initial_weights(report)
    if "errors" in sections:
        run_errors(report)
    print(f"\nconfigurations compared: {report.counts}")
    print(f"discrepancies: {len(report.failures)}")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
