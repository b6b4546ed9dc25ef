"""``from nprnn.preprocessing.sequence import pad_sequences``, as the book imports it."""

from nprnn.utils.sequence import pad_sequences

__all__ = ["pad_sequences"]
