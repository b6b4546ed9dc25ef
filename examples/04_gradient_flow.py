r"""Inside the embedding model: vanishing gradients, the hidden state, the learned words.

    python examples/04_gradient_flow.py [--quick] [--model PATH] [--output-dir DIR]
                                        [--data-dir DIR] [--seed N] [--reviews N]

Pictures for people who study the maths of chapter 9-1/9-2 (the model is the book's
Embedding(500, 16) -> SimpleRNN(8) -> Dense(1, sigmoid); by default the checkpoint
``best-embedding-model.h5`` that 03_embedding.py leaves in the output folder, trained here
with the book's settings if it is missing):

(a) ``gradient_norms.png`` and ``gradient_norms_relative.png``: the size of
    :math:`\partial \ell / \partial h_t` over the 100 steps, averaged over validation
    reviews, for the trained and an untrained model. Backpropagation through time multiplies
    by :math:`\mathrm{diag}(1 - h_{t+1}^2) W_h^T` at each step back; when that shrinks
    vectors the gradient decays geometrically (a straight line on the log scale) and the
    first words of a review barely influence learning: the vanishing gradient that the next
    section of the book (LSTM, GRU) addresses. The gradients come from
    :func:`nprnn.plotting.hidden_state_gradients` (tested against finite differences).
(b) ``hidden_states.png``: the 8 hidden units over the 100 steps of one validation review,
    the words it reads under the columns.
(c) ``embedding_pca.png``: the 500 learned 16-d word vectors projected to 2-D with
    scikit-learn's PCA, coloured by each word's effect on the model's output and the most
    positive and negative words labelled. The effect of word w
    (:func:`nprnn.plotting.word_effects`) is the mean change of the output logit when w
    becomes the last word of real validation reviews (their first word dropped). Why this
    choice: the model keeps only its last hidden state, so the last position is where a
    word's own influence is largest and least blurred by what follows, and real reviews
    as context keep the hidden state in the region training put it in; a review made of a
    single word repeated 100 times would ask the model about inputs it never saw, and the
    classifier's direction cannot be read off the embedding alone since the RNN in between
    is not linear.
"""

import time
from pathlib import Path

import _common
import numpy as np

import nprnn as keras
from nprnn import plotting
from nprnn.datasets import imdb


def trained_model(args, output_dir, data):
    path = args.model or output_dir / "best-embedding-model.h5"
    if path.exists():
        print(f"model: {path}")
        return keras.load_model(path)
    if args.model is not None:
        raise SystemExit(f"--model: {path} does not exist")
    epochs = _common.QUICK["epochs"] if args.quick else 100
    print(f"model: {path} not found; training the book's embedding model (up to {epochs} "
          "epochs)")
    model = _common.build_embedding_model()
    _common.compile_and_fit(model, data.train_seq, data.train_target,
                            (data.val_seq, data.val_target), path, epochs)
    return model


