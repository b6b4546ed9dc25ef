r"""Pictures of the chapter, and the numbers behind them.

Plot helpers (each takes an output path, writes a PNG there atomically, creating folders as
needed, and returns the path as a :class:`pathlib.Path`):

=================================  ===============================================================
:func:`plot_history`               train / validation curves per epoch (the book's loss plot)
:func:`plot_history_comparison`    one metric of several runs, optionally with a reference band
:func:`plot_length_histogram`      review lengths, with mean, median and ``maxlen`` marked
:func:`plot_gradient_norms`        :math:`\lVert\partial L/\partial h_t\rVert` against the step t
:func:`plot_hidden_states`         the hidden state of the cell over one review, as a heat map
:func:`plot_embedding_pca`         a word-embedding table projected to 2-D by PCA, words labelled
=================================  ===============================================================

The figures are drawn on :class:`matplotlib.figure.Figure` objects with Matplotlib's Agg
renderer, never through ``pyplot``: no window opens, no display is needed, and the global
``pyplot`` state (current figure, backend) of the caller is left alone.

Numbers for people who study the maths, for the chapter's models (an optional
``Embedding``, then a ``SimpleRNN``, ``LSTM`` or ``GRU``, then
``Dense(1, activation='sigmoid')``), computed in float64 by the layers' own forward and
backward passes on float64 copies of the model's layers:

* :func:`rnn_hidden_states`: every hidden state :math:`h_1 \dots h_T` of the cell;
* :func:`hidden_state_gradients`: :math:`\partial \ell_n / \partial h_t` for every review n
  and step t, where :math:`\ell_n` is review n's own binary cross-entropy (SimpleRNN and
  LSTM);
* :func:`word_effects`: how much each word moves the model's output when it is the last word
  read, averaged over real reviews.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np

from nprnn import kernels
from nprnn._validation import as_array, as_float_array, as_token_ids
from nprnn.layers import RNN, Dense, Embedding, GRUCell
from nprnn.utils.categorical import SparseOneHot

__all__ = [
    "plot_history",
    "plot_history_comparison",
    "plot_length_histogram",
    "plot_gradient_norms",
    "plot_hidden_states",
    "plot_embedding_pca",
    "rnn_hidden_states",
    "hidden_state_gradients",
    "word_effects",
]


# --------------------------------------------------------------------------------------
# Figure plumbing
# --------------------------------------------------------------------------------------
def _new_figure(figsize):
    """A Figure with the Agg canvas, outside pyplot (no display, no global state)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:  # pragma: no cover - matplotlib is a dependency
        raise ImportError("nprnn.plotting needs matplotlib: pip install matplotlib") from error
    figure = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path, dpi=110) -> Path:
    """Write ``figure`` as PNG to ``path`` atomically; return the path."""
    from nprnn._io import atomic_open

    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a file path, got {type(path).__name__}")
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise ValueError(f"path: expected a .png file name, got {str(target)!r}")
    with atomic_open(target, "wb") as handle:
        figure.savefig(handle, format="png", dpi=dpi)
    return target


def _history_dict(history) -> dict:
    """``History.history`` or a plain mapping of metric name -> list of values per epoch."""
    values = getattr(history, "history", history)
    if not isinstance(values, Mapping):
        raise TypeError("history: expected a History (what fit returns) or a dict of lists, "
                        f"got {type(history).__name__}")
    return {key: np.asarray(value, dtype=float) for key, value in values.items()}


