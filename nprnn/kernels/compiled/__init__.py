r"""Numba twins of the hot kernels of :mod:`nprnn.kernels.reference`.

Drop-in module: every public name of the reference is here with the same signature and the
same results (to rounding). Compiled with Numba:

==============================================  ===========================================
``rnn_forward``, ``rnn_backward``               SimpleRNN sequence pair (:mod:`.simple_rnn`)
``lstm_forward``, ``lstm_backward``             LSTM sequence pair (:mod:`.lstm`)
``gru_forward``, ``gru_backward``               GRU, ``reset_after=True`` (:mod:`.gru`)
``gru_reset_before_forward``, ``..._backward``  GRU, ``reset_after=False`` (:mod:`.gru`)
``gather_rows``, ``scatter_add_rows``           row gather and its adjoint (:mod:`.rows`)
``gathered_projection_forward/backward``,       the same, called on the projected table or
``embedding_forward/backward``                  the embedding (:mod:`.rows`)
``rmsprop_update``                              Keras' RMSprop step (:mod:`.rmsprop`)
==============================================  ===========================================

The others (the step pairs, the generic driver, dense, activations, losses) are the reference
functions themselves, re-exported unchanged. A compiled sequence forward returns a cache of
its own (a NamedTuple of this package: the gates its backward reads); a compiled backward
only ever receives such a cache, or the reference's when its forward fell back to the
reference (an activation the compiled cells do not implement: anything but tanh, sigmoid,
relu, linear), which it hands to the reference backward.

Design, for the chapter's sizes (N=64 sequences, T=100 steps, H=8 units), where the cost of
a step is overhead and ``tanh``/``sigmoid``, not arithmetic:

* Each public function is a thin Python wrapper: it lays the arguments out (C-contiguous, the
  dtype of ``projected``, states and masks transposed) and calls one ``@njit(cache=True)``
  core. The kernels trust their inputs: shapes and dtypes are validated once, at the public
  boundary, by the layers.
* Inside the recurrence, states, gates and their gradients are kept batch-innermost,
  (rows, N), so that every inner loop runs over the batch and LLVM vectorises it (8 or 16
  lanes); the (N, T, rows) arrays of the signatures are read and written one step at a time.
  The loops are small functions of :mod:`._loops`. Nothing is allocated in the time loop.
  The SimpleRNN forward runs large prediction batches in blocks of 256 sequences (cache
  locality), optionally on all threads (``switches.PARALLEL_MIN_BATCH``). What a backward
  pass reads is stored time-major by its forward, (T, rows, N): nothing is recomputed.
* A mask costs one blend per state and step in the forward, one split of each state's
  gradient in the backward; a recurrent dropout mask one multiply of h_{t-1} and one of its
  gradient. Without them those loops are skipped (a flag per call, not per element).
* float32 uses :func:`nprnn.kernels._fast_math.tanh_f32` and ``sigmoid_f32``, vectorisable
  approximations in float32 arithmetic within 2 ulp of the exact value (measured over all
  2^32 inputs: tanh 1.50, sigmoid 1.52 ulp; see that module);
  ``switches.USE_FAST_TANH_FLOAT32 = False`` switches float32 to libm. float64 uses the exact
  ``np.tanh`` and the reference's sigmoid formula and matches the reference to ~1e-15
  relative.
* Fast-math: only ``contract`` (a * b + c fused into one FMA, one rounding instead of two;
  no reassociation, NaN/inf/signed zeros keep their IEEE meaning), plus
  ``error_model='numpy'``. See ``_fast_math.JIT_OPTIONS``.
* The weight gradients of backpropagation through time are accumulated per sequence
  (``acc[k, j, n] += h~_{t-1}[k, n] dz_t[j, n]``, vectorised over n), then summed over n in a
  fixed order after the time loop; results are bitwise reproducible and independent of the
  thread count. The LSTM and the GRU (``reset_after``) add four steps' terms per pass over
  that accumulator (64 KiB for the LSTM at H = 8, N = 64: more than L1), in the same order.
  The products with Wh and Wh^T take four of its rows (columns) per pass over the (rows, N)
  output, in the plain loop's order. Beyond ``switches.ACC_MAX_ELEMENTS`` the
  accumulation goes straight into dWh (same determinism, slower).
* No BLAS path: every product is a loop (at H = 8 the loops beat BLAS 4-5x; for wide layers,
  H >= 32, BLAS would win and is not used).
* Numba's on-disk cache is keyed on the file of each compiled function, but a cached kernel
  also holds the code it calls from other files (:mod:`._loops`, the activations of
  :mod:`nprnn.kernels._fast_math`, the cells the fused step calls). :mod:`._cache`
  therefore keeps a fingerprint of all these sources beside the cache and empties the cache
  when they change (an in-place update, e.g. ``git pull``, that leaves some files untouched).
  It also wraps every kernel's cache so that a cache that cannot be written (full disk,
  read-only) or read (a truncated file) costs the cache, with one ``RuntimeWarning``, never
  the call: Numba itself lets these errors out of the kernel's first call on Linux.
"""

