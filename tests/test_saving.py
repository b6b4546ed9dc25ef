"""save / load_model round trips: architecture, weights and optimizer state, both formats."""

import numpy as np
import pytest

import nprnn as keras


def trained_model(samples=64):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 40, size=(samples, 12))
    y = (ids[:, -1] < 20).astype(int)
    model = keras.Sequential([keras.layers.Embedding(40, 6, input_length=12),
                              keras.layers.SimpleRNN(5),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-3),
                  loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(ids, y, epochs=2, batch_size=16, verbose=0)
    return model, ids, y


@pytest.mark.parametrize("name", ["model.npz", "model.nprnn", "model.keras",
                                  "best-embedding-model.h5"])
def test_round_trip_resumes_training_identically(tmp_path, name):
    model, ids, y = trained_model()
    path = tmp_path / name
    model.save(path)
    loaded = keras.load_model(path)
    assert loaded.get_config()["layers"] == model.get_config()["layers"]
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    np.testing.assert_array_equal(model.predict(ids, verbose=0), loaded.predict(ids, verbose=0))
    assert loaded.optimizer.iterations == model.optimizer.iterations
    # The optimizer's state came along: one more step gives the same weights in both.
    model.train_on_batch(ids[:16], y[:16])
    loaded.train_on_batch(ids[:16], y[:16])
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_models_namespace_load_model(tmp_path):
    model, _, _ = trained_model()
    model.save(tmp_path / "m.npz")
    assert keras.models.load_model(tmp_path / "m.npz").count_params() == model.count_params()


def test_save_weights_and_load_weights(tmp_path):
    model, ids, _ = trained_model()
    for name in ("w.h5", "w.npz"):
        model.save_weights(tmp_path / name)
        fresh = keras.Sequential([keras.layers.Embedding(40, 6, input_length=12),
                                  keras.layers.SimpleRNN(5),
                                  keras.layers.Dense(1, activation="sigmoid")])
        fresh.load_weights(tmp_path / name)
        np.testing.assert_array_equal(fresh.predict(ids, verbose=0), model.predict(ids, verbose=0))


def test_files_hold_no_pickle(tmp_path):
    model, _, _ = trained_model()
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:
        assert all(archive[name].dtype != object for name in archive.files)


def test_checkpoint_writes_the_best_model(tmp_path):
    model, ids, y = trained_model()
    path = tmp_path / "best-embedding-model.h5"
    checkpoint = keras.callbacks.ModelCheckpoint(str(path), save_best_only=True)
    stopper = keras.callbacks.EarlyStopping(patience=1, restore_best_weights=True)
    history = model.fit(ids, y, epochs=6, batch_size=16, verbose=0,
                        validation_data=(ids[:32], y[:32]), callbacks=[checkpoint, stopper])
    best = int(np.argmin(history.history["val_loss"]))
    loaded = keras.load_model(path)
    # The checkpoint holds the best epoch's weights, which EarlyStopping restored too.
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert loaded.evaluate(ids[:32], y[:32], verbose=0)[0] == pytest.approx(
        history.history["val_loss"][best], rel=1e-5)


def test_saved_files_get_the_permissions_open_would_give(tmp_path):
    import os
    import stat

    model, _, _ = trained_model()
    umask = os.umask(0o022)
    try:
        for name in ("m.npz", "m.h5"):
            model.save(tmp_path / name)
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644
        os.chmod(tmp_path / "m.h5", 0o600)  # an existing file keeps its mode
        model.save(tmp_path / "m.h5")
        assert stat.S_IMODE((tmp_path / "m.h5").stat().st_mode) == 0o600
    finally:
        os.umask(umask)


def test_a_flipped_bit_in_an_h5_weight_is_detected(tmp_path):
    import h5py

    model, _, _ = trained_model()
    path = tmp_path / "m.h5"
    model.save(path)
    with h5py.File(path, "r") as handle:
        group = handle["model_weights/embedding"]
        dataset = group[group.attrs["weight_names"][0].decode()]
        assert dataset.fletcher32
        offset = dataset.id.get_chunk_info(0).byte_offset
    data = bytearray(path.read_bytes())
    data[offset + 17] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=str(path)):
        keras.load_model(path)