def main():
    arguments = _common.parser(__doc__)
    arguments.add_argument("--model", type=Path,
                           default=None,
                           help="a trained embedding model (default: best-embedding-model.h5 "
                                "in the output folder, trained if missing)")
    arguments.add_argument("--reviews", type=int, default=None,
                           help="validation reviews to average over (default 1000; quick 200)")
    args = arguments.parse_args()
    output_dir = _common.setup(args)
    started = time.perf_counter()
    data = _common.load_chapter_data(quick=args.quick)
    reviews = args.reviews or (200 if args.quick else 1000)
    sample = slice(0, min(reviews, len(data.val_seq)))
    x, y = data.val_seq[sample], data.val_target[sample]

    model = trained_model(args, output_dir, data)
    keras.utils.set_random_seed(args.seed)
    untrained = _common.build_embedding_model()
    for each in (model, untrained):
        each.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-4),
                     loss="binary_crossentropy", metrics=["accuracy"])
    _, accuracy = model.evaluate(x, y, verbose=0)
    print(f"validation accuracy of the model on these {len(x)} reviews: {accuracy:.4f}")

    # (a) ||dl/dh_t|| over the steps ---------------------------------------------------
    print("\n(a) gradient of each review's loss with respect to the hidden state h_t")
    print("    ratio r_t = ||dl/dh_t|| / ||dl/dh_100|| per review; median [10th-90th "
          "percentile] over reviews")
    absolute, absolute_bands, relative, relative_bands, summary = {}, {}, {}, {}, {}
    for label, each in (("trained", model), ("untrained (initial weights)", untrained)):
        _, dhidden = plotting.hidden_state_gradients(each, x, y)
        norms = np.linalg.norm(dhidden, axis=-1)  # (N, T)
        ratios = norms / norms[:, -1:]
        absolute[label] = np.median(norms, axis=0)
        absolute_bands[label] = tuple(np.percentile(norms, (10, 90), axis=0))
        relative[label] = np.median(ratios, axis=0)
        relative_bands[label] = tuple(np.percentile(ratios, (10, 90), axis=0))
        cells = []
        for step in (99, 90, 50, 1):
            low, high = np.percentile(ratios[:, step - 1], (10, 90))
            cells.append(f"t={step}: {np.median(ratios[:, step - 1]):.3g} [{low:.2g}-{high:.2g}]")
        print(f"  {label:28s} " + ", ".join(cells))
        summary[label] = float(np.median(ratios[:, 0]))
    for name, curves, bands, ylabel in (
            ("gradient_norms.png", absolute, absolute_bands,
             r"median $\Vert\partial\ell/\partial h_t\Vert$"),
            ("gradient_norms_relative.png", relative, relative_bands,
             r"median $\Vert\partial\ell/\partial h_t\Vert / "
             r"\Vert\partial\ell/\partial h_{100}\Vert$")):
        print("  wrote", plotting.plot_gradient_norms(
            curves, output_dir / name, bands=bands, ylabel=ylabel,
            title=f"gradient reaching each step: {len(x)} validation reviews "
                  "(median, 10th-90th percentile)"))
    for label, each in (("trained", model), ("untrained", untrained)):
        Wh = each.layers[1].get_weights()[1]
        singular = np.linalg.svd(Wh, compute_uv=False)
        radius = np.abs(np.linalg.eigvals(Wh)).max()
        print(f"  {label} Wh: singular values {singular.min():.3f}..{singular.max():.3f}, "
              f"spectral radius {radius:.3f}")
    print("  each step back multiplies the gradient by diag(1 - h_t^2) Wh^T; with |h| small "
          "and Wh near orthogonal it shrinks slowly, otherwise geometrically. The median "
          f"gradient reaching the first word is {summary['trained']:.2g} of the last word's "
          f"for the trained model ({summary['untrained (initial weights)']:.2g} untrained).")

    # (b) the hidden state over one review -------------------------------------------
    word_index = imdb.get_word_index()
    lengths = np.array([len(review) for review in data.val_input[sample]])
    chosen = int(np.argmax(lengths >= _common.MAXLEN))  # a review with no padding
    ids = data.val_seq[chosen]
    words = [imdb.decode_review([token], word_index) for token in ids]
    hidden = plotting.rnn_hidden_states(model, ids[None])[0]
    prediction = float(model.predict(ids[None], verbose=0)[0, 0])
    label = "positive" if data.val_target[chosen] else "negative"
    print(f"\n(b) hidden state over validation review {chosen} (a {label} review; the model "
          f"says {prediction:.3f}):")
    print("   ", " ".join(words))
    print("  wrote", plotting.plot_hidden_states(
        hidden, output_dir / "hidden_states.png", words=words, prediction=prediction,
        title=f"trained SimpleRNN(8) over validation review {chosen} ({label})"))

    # (c) the word embeddings ----------------------------------------------------------
    vocabulary = _common.word_list()
    effects = plotting.word_effects(model, x)
    order = np.argsort(effects)
    print("\n(c) effect of each word on the output logit when it is the last word read")
    print("  most positive:", ", ".join(f"{vocabulary[i]} {effects[i]:+.2f}"
                                        for i in order[::-1][:15]))
    print("  most negative:", ", ".join(f"{vocabulary[i]} {effects[i]:+.2f}"
                                        for i in order[:15]))
    embeddings = model.layers[0].get_weights()[0]
    print("  wrote", plotting.plot_embedding_pca(
        embeddings, output_dir / "embedding_pca.png", words=vocabulary, scores=effects,
        n_labels=15, score_label="effect on the output logit (last word)",
        title="learned word embeddings (500 x 16), PCA to 2-D"))
    print(f"\ndone in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
