"""Utilities with Keras' names: padding, one-hot encoding, seeding."""

from nprnn._random import set_seed as set_random_seed
from nprnn.utils.categorical import SparseOneHot, to_categorical
from nprnn.utils.sequence import pad_sequences

__all__ = ["SparseOneHot", "pad_sequences", "set_random_seed", "to_categorical"]