# --------------------------------------------------------------------------------------
# Training curves
# --------------------------------------------------------------------------------------
def plot_history(history, path, metrics=("loss",), best_epoch=None, title=None) -> Path:
    """Train and validation curves per epoch, one panel per metric (the book's loss plot).

    Parameters
    ----------
    history : History or dict
        What ``model.fit`` returns, or its ``.history`` dict (``'loss'``, ``'val_loss'``...).
    path : str or Path
        Output PNG.
    metrics : sequence of str, default ('loss',)
        Each panel plots ``metric`` ('train') and ``'val_' + metric`` ('val') when present.
    best_epoch : int, optional
        Epoch (counted from 1) to mark with a vertical line, e.g. the one EarlyStopping kept.
    title : str, optional

    Returns
    -------
    pathlib.Path
    """
    values = _history_dict(history)
    if isinstance(metrics, str):
        metrics = (metrics,)
    missing = [m for m in metrics if m not in values and f"val_{m}" not in values]
    if missing:
        raise ValueError(f"metrics: {missing} not in the history (it has {sorted(values)})")
    figure = _new_figure((5.5 * len(metrics), 4))
    axes = np.atleast_1d(figure.subplots(1, len(metrics)))
    for axis, metric in zip(axes, metrics):
        for key, label in ((metric, "train"), (f"val_{metric}", "val")):
            if key in values:
                epochs = np.arange(1, len(values[key]) + 1)
                axis.plot(epochs, values[key], marker="." if len(epochs) < 40 else None,
                          label=label)
        if best_epoch is not None:
            axis.axvline(best_epoch, color="grey", linestyle=":", label=f"best epoch {best_epoch}")
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.legend()
        axis.grid(alpha=0.3)
    if title:
        figure.suptitle(title)
    return _save(figure, path)


def plot_history_comparison(histories, path, metric="val_accuracy", band=None,
                            title=None) -> Path:
    """One metric per epoch for several runs, e.g. the one-hot and the embedding model.

    Parameters
    ----------
    histories : mapping of label -> History or dict
    path : str or Path
    metric : str, default 'val_accuracy'
    band : (low, high, label), optional
        A horizontal band to shade, e.g. the range of the book's best validation accuracies.
    title : str, optional
    """
    if not isinstance(histories, Mapping) or not histories:
        raise ValueError("histories: expected a non-empty mapping of label -> history")
    figure = _new_figure((7, 4.5))
    axis = figure.subplots()
    for label, history in histories.items():
        values = _history_dict(history)
        if metric not in values:
            raise ValueError(f"metric: {metric!r} not in the history of {label!r} "
                             f"(it has {sorted(values)})")
        axis.plot(np.arange(1, len(values[metric]) + 1), values[metric], label=label)
    if band is not None:
        low, high, band_label = band
        axis.axhspan(low, high, color="tab:green", alpha=0.15, label=band_label)
    axis.set_xlabel("epoch")
    axis.set_ylabel(metric)
    axis.grid(alpha=0.3)
    axis.legend()
    if title:
        axis.set_title(title)
    return _save(figure, path)


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------
def plot_length_histogram(lengths, path, maxlen=None, bins=50, title=None) -> Path:
    """Histogram of review lengths with the mean, the median and ``maxlen`` marked.

    Parameters
    ----------
    lengths : 1-D array-like of int
        ``[len(x) for x in train_input]`` (the book's mean 239.0, median 178).
    path : str or Path
    maxlen : int, optional
        The ``pad_sequences`` length; the share of reviews it cuts is put in the legend.
    bins : int, default 50
    title : str, optional
    """
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or lengths.size == 0:
        raise ValueError(f"lengths: expected a non-empty 1-D array, got shape {lengths.shape}")
    figure = _new_figure((7, 4.5))
    axis = figure.subplots()
    axis.hist(lengths, bins=bins, color="tab:blue", alpha=0.8)
    mean, median = float(np.mean(lengths)), float(np.median(lengths))
    axis.axvline(mean, color="tab:red", label=f"mean {mean:.1f}")
    axis.axvline(median, color="tab:orange", linestyle="--", label=f"median {median:.0f}")
    if maxlen is not None:
        cut = float(np.mean(lengths > maxlen))
        axis.axvline(maxlen, color="black", linestyle=":",
                     label=f"maxlen {maxlen} ({cut:.0%} of reviews are cut)")
    axis.set_xlabel("length")
    axis.set_ylabel("frequency")
    axis.legend()
    if title:
        axis.set_title(title)
    return _save(figure, path)


