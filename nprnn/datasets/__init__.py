"""Datasets in Keras' format: ``from nprnn.datasets import imdb``."""

from nprnn.datasets import imdb

__all__ = ["imdb"]
