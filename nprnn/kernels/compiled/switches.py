"""Module-level switches of the compiled kernels, read at every call (tests and benchmarks
set them; ordinary use never needs to)."""

#: float32 cells use the vectorised ``tanh`` and ``sigmoid`` of :mod:`nprnn.kernels._fast_math`
#: (float32 arithmetic, within 2 ulp of the exact value over all 2^32 inputs). When False,
#: float32 calls libm's ``tanhf`` / ``expf`` like float64 calls ``tanh`` / ``exp`` (slower: a
#: scalar call per element).
USE_FAST_TANH_FLOAT32 = True

#: Inference on at least this many sequences (predict, evaluate, fit's validation) runs its
#: blocks of 128 sequences on all of Numba's threads (``NUMBA_NUM_THREADS``; the number of
#: cores by default), handed out one block at a time; so does the per-layer SimpleRNN
#: forward. 0 keeps every kernel on the calling thread. Results are bitwise the same either
#: way: in the forward pass each sequence is computed on its own. Training stays on one
#: thread (a batch of 64 gives a thread too little work per step, and a parallel dWh sum
#: would change the bits). Measured on 2 cores (benchmarks/README.md): predict on 25,000
#: sequences 1.9-2.0x faster with the second core idle, no slower with it busy.
PARALLEL_MIN_BATCH = 1024

#: Backward passes accumulate dWh per sequence (vectorised over the batch) while that
#: accumulator, H * G*H * N numbers, stays this small; beyond it they accumulate straight
#: into dWh, sequence after sequence (slower, same determinism).
ACC_MAX_ELEMENTS = 65536
