"""Chapter 9-2, the data: IMDB reviews as lists of word ids, their lengths, and padding.

    python examples/01_explore_data.py [--quick] [--output-dir DIR] [--data-dir DIR]

Prints what the book prints (shapes, the first reviews' lengths, the labels), one review
decoded back to words, the length statistics of the 20,000 training reviews (the book:
mean 239.00925, median 178.0) and what ``pad_sequences(maxlen=100)`` does: it keeps the
*last* 100 words of a long review and pads a short one with 0 at the *front*. Writes
``length_histogram.png``.
"""

import _common
import numpy as np
from sklearn.model_selection import train_test_split

from nprnn import plotting
from nprnn.datasets import imdb
from nprnn.preprocessing.sequence import pad_sequences


def main():
    args = _common.parser(__doc__).parse_args()
    output_dir = _common.setup(args)

    print("-- the data, as imdb.load_data(num_words=500) gives it --")
    (train_input, train_target), (test_input, test_target) = imdb.load_data(
        num_words=_common.NUM_WORDS)
    print("train_input.shape, test_input.shape =", train_input.shape, test_input.shape,
          " (book: (25000,) (25000,))")
    print("len(train_input[0]) =", len(train_input[0]), " len(train_input[1]) =",
          len(train_input[1]), " (book: 218 189)")
    print("train_target[:20] =", train_target[:20])
    print("                     (book: [1 0 0 1 0 0 1 0 1 0 1 0 0 0 0 0 1 1 0 1])")
    word_index = imdb.get_word_index()
    print("\nthe first review decoded (1 = <start>, 2 = <unk>: a word outside the 500 most "
          "frequent):")
    print("  ", imdb.decode_review(train_input[0], word_index)[:500], "...")

    train_input, val_input, train_target, val_target = train_test_split(
        train_input, train_target, test_size=0.2, random_state=42)
    print(f"\ntrain_test_split(test_size=0.2, random_state=42): {len(train_input):,} train, "
          f"{len(val_input):,} validation")
    if args.quick:
        train_input = train_input[:_common.QUICK["train"]]
        print(f"[--quick] keeping the first {len(train_input):,} training reviews")

    print("\n-- lengths of the training reviews (after train_test_split) --")
    lengths = np.array([len(x) for x in train_input])
    mean, median = np.mean(lengths), np.median(lengths)
    print(f"np.mean(lengths), np.median(lengths) = {mean} {median}")
    if not args.quick:
        book_mean, book_median = _common.BOOK["train_length_mean"], \
            _common.BOOK["train_length_median"]
        same = np.isclose(mean, book_mean) and median == book_median
        print(f"  book: {book_mean} {book_median}  -> {'identical' if same else 'DIFFERENT'}")
    print(f"reviews longer than {_common.MAXLEN} words: {np.mean(lengths > _common.MAXLEN):.1%}"
          f"; longer than 300: {np.mean(lengths > 300):.1%}")
    path = plotting.plot_length_histogram(lengths, output_dir / "length_histogram.png",
                                          maxlen=_common.MAXLEN,
                                          title="IMDB training reviews (num_words=500)")
    print("wrote", path)

    print("\n-- pad_sequences(train_input, maxlen=100) --")
    train_seq = pad_sequences(train_input, maxlen=_common.MAXLEN)
    print("train_seq.shape =", train_seq.shape, " (book: (20000, 100))")
    print("train_seq[0][-10:]        =", train_seq[0][-10:].tolist())
    print("train_input[0][-10:]      =", train_input[0][-10:],
          "  <- a long review keeps its LAST 100 words")
    short = int(np.argmax(lengths < _common.MAXLEN))
    print(f"train_seq[{short}][:12]        =", train_seq[short][:12].tolist(),
          f"  <- review {short} has {lengths[short]} words: zeros in FRONT")
    print(f"train_seq.nbytes = {train_seq.nbytes:,} bytes (int32)")


if __name__ == "__main__":
    main()
