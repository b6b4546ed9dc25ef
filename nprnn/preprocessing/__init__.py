"""Keras' old import paths: ``nprnn.preprocessing.sequence.pad_sequences``."""

from nprnn.preprocessing import sequence

__all__ = ["sequence"]
