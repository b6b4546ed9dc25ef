"""nprnn: recurrent networks from scratch in NumPy, hot loops compiled by Numba."""

__version__ = "0.1.0"