# --------------------------------------------------------------------------------------
# Inside the network
# --------------------------------------------------------------------------------------
def plot_gradient_norms(curves, path, bands=None, log_scale=True, title=None,
                        ylabel=r"$\Vert\partial\ell/\partial h_t\Vert$") -> Path:
    r"""Curves of a gradient norm against the time step t = 1 .. T.

    Parameters
    ----------
    curves : mapping of label -> 1-D array of length T
        For instance the mean over reviews of :math:`\lVert\partial\ell_n/\partial h_t\rVert`
        (see :func:`hidden_state_gradients`) for a trained and an untrained model.
    path : str or Path
    bands : mapping of label -> (low, high) arrays of length T, optional
        A spread to shade around the curve of the same label (e.g. the 10th and 90th
        percentiles over reviews).
    log_scale : bool, default True
        A straight line on a log scale is a geometric decay: vanishing gradients.
    """
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("curves: expected a non-empty mapping of label -> 1-D array")
    figure = _new_figure((8, 4.5))
    axis = figure.subplots()
    bands = dict(bands or {})
    unknown = sorted(set(bands) - set(curves))
    if unknown:
        raise ValueError(f"bands: labels {unknown} have no curve")
    for label, values in curves.items():
        values = np.asarray(values, dtype=float)
        if values.ndim != 1:
            raise ValueError(f"curves[{label!r}]: expected a 1-D array, got {values.shape}")
        steps = np.arange(1, len(values) + 1)
        (line,) = axis.plot(steps, values, label=label)
        if label in bands:
            low, high = (np.asarray(v, dtype=float) for v in bands[label])
            if low.shape != values.shape or high.shape != values.shape:
                raise ValueError(f"bands[{label!r}]: expected two arrays of shape "
                                 f"{values.shape}")
            axis.fill_between(steps, low, high, color=line.get_color(), alpha=0.15)
    if log_scale:
        axis.set_yscale("log")
    axis.set_xlabel("time step t (1 = first word read, T = last)")
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3, which="both")
    axis.legend()
    if title:
        axis.set_title(title)
    return _save(figure, path)


def plot_hidden_states(hidden, path, words=None, title=None, prediction=None) -> Path:
    """Heat map of one review's hidden states: units on the rows, time steps on the columns.

    Parameters
    ----------
    hidden : array, shape (T, H)
        ``rnn_hidden_states(model, ids[None])[0]``; tanh keeps every value in [-1, 1].
    path : str or Path
    words : sequence of str of length T, optional
        The word read at each step, written under the columns.
    title : str, optional
    prediction : float, optional
        The model's output for the review, added to the title.
    """
    hidden = np.asarray(hidden, dtype=float)
    if hidden.ndim != 2:
        raise ValueError(f"hidden: expected shape (timesteps, units), got {hidden.shape}")
    steps, units = hidden.shape
    if words is not None and len(words) != steps:
        raise ValueError(f"words: expected {steps} words (one per step), got {len(words)}")
    figure = _new_figure((max(8.0, 0.16 * steps + 2), 1.2 + 0.35 * units
                          + (1.1 if words is not None else 0)))
    axis = figure.subplots()
    image = axis.imshow(hidden.T, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1,
                        interpolation="nearest")
    axis.set_yticks(range(units))
    axis.set_yticklabels([f"h[{unit}]" for unit in range(units)])
    if words is not None:
        axis.set_xticks(range(steps))
        axis.set_xticklabels(list(words), rotation=90, fontsize=7)
    else:
        axis.set_xlabel("time step")
    figure.colorbar(image, ax=axis, fraction=0.02, pad=0.01, label="hidden state")
    text = title or "hidden state of the SimpleRNN over one review"
    if prediction is not None:
        text += f"  (model output {prediction:.3f})"
    axis.set_title(text)
    return _save(figure, path)


