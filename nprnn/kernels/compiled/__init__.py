"""Numba twins of the hot kernels (being rebuilt on the cell + driver structure)."""

from nprnn.kernels.reference import *  # noqa: F401,F403
from nprnn.kernels.reference import __all__  # noqa: F401
