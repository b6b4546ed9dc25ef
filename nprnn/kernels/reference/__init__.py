r"""NumPy reference kernels: the maths of the chapter, one pure function per equation.

Every function here is *pure*: it reads its arguments, never writes into them, and returns
new arrays. The hot ones have Numba twins in :mod:`nprnn.kernels.compiled` with the same
names and signatures; these NumPy versions are the readable definition that the twins are
tested against, and what the layers run when ``nprnn.config.set_backend('numpy')`` is
selected.

Shapes use the letters of CS231n's ``rnn_layers.py``:

==========  ===========================================================
``N``       batch size (number of sequences)
``T``       time steps (sequence length)
``D``       input features per step (one-hot depth or embedding size)
``H``       hidden units of a recurrent cell
``G``       gates of a cell: 1 (SimpleRNN), 4 (LSTM), 3 (GRU)
``V``       vocabulary size (rows of an embedding table)
``E``       embedding size (columns of an embedding table)
==========  ===========================================================

Where each equation lives:

* :mod:`.dense` -- ``x W + b`` and its backward; row gather and scatter-add (the embedding
  lookup and its gradient); the input projection of token inputs as a gather of
  ``table W + b``.
* :mod:`.activations` -- tanh, sigmoid, relu, softmax and their derivatives.
* :mod:`.recurrence` -- the one sequence driver: any cell's step pair over T steps, with masks
  and recurrent dropout.
* :mod:`.simple_rnn`, :mod:`.lstm`, :mod:`.gru` -- each cell's step pair, and its sequence
  pair (the driver called with that step):

  +---------------------------------------+-----------------------------------------------------+
  | ``rnn_step_forward/backward``         | SimpleRNN, ``h = f(a + h~ Wh)``; weights ``(Wh,)``  |
  +---------------------------------------+-----------------------------------------------------+
  | ``lstm_step_forward/backward``        | LSTM, gates i, f, c, o; states (h, c); ``(Wh,)``    |
  +---------------------------------------+-----------------------------------------------------+
  | ``gru_step_forward/backward``         | GRU ``reset_after=True``; ``(Wh, recurrent_bias)``  |
  +---------------------------------------+-----------------------------------------------------+
  | ``gru_reset_before_step_forward/...`` | GRU ``reset_after=False``; ``(Wh,)``                |
  +---------------------------------------+-----------------------------------------------------+
  | ``rnn_forward``, ``lstm_forward``,    | the sequence pairs: ``hidden, final_states, cache = |
  | ``gru_forward``,                      | forward(projected, initial_states, weights, mask,   |
  | ``gru_reset_before_forward``          | recurrent_mask, ...)`` and ``dprojected,            |
  | (and their ``_backward``)             | dinitial_states, dweights = backward(dhidden,       |
  |                                       | dfinal_states, cache)``                             |
  +---------------------------------------+-----------------------------------------------------+

  Recurrent dropout: ONE mask (N, H) per sequence, shared by all gates of a cell and applied
  to :math:`h_{t-1}` inside the recurrent products only (Keras 3 and 2 draw one per gate
  when ``recurrent_dropout > 0``; see :mod:`.lstm`, :mod:`.gru`).
* :mod:`.losses`, :mod:`.optimizers` -- binary cross-entropy from the logits; RMSprop.

Every recurrent cell computes ``a_t = x_t Wx + b`` for all steps before the time loop (the
input projection does not depend on the state), so a step function receives ``a_t``, not
``x_t``; see :mod:`.recurrence`.
"""

from nprnn.kernels.reference.activations import (
    ACTIVATIONS,
    activation_backward,
    activation_forward,
    sigmoid,
    softmax,
)
from nprnn.kernels.reference.dense import (
    dense_backward,
    dense_forward,
    embedding_backward,
    embedding_forward,
    gather_rows,
    gathered_projection_backward,
    gathered_projection_forward,
    projected_rows_backward,
    scatter_add_rows,
)
from nprnn.kernels.reference.gru import (
    GRUResetBeforeStepCache,
    GRUStepCache,
    gru_backward,
    gru_forward,
    gru_reset_before_backward,
    gru_reset_before_forward,
    gru_reset_before_step_backward,
    gru_reset_before_step_forward,
    gru_step_backward,
    gru_step_forward,
)
from nprnn.kernels.reference.losses import (
    sigmoid_binary_crossentropy,
    sigmoid_binary_crossentropy_backward,
)
from nprnn.kernels.reference.lstm import (
    LSTMStepCache,
    lstm_backward,
    lstm_forward,
    lstm_step_backward,
    lstm_step_forward,
)
from nprnn.kernels.reference.optimizers import rmsprop_update
from nprnn.kernels.reference.recurrence import (
    RecurrenceCache,
    masked_output_factor,
    recurrence_backward,
    recurrence_forward,
)
from nprnn.kernels.reference.simple_rnn import (
    StepCache,
    rnn_backward,
    rnn_forward,
    rnn_step_backward,
    rnn_step_forward,
)

__all__ = [
    "ACTIVATIONS",
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
    "gather_rows",
    "gathered_projection_backward",
    "gathered_projection_forward",
    "masked_output_factor",
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
]