def plot_embedding_pca(embeddings, path, words=None, scores=None, n_labels=12,
                       title=None, score_label="effect on the logit") -> Path:
    """A word-embedding table projected to 2-D by PCA, the most extreme words labelled.

    Parameters
    ----------
    embeddings : array, shape (V, E)
        The Embedding layer's weights (``model.layers[0].get_weights()[0]``).
    path : str or Path
    words : sequence of str of length V, optional
        The word of each row, for the labels.
    scores : 1-D array of length V, optional
        A score per word (e.g. :func:`word_effects`); points are coloured by it and the
        ``n_labels`` highest and lowest words are labelled. Without scores, nothing is
        labelled and points are plain.
    n_labels : int, default 12
    title : str, optional
    """
    from sklearn.decomposition import PCA

    embeddings = np.asarray(embeddings, dtype=float)
    if embeddings.ndim != 2 or embeddings.shape[0] < 2:
        raise ValueError(f"embeddings: expected shape (V, E) with V >= 2, got "
                         f"{embeddings.shape}")
    vocabulary = embeddings.shape[0]
    if words is not None and len(words) != vocabulary:
        raise ValueError(f"words: expected {vocabulary} words, got {len(words)}")
    if scores is not None:
        scores = np.asarray(scores, dtype=float)
        if scores.shape != (vocabulary,):
            raise ValueError(f"scores: expected shape ({vocabulary},), got {scores.shape}")
    pca = PCA(n_components=2)
    points = pca.fit_transform(embeddings)
    figure = _new_figure((9, 7.5))
    axis = figure.subplots()
    if scores is None:
        axis.scatter(points[:, 0], points[:, 1], s=10, color="tab:blue", alpha=0.6)
    else:
        limit = float(np.max(np.abs(scores))) or 1.0
        image = axis.scatter(points[:, 0], points[:, 1], s=12, c=scores, cmap="coolwarm_r",
                             vmin=-limit, vmax=limit, alpha=0.8)
        figure.colorbar(image, ax=axis, label=score_label)
        if words is not None and n_labels > 0:
            order = np.argsort(scores)
            chosen = [(i, "tab:red") for i in order[:n_labels]] + \
                     [(i, "tab:blue") for i in order[::-1][:n_labels]]
            for index, color in chosen:
                axis.annotate(str(words[index]), points[index], fontsize=8, color=color,
                              xytext=(3, 3), textcoords="offset points")
    ratios = pca.explained_variance_ratio_
    axis.set_xlabel(f"PC 1 ({ratios[0]:.0%} of the variance)")
    axis.set_ylabel(f"PC 2 ({ratios[1]:.0%} of the variance)")
    axis.grid(alpha=0.3)
    axis.set_title(title or "word embeddings, PCA to 2-D")
    return _save(figure, path)


# --------------------------------------------------------------------------------------
# The numbers: hidden states, their gradients, word effects
# --------------------------------------------------------------------------------------
def _chapter_layers(model):
    """(embedding or None, recurrent layer, Dense) of a chapter-shaped model, or a clear error."""
    stack = list(getattr(model, "layers", []))
    embedding = None
    if stack and isinstance(stack[0], Embedding):
        embedding = stack.pop(0)
    shaped = (len(stack) == 2 and isinstance(stack[0], RNN) and not stack[0].return_sequences
              and not stack[0].return_state and isinstance(stack[1], Dense)
              and stack[1].units == 1 and stack[1].activation == "sigmoid")
    if not shaped:
        kinds = [type(layer).__name__ for layer in getattr(model, "layers", [])]
        raise ValueError("model: expected the chapter's shape [Embedding,] SimpleRNN (or LSTM, "
                         f"GRU), Dense(1, activation='sigmoid'), got {kinds}")
    if not all(layer.built for layer in getattr(model, "layers", [])):
        raise ValueError("model: not built yet; give the first layer its input shape or fit it")
    if embedding is not None and embedding.mask_zero:
        raise ValueError("model: expected an Embedding with mask_zero=False (every step read, "
                         "as in the book), got mask_zero=True")
    if stack[0].go_backwards:
        raise ValueError(f"model: expected a {type(stack[0]).__name__} reading forwards "
                         "(t = 1 .. T), got go_backwards=True")
    return embedding, stack[0], stack[1]