from nprnn.kernels.compiled import _cache, switches
from nprnn.kernels.compiled.gru import (
    gru_backward,
    gru_forward,
    gru_reset_before_backward,
    gru_reset_before_forward,
)
from nprnn.kernels.compiled.lstm import lstm_backward, lstm_forward
from nprnn.kernels.compiled.rmsprop import rmsprop_update
from nprnn.kernels.compiled.rows import (
    embedding_backward,
    embedding_forward,
    gather_rows,
    gathered_projection_backward,
    gathered_projection_forward,
    scatter_add_rows,
)
from nprnn.kernels.compiled.simple_rnn import rnn_backward, rnn_forward
from nprnn.kernels.reference import (
    ACTIVATIONS,
    GRUResetBeforeStepCache,
    GRUStepCache,
    LSTMStepCache,
    RecurrenceCache,
    StepCache,
    activation_backward,
    activation_forward,
    dense_backward,
    dense_forward,
    gru_reset_before_step_backward,
    gru_reset_before_step_forward,
    gru_step_backward,
    gru_step_forward,
    lstm_step_backward,
    lstm_step_forward,
    masked_output_factor,
    projected_rows_backward,
    recurrence_backward,
    recurrence_forward,
    rnn_step_backward,
    rnn_step_forward,
    sigmoid,
    sigmoid_binary_crossentropy,
    sigmoid_binary_crossentropy_backward,
    softmax,
)

_cache.drop_stale()  # before any kernel's first call, which is when Numba reads its cache
_cache.guard_kernels()  # a cache that cannot be written or read costs the cache, not the call

#: The names compiled here; every other public name is the reference's own function.
COMPILED = (
    "embedding_backward",
    "embedding_forward",
    "gather_rows",
    "gathered_projection_backward",
    "gathered_projection_forward",
    "gru_backward",
    "gru_forward",
    "gru_reset_before_backward",
    "gru_reset_before_forward",
    "lstm_backward",
    "lstm_forward",
    "rmsprop_update",
    "rnn_backward",
    "rnn_forward",
    "scatter_add_rows",
)

__all__ = [
    "ACTIVATIONS",
    "COMPILED",
    "GRUResetBeforeStepCache",
    "GRUStepCache",
    "LSTMStepCache",
    "RecurrenceCache",
    "StepCache",
    "activation_backward",
    "activation_forward",
    "dense_backward",
    "dense_forward",
    "embedding_backward",
    "embedding_forward",
    "masked_output_factor",
    "gather_rows",
    "gathered_projection_backward",
    "gathered_projection_forward",
    "gru_backward",
    "gru_forward",
    "gru_reset_before_backward",
    "gru_reset_before_forward",
    "gru_reset_before_step_backward",
    "gru_reset_before_step_forward",
    "gru_step_backward",
    "gru_step_forward",
    "lstm_backward",
    "lstm_forward",
    "lstm_step_backward",
    "lstm_step_forward",
    "projected_rows_backward",
    "recurrence_backward",
    "recurrence_forward",
    "rmsprop_update",
    "rnn_backward",
    "rnn_forward",
    "rnn_step_backward",
    "rnn_step_forward",
    "scatter_add_rows",
    "sigmoid",
    "sigmoid_binary_crossentropy",
    "sigmoid_binary_crossentropy_backward",
    "softmax",
    "switches",
]
