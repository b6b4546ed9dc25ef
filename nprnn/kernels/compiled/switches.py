"""Module-level switches of the compiled kernels, read at every call (tests and benchmarks
set them; ordinary use never needs to)."""

#: float32 cells use the vectorised ``tanh`` and ``sigmoid`` of :mod:`nprnn.kernels._fast_math`
#: (within 1 ulp of the correctly rounded value). When False, float32 calls libm's ``tanhf`` /
#: ``expf`` like float64 calls ``tanh`` / ``exp`` (slower: a scalar call per element).
USE_FAST_TANH_FLOAT32 = True

#: Batches of at least this many sequences run the SimpleRNN forward on all Numba threads, in
#: blocks of 128 sequences; 0 (the default) keeps every kernel on the calling thread. Results
#: are bitwise the same either way (in the forward pass each sequence is computed on its own).
#: Off by default because it only pays when a core is idle: on a 2-core machine shared with
#: other work, 2 threads made prediction 1.4x faster with the second core free and 2x
#: *slower* with it busy (see benchmarks/README.md).
PARALLEL_MIN_BATCH = 0

#: Backward passes accumulate dWh per sequence (vectorised over the batch) while that
#: accumulator, H * G*H * N numbers, stays this small; beyond it they accumulate straight
#: into dWh, sequence after sequence (slower, same determinism).
ACC_MAX_ELEMENTS = 65536