class _Float64Chapter(NamedTuple):
    r"""A chapter-shaped model copied to float64, cut where its maths is cut.

    The input reaches the states only through the input projection
    :math:`a_t = x_t W_x + b` (bias included, (N, T, G*H) with G = 1, 4, 3 gates), so the copy
    computes :math:`a_t` with the projection kernel the recurrent layer itself calls
    (:func:`_project`) and feeds it to ``rnn``: a float64 copy of the recurrent layer with
    the model's recurrent weights, an identity kernel and a zero input bias. Its forward pass
    gives the model's :math:`h_t` (``return_sequences=True``, ``return_state=True``), and
    its backward pass returns :math:`\partial\ell/\partial a_t` as its input gradient, which
    backpropagation through time needs (:func:`hidden_state_gradients`). ``dense`` is a
    float64 copy of the Dense layer.
    """

    table: np.ndarray | None  # (V, E) embedding table, or None for one-hot inputs (identity)
    Wx: np.ndarray  # (E or V, G*H)
    b: np.ndarray | None  # (G*H,) input bias
    Wh: np.ndarray  # (H, G*H)
    rnn: RNN
    dense: Dense

    @property
    def vocabulary_size(self) -> int:
        return len(self.Wx) if self.table is None else len(self.table)


def _float64_copy(layer, input_shape, weights, **changes):
    """A float64 copy of ``layer`` from its config (with ``changes``), holding ``weights``.

    ``changes`` should set the initializers to 'zeros': building the copy then draws nothing
    from nprnn's random generator, so the caller's next ``fit`` is not changed.
    """
    config_ = {**layer.get_config(), "dtype": "float64"}
    if "cell" in config_:  # RNN(cell): the cell's arguments sit in the cell's own config
        cell = config_["cell"]
        cell_changes = {key: changes.pop(key) for key in list(changes) if key in cell["config"]}
        config_["cell"] = {**cell, "config": {**cell["config"], **cell_changes}}
    copy = type(layer).from_config({**config_, **changes})
    copy.build(input_shape)
    copy.set_weights(weights)
    return copy


def _float64_chapter(model) -> _Float64Chapter:
    embedding, rnn, dense = _chapter_layers(model)
    weights = [np.asarray(w, dtype=np.float64) for w in rnn.weights]
    Wx, b, recurrent = rnn.cell.split(weights)
    # The reader's weights: identity kernel, the same recurrent weights (the GRU's recurrent
    # bias among them), and the input bias set to 0 since a_t includes it already.
    width = Wx.shape[1]
    reader_weights = [np.eye(width)] + [w.copy() for w in weights[1:]]
    _, reader_bias, _ = rnn.cell.split(reader_weights)
    if reader_bias is not None:
        reader_bias[...] = 0  # a view into the reader's bias array (the GRU's row 0)
    reader = _float64_copy(rnn, (None, None, width), reader_weights,
                           return_sequences=True, return_state=True, stateful=False,
                           dropout=0.0, recurrent_dropout=0.0, kernel_initializer="zeros",
                           recurrent_initializer="zeros", bias_initializer="zeros")
    head = _float64_copy(dense, (None, rnn.units), dense.get_weights(),
                         kernel_initializer="zeros", bias_initializer="zeros")
    table = None if embedding is None else np.asarray(embedding.embeddings, dtype=np.float64)
    return _Float64Chapter(table, Wx, b, recurrent[0], reader, head)


def _inputs(chapter, x):
    """Validate ``x``: token ids (N, T), or float features (N, T, D) for a one-hot model."""
    if isinstance(x, SparseOneHot):
        if chapter.table is not None:
            raise TypeError("x: an Embedding model takes token ids, got a one-hot array")
        x = x.indices
    raw = as_array(x, "x")
    if raw.dtype.kind == "f" and chapter.table is None:
        depth = len(chapter.Wx)
        if raw.ndim != 3 or raw.shape[-1] != depth:
            raise ValueError(f"x: expected shape (N, T, {depth}), got {raw.shape}")
        return as_float_array(raw, "x", np.float64)
    ids = as_token_ids(raw, "x", vocabulary_size=chapter.vocabulary_size)
    if ids.ndim != 2:
        raise ValueError(f"x: expected token ids of shape (N, T), got shape {ids.shape}")
    return ids


def _project(chapter, inputs):
    r"""Input projections :math:`a_t = x_t W_x + b`, float64 (N, T, G*H), as the layer makes them.

    Token ids: a row gather of ``table Wx + b`` (of ``Wx + b`` for one-hot inputs);
    features (N, T, D): ``x Wx + b``.
    """
    ops = kernels.active()
    if inputs.dtype.kind in "iu":
        return ops.gathered_projection_forward(chapter.table, inputs, chapter.Wx, chapter.b)
    return ops.dense_forward(inputs, chapter.Wx, chapter.b)


