"""Input validation, MFCC descriptors and the descriptor registry."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import soxr

from tfambient import sound
from tfambient.sound import InvalidAudio, mfcc

RATE = 22_050


@pytest.fixture(scope="module")
def noise():
    return np.random.default_rng(0).standard_normal(int(3.75 * RATE)).astype(np.float32) * 0.2


@pytest.mark.parametrize("name", list(sound.DESCRIPTORS))
@pytest.mark.parametrize(
    ("samples", "message"),
    [
        (np.zeros(0, np.float32), "empty"),
        (np.zeros(RATE // 2, np.float32), "at least 1 s"),
        (np.full(RATE * 2, np.nan, np.float32), "NaN or Inf"),
        (np.full(RATE * 2, np.inf, np.float32), "NaN or Inf"),
        (np.zeros(RATE * 2, np.complex64), "unsupported sample dtype"),
        (np.zeros(RATE * 2, bool), "unsupported sample dtype"),
        (np.zeros((2, 2, RATE * 2), np.float32), "expected a window shaped"),
    ],
    ids=["empty", "short", "nan", "inf", "complex", "bool", "3d"],
)
def test_bad_windows_are_refused_with_the_problem_named(name, samples, message):
    with pytest.raises(InvalidAudio, match=message):
        sound.DESCRIPTORS[name](samples, RATE)


def test_low_rate_is_refused():
    with pytest.raises(InvalidAudio, match="below the 8000 Hz minimum"):
        sound.describe(np.zeros((1, 8000)), 4000, "texture")


@pytest.mark.parametrize("name", list(sound.DESCRIPTORS))
@pytest.mark.parametrize("signal", ["silence", "constant"])
def test_silence_and_constant_signals_give_finite_vectors(name, signal):
    samples = np.zeros(RATE * 2) if signal == "silence" else np.full(RATE * 2, 0.25)
    vector = sound.DESCRIPTORS[name](samples, RATE)
    assert vector.shape == (sound.DESCRIPTORS[name].dim,)
    assert vector.dtype == np.float32
    assert np.isfinite(vector).all()


def test_mfcc_is_librosa_on_the_window_resampled_to_22050(noise):
    rate = 44_100
    samples = soxr.resample(noise, RATE, rate)
    expected = librosa.feature.mfcc(
        y=soxr.resample(samples, rate, RATE, quality="HQ"), sr=RATE, n_mfcc=20
    )
    got = sound.DESCRIPTORS["mfcc"](samples, rate).reshape(20, mfcc.NUM_FRAMES)
    frames = min(expected.shape[1], mfcc.NUM_FRAMES)
    np.testing.assert_allclose(got[:, :frames], expected[:, :frames], rtol=1e-4, atol=1e-3)


def test_mfcc_has_162_frames_for_375_s_and_pads_shorter_windows(noise):
    full = mfcc.mfcc_frames(noise[np.newaxis], RATE)
    assert full.shape == (1, 20, 162)
    assert np.all(full[..., -1] != 0)  # 3.75 s fills every frame
    short = mfcc.mfcc_frames(noise[np.newaxis, : 2 * RATE], RATE)
    assert short.shape == (1, 20, 162)
    assert np.all(short[..., 100:] == 0)


def test_mfcc_summary_is_mean_then_std_over_time(noise):
    frames = mfcc.mfcc_frames(noise[np.newaxis], RATE)[0]
    summary = sound.DESCRIPTORS["mfcc_summary"](noise, RATE)
    np.testing.assert_allclose(summary[:20], frames.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(summary[20:], frames.std(axis=1), rtol=1e-5)


def test_describe_batches_and_matches_single_windows(noise):
    windows = np.stack([noise, noise[::-1], 0.5 * noise])
    batch = sound.describe(windows, RATE, "texture,mfcc,mfcc_summary")
    for name, vectors in batch.items():
        assert vectors.shape == (3, sound.DESCRIPTORS[name].dim)
        np.testing.assert_allclose(
            vectors[1], sound.DESCRIPTORS[name](windows[1], RATE), rtol=1e-5, atol=1e-5
        )


def test_describe_computes_a_shared_base_feature_once(monkeypatch, noise):
    calls = []
    original = sound.DESCRIPTORS["mfcc"].features

    def counting(windows, rate):
        calls.append(rate)
        return original(windows, rate)

    for name in ("mfcc", "mfcc_summary"):
        d = sound.DESCRIPTORS[name]
        monkeypatch.setitem(
            sound.DESCRIPTORS,
            name,
            sound.Descriptor(d.name, d.dim, counting, d.summarize, d.params, d.doc),
        )
    sound.describe(noise[np.newaxis], RATE, ["mfcc", "mfcc_summary"])
    assert calls == [RATE]


@pytest.mark.parametrize(
    ("names", "error"),
    [
        ("texture,nope", "unknown descriptor nope"),
        ("", "no descriptor named"),
        (",", "no descriptor"),
    ],
)
def test_parse_names_rejects_unknown_and_empty(names, error):
    with pytest.raises(ValueError, match=error):
        sound.parse_names(names)


def test_parse_names_keeps_order_and_drops_repeats():
    assert sound.parse_names(" mfcc ,texture,mfcc") == ["mfcc", "texture"]


def test_registry_records_dimensions_and_parameters():
    assert {n: d.dim for n, d in sound.DESCRIPTORS.items()} == {
        "texture": 502,
        "mfcc": 3240,
        "mfcc_summary": 40,
    }
    assert sound.DESCRIPTORS["texture"].params["num_bands"] == 30
    assert sound.DESCRIPTORS["mfcc"].params["n_mfcc"] == 20


def _clip_windows(noise):
    """Windows of three 'clips': two at RATE (one stereo int16), one at 16 kHz."""
    other = np.random.default_rng(1).standard_normal(int(3.75 * 16000)).astype(np.float32) * 0.2
    stereo = (np.stack([noise, noise[::-1]], axis=1) * 20000).astype(np.int16)
    return [noise, other, 0.5 * noise, stereo, other[::-1].copy()], [RATE, 16000, RATE, RATE, 16000]


def test_describe_windows_pools_clips_and_keeps_their_order(monkeypatch, noise):
    windows, rates = _clip_windows(noise)
    alone = [
        sound.describe(sound.as_batch(w), r, "texture,mfcc_summary")
        for w, r in zip(windows, rates, strict=True)
    ]
    batches = []
    real_describe = sound.describe
    monkeypatch.setattr(
        sound, "describe", lambda w, r, n: batches.append(len(w)) or real_describe(w, r, n)
    )
    described = sound.describe_windows(windows, rates, "texture,mfcc_summary")
    assert sorted(batches) == [1, 2, 2]  # (RATE, mono), (16 kHz, mono), (RATE, stereo)
    assert described.failures == {}
    for name, vectors in described.values.items():
        assert vectors.shape == (len(windows), sound.DESCRIPTORS[name].dim)
        for row, single in zip(vectors, alone, strict=True):
            np.testing.assert_allclose(row, single[name][0], rtol=1e-5, atol=1e-5)


def test_describe_windows_lists_bad_windows_and_describes_the_rest(noise):
    windows, rates = _clip_windows(noise)
    windows[2] = np.full_like(noise, np.nan)
    windows[4] = windows[4][:1000]  # a short window, alone in its batch
    rates[1] = 4000  # below the minimum rate
    described = sound.describe_windows(windows, rates, "mfcc_summary")
    assert sorted(described.failures) == [1, 2, 4]
    assert "NaN or Inf" in described.failures[2] and "at least 1 s" in described.failures[4]
    assert "minimum" in described.failures[1]
    vectors = described.values["mfcc_summary"]
    assert np.isnan(vectors[[1, 2, 4]]).all() and np.isfinite(vectors[[0, 3]]).all()
    np.testing.assert_allclose(
        vectors[0], sound.describe(noise[None], RATE, "mfcc_summary")["mfcc_summary"][0], rtol=1e-5
    )


def test_mfcc_of_a_window_does_not_depend_on_its_batch(noise):
    # librosa floors decibels at 80 dB below the peak of all it is given: a loud window in
    # the batch must not raise a quiet one's floor.
    quiet, loud = 1e-3 * noise, noise[::-1].copy()
    alone = sound.describe(quiet[None], RATE, "mfcc")["mfcc"][0]
    together = sound.describe(np.stack([quiet, loud]), RATE, "mfcc")["mfcc"][0]
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-4)
