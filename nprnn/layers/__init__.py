"""Layers shaped like Keras': each a thin object over the kernels of :mod:`nprnn.kernels`.

* :mod:`.base` -- the :class:`Layer` base class; what travels between layers
  (:class:`TokenInput`, :class:`ProjectionGradient`).
* :mod:`.core` -- :class:`Embedding`, :class:`Dense`, :class:`Dropout`, :class:`Masking`,
  :func:`Input`.
* :mod:`.recurrent` -- :class:`RNN`, which drives any cell (:class:`SimpleRNNCell`,
  :class:`LSTMCell`, :class:`GRUCell`), and :class:`SimpleRNN`, :class:`LSTM`, :class:`GRU`.
* :mod:`.wrappers` -- :class:`Bidirectional`.
"""

from nprnn.layers.base import (
    Layer,
    ProjectionGradient,
    TokenInput,
    check_shape,
    clear_session,
    unique_name,
)
from nprnn.layers.core import Dense, Dropout, Embedding, Input, InputLayer, Masking
from nprnn.layers.recurrent import (
    GRU,
    LSTM,
    RNN,
    GRUCell,
    LSTMCell,
    SimpleRNN,
    SimpleRNNCell,
)
from nprnn.layers.wrappers import Bidirectional

LAYERS = {cls.__name__: cls for cls in (
    InputLayer, Embedding, Dense, Dropout, Masking, RNN, SimpleRNN, LSTM, GRU, Bidirectional)}


def deserialize(class_name, config_):
    """Build a layer from its class name and ``get_config()``."""
    if class_name not in LAYERS:
        raise ValueError(f"class_name: expected one of {sorted(LAYERS)}, got {class_name!r}")
    return LAYERS[class_name].from_config(config_)


__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "Bidirectional",
    "Dense",
    "Dropout",
    "Embedding",
    "GRUCell",
    "Input",
    "InputLayer",
    "LSTMCell",
    "LAYERS",
    "Layer",
    "Masking",
    "ProjectionGradient",
    "SimpleRNN",
    "SimpleRNNCell",
    "TokenInput",
    "check_shape",
    "clear_session",
    "deserialize",
    "unique_name",
]
