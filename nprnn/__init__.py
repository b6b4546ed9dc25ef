"""nprnn: recurrent networks from scratch in NumPy, hot loops compiled by Numba.

``import nprnn as keras`` and the model code of chapter 9-2 of "Hon-gong ML+DL" runs
unchanged: ``keras.Sequential``, ``keras.layers.SimpleRNN``, ``keras.optimizers.RMSprop``,
``keras.callbacks.EarlyStopping``, ``keras.utils.to_categorical``...
"""

from nprnn import (
    callbacks,
    config,
    datasets,
    gradcheck,
    initializers,
    kernels,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    preprocessing,
    saving,
    utils,
)
from nprnn.layers import Input
from nprnn.models import Sequential, load_model

__version__ = "0.1.0"

__all__ = [
    "Input",
    "Sequential",
    "callbacks",
    "config",
    "datasets",
    "gradcheck",
    "initializers",
    "kernels",
    "layers",
    "load_model",
    "losses",
    "metrics",
    "models",
    "optimizers",
    "preprocessing",
    "saving",
    "utils",
]