def _read(chapter, projected, initial_state=None):
    """The reader's forward pass: hidden states (N, T, H) and the final states list."""
    hidden, *final_states = chapter.rnn.forward(projected, initial_state=initial_state)
    return hidden, final_states


def _logits(chapter, last_hidden):
    """z = h_T w + c, shape (N, 1), by the Dense copy's forward pass."""
    chapter.dense.forward(last_hidden)
    return chapter.dense.preactivation


def rnn_hidden_states(model, x):
    r"""Every hidden state :math:`h_t`, t = 1 .. T, from :math:`h_0 = 0` (and :math:`c_0 = 0`).

    For the SimpleRNN :math:`h_t = \tanh(x_t W_x + h_{t-1} W_h + b)`; for an LSTM or a GRU,
    its output :math:`h_t` (see :class:`~nprnn.layers.recurrent.LSTMCell`,
    :class:`~nprnn.layers.recurrent.GRUCell`). Computed by the recurrent layer's own forward pass
    on a float64 copy of its weights (see :class:`_Float64Chapter`).

    Parameters
    ----------
    model : Sequential
        The chapter's shape: an optional ``Embedding``, a ``SimpleRNN`` (or ``LSTM``,
        ``GRU``) returning its last state, and ``Dense(1, activation='sigmoid')``.
    x : token ids (N, T), or for a one-hot model also a SparseOneHot or a float (N, T, D)
        array. Token ids given to a one-hot model stand for their one-hot vectors.

    Returns
    -------
    ndarray, float64, shape (N, T, H)
        ``[:, -1]`` is what the recurrent layer passes to the Dense layer.
    """
    chapter = _float64_chapter(model)
    hidden, _ = _read(chapter, _project(chapter, _inputs(chapter, x)))
    return hidden


def hidden_state_gradients(model, x, y):
    r"""Gradients :math:`\partial \ell_n / \partial h_t` of each review's loss, every step.

    :math:`\ell_n` is review n's own binary cross-entropy (not divided by the batch size), and
    :math:`h_t` is treated as a node of the unrolled graph: the total derivative through
    every later step. With :math:`p = \sigma(h_T w + c)` the model's output and
    :math:`a_t = x_t W_x + b`, the SimpleRNN's :math:`h_t = \tanh(a_t + h_{t-1} W_h)`::

        dl/dh_T = (p - y) w^T                          the Dense layer's backward
        dl/da_t = dl/dh_t * (1 - h_t^2)                the SimpleRNN's backward (BPTT)
        dl/dh_t = dl/da_{t+1} Wh^T        for t < T    (h_t enters step t+1 only by Wh)

    The first two lines are the layers' own backward passes on float64 copies of the model
    (:meth:`~nprnn.layers.core.Dense.backward_from_preactivation`, then the recurrent layer's
    backpropagation through time, the kernel
    :func:`~nprnn.kernels.reference.simple_rnn.rnn_backward`).
    Each step back multiplies by :math:`\mathrm{diag}(1 - h_{t+1}^2)\, W_h^T`, whose norm
    below 1 makes the gradient shrink geometrically going back in time: the vanishing
    gradient that motivates the LSTM.

    An LSTM's gates are :math:`z_t = a_t + h_{t-1} W_h` too, so the third line holds for it
    (with :math:`W_h` of shape (H, 4H); the cell state :math:`c_t` is another node, held
    fixed). A GRU's :math:`h_{t-1}` also enters its step outside :math:`W_h`
    (:math:`h_t = z \odot h_{t-1} + \dots`), so it is refused.

    Parameters
    ----------
    model, x : as in :func:`rnn_hidden_states`; the recurrent layer a SimpleRNN or an LSTM
    y : array of N labels in [0, 1]

    Returns
    -------
    hidden : ndarray, float64, shape (N, T, H)
        The hidden states (:func:`rnn_hidden_states`).
    dhidden : ndarray, float64, shape (N, T, H)
        ``dhidden[n, t - 1]`` is :math:`\partial \ell_n / \partial h_t`.
    """
    chapter = _float64_chapter(model)
    if isinstance(chapter.rnn.cell, GRUCell):
        raise ValueError("model: expected a SimpleRNN or an LSTM, got a GRU (its h_{t-1} "
                         "also enters a step outside W_h; dl/dh_t is not dl/da_{t+1} Wh^T)")
    hidden, final_states = _read(chapter, _project(chapter, _inputs(chapter, x)))
    targets = np.asarray(y, dtype=np.float64).reshape(-1)
    if targets.shape != (hidden.shape[0],):
        raise ValueError(f"y: expected {hidden.shape[0]} labels, got shape {np.shape(y)}")
    p = chapter.dense.forward(hidden[:, -1])  # (N, 1)
    dhidden = np.zeros_like(hidden)
    # dl_n/dz = p - y for the sigmoid with binary cross-entropy (z the Dense pre-activation)
    dhidden[:, -1] = chapter.dense.backward_from_preactivation(p - targets[:, None])
    # the reader's kernel is the identity, so its input gradient is dl/da_t
    dprojected = chapter.rnn.backward([dhidden] + [None] * len(final_states))
    dhidden[:, :-1] += dprojected[:, 1:] @ chapter.Wh.T
    return hidden, dhidden


