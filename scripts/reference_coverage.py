"""How much of the NumPy reference actually runs when the chapter's models train.

Trains and predicts the book's models under the NumPy backend (``NPRNN_BACKEND=numpy``) on
small synthetic IMDB-shaped data -- the one-hot model fed dense and index-backed, the
embedding model, and chapter 9-3's LSTM, LSTM with dropout, stacked LSTMs and GRU -- with
coverage.py recording, and prints the share of the lines inside the functions of
``nprnn/kernels/reference/`` that ran, per file and in all, and the functions that never ran.
With ``--all-options`` it also trains models that use what the book does not (masks,
go_backwards, relu and linear cells, Keras 2's GRU, recurrent dropout, softmax, sample and
class weights): the lines the book's models leave out are those options' own.

    .venv/bin/pip install coverage
    .venv/bin/python scripts/reference_coverage.py [--all-options]
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

import coverage

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "nprnn" / "kernels" / "reference"


def train_the_chapters_models():
    import numpy as np

    import nprnn as keras
    from nprnn import layers

    rng = np.random.default_rng(0)
    ids = rng.integers(0, 500, size=(256, 100))
    labels = rng.integers(0, 2, size=256)

    def run(model, x):
        model.compile(optimizer=keras.optimizers.RMSprop(1e-4), loss="binary_crossentropy",
                      metrics=["accuracy"])
        model.fit(x, labels, batch_size=64, epochs=1, verbose=0,
                  validation_data=(x[:64], labels[:64]))
        model.predict(x[:64], verbose=0)

    run(keras.Sequential([layers.SimpleRNN(8, input_shape=(100, 500)),
                          layers.Dense(1, activation="sigmoid")]),
        keras.utils.to_categorical(ids[:, :], 500))
    run(keras.Sequential([layers.SimpleRNN(8, input_shape=(100, 500)),
                          layers.Dense(1, activation="sigmoid")]),
        keras.utils.SparseOneHot(ids, 500))
    for body in ([layers.SimpleRNN(8)], [layers.LSTM(8)], [layers.LSTM(8, dropout=0.3)],
                 [layers.LSTM(8, dropout=0.3, return_sequences=True),
                  layers.LSTM(8, dropout=0.3)], [layers.GRU(8)]):
        run(keras.Sequential([layers.Embedding(500, 16, input_length=100), *body,
                              layers.Dense(1, activation="sigmoid")]), ids)


def train_models_with_the_other_options():
    """Models using what the book does not: masks, reversal, other activations, the GRU of
    Keras 2, recurrent dropout, softmax, sample weights (all through the public API)."""
    import numpy as np

    import nprnn as keras
    from nprnn import layers

    rng = np.random.default_rng(1)
    ids = rng.integers(0, 50, size=(64, 20))
    ids[:, :5] = 0
    labels = rng.integers(0, 3, size=64)
    bodies = ([layers.GRU(4, reset_after=False, recurrent_dropout=0.2, return_sequences=True),
               layers.SimpleRNN(3, activation="relu", go_backwards=True, recurrent_dropout=0.1)],
              [layers.Bidirectional(layers.LSTM(3, return_sequences=True,
                                                activation="linear")),
               layers.GRU(2, zero_output_for_mask=True)])
    for body in bodies:
        model = keras.Sequential([layers.Embedding(50, 6, mask_zero=True), *body,
                                  layers.Dense(3, activation="softmax")])
        model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        model.fit(ids, labels, epochs=1, batch_size=32, verbose=0,
                  sample_weight=rng.random(64))
    binary = keras.Sequential([layers.Embedding(50, 6), layers.SimpleRNN(3),
                               layers.Dense(2, activation="sigmoid")])
    binary.compile(optimizer="rmsprop", loss="binary_crossentropy")
    binary.fit(ids, rng.integers(0, 2, size=(64, 2)), epochs=1, verbose=0,
               class_weight={0: 1.0, 1: 2.0})


def function_lines(node):
    """Line numbers of a function's body, its docstring excluded."""
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(
            getattr(body[0], "value", None), ast.Constant):
        body = body[1:]
    return {line for statement in body
            for line in range(statement.lineno, statement.end_lineno + 1)}


def main():
    os.environ["NPRNN_BACKEND"] = "numpy"
    workloads = [train_the_chapters_models]
    if "--all-options" in sys.argv:
        workloads.append(train_models_with_the_other_options)
    recorder = coverage.Coverage(include=[str(REFERENCE / "*.py")], data_file=None)
    recorder.start()
    for workload in workloads:
        workload()
    recorder.stop()
    total_run = total = 0
    never = []
    for path in sorted(REFERENCE.glob("*.py")):
        _, statements, _, missing, _ = recorder.analysis2(str(path))
        tree = ast.parse(path.read_text())
        functions = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)]
        inside = set().union(*(function_lines(node) for node in functions))
        wanted = set(statements) & inside
        ran = wanted - set(missing)
        total += len(wanted)
        total_run += len(ran)
        if wanted:
            print(f"{path.relative_to(ROOT)}: {len(ran)}/{len(wanted)} lines "
                  f"({100 * len(ran) / len(wanted):.0f}%)")
        for node in functions:
            body_lines = function_lines(node) & set(statements)
            if body_lines and not body_lines - set(missing):
                never.append(f"{path.name}:{node.name}")
    print(f"in all: {total_run}/{total} lines inside the reference's functions ran "
          f"({100 * total_run / total:.1f}%)")
    print("functions that never ran:", ", ".join(never) or "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