def word_effects(model, contexts):
    r"""How much each word moves the model's logit when it is the last word read.

    For every context review r (token ids, length T) and word v, the review is shifted left
    by one (its first word dropped) and v appended, and the change of the logit
    :math:`z = \log(p / (1 - p))` against the unchanged review is averaged over reviews::

        effect[v] = mean_r ( z(r[1:] + [v]) - z(r) )

    Why this score: the model reads left to right and keeps only its last hidden state, so
    the last position is where a word's influence is largest and least blurred by what
    follows, and real reviews as context keep the hidden state where training put it
    (a review made of one word repeated 100 times is far from anything the model saw).
    Positive values push towards "positive review". Cheap and exact: the first T - 1 steps
    are run once per review, then the recurrent layer takes one step for every
    (review, word) pair, starting from that review's states (the layer's ``initial_state``).

    Parameters
    ----------
    model : Sequential of the chapter's shape
    contexts : int array, shape (R, T)
        Padded reviews, e.g. ``val_seq[:500]``.

    Returns
    -------
    ndarray, float64, shape (V,)
    """
    chapter = _float64_chapter(model)
    contexts = np.asarray(contexts)
    if contexts.ndim != 2 or contexts.shape[1] < 1 or contexts.dtype.kind not in "iu":
        raise ValueError(f"contexts: expected int token ids of shape (R, T), got "
                         f"{contexts.dtype} {contexts.shape}")
    contexts = as_token_ids(contexts, "contexts", vocabulary_size=chapter.vocabulary_size)
    reviews, vocabulary = len(contexts), chapter.vocabulary_size
    projected = _project(chapter, contexts)  # (R, T, G*H)
    hidden, _ = _read(chapter, projected)
    original = _logits(chapter, hidden[:, -1])  # (R, 1)
    if contexts.shape[1] > 1:
        _, states = _read(chapter, projected[:, 1:])  # after r[1:], each (R, H)
    else:
        states = [np.zeros((reviews, chapter.rnn.units)) for _ in chapter.rnn.cell.state_names]
    words = _project(chapter, np.arange(vocabulary)[None, :])[0]  # a for each word (V, G*H)
    effects = np.zeros(vocabulary)
    block = max(1, (1 << 16) // vocabulary)  # reviews per block: bounded memory
    for start in range(0, reviews, block):
        stop = min(start + block, reviews)
        count = (stop - start) * vocabulary
        a_last = np.broadcast_to(words, (stop - start, *words.shape)).reshape(count, 1, -1)
        starts = [np.repeat(state[start:stop], vocabulary, axis=0) for state in states]
        h_last, _ = _read(chapter, a_last, initial_state=starts)
        logits = _logits(chapter, h_last[:, -1]).reshape(stop - start, vocabulary)
        effects += (logits - original[start:stop]).sum(axis=0)
    return effects / reviews
