"""Rhythm descriptors (lib/mirkit/extractor/rhythm.py) on click tracks of known tempo and on
hand-computed inputs."""

import numpy as np
import pytest

from mirkit.errors import MirkitError
from mirkit.extractor import rhythm

SR = 44100


def click_track(bpm, seconds=15.0, start=0.25, freq=None, seed=0):
    """Noise bursts (or sine bursts at ``freq``) every 60/bpm s; returns (signal, click times)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    x = 1e-3 * rng.standard_normal(n)
    times = np.arange(start, seconds - 0.2, 60.0 / bpm)
    L = 1500
    env = np.exp(-np.arange(L) / 250.0)
    for t in times:
        k = int(t * SR)
        if freq is None:
            burst = rng.standard_normal(L)
        else:
            burst = np.sin(2 * np.pi * freq * np.arange(L) / SR) * 3
        x[k:k + L] += 0.5 * burst * env
    return (0.9 * x / np.abs(x).max()).astype(np.float32), times


@pytest.mark.parametrize("bpm", [90.0, 120.0, 150.0])
def test_click_track_tempo_and_beats(bpm):
    x, clicks = click_track(bpm)
    rec = rhythm.compute(x, SR)
    assert rec["bpm"] == pytest.approx(bpm, rel=0.01)
    beats = np.array(rec["beats_position"])
    assert rec["beats_count"] == len(beats)
    # every beat after 1.5 s sits on a click (within 50 ms: ODF grid 11.6 ms, 2048-sample frames)
    late = beats[beats > 1.5]
    err = np.min(np.abs(late[:, None] - clicks[None, :]), axis=1)
    assert np.all(err < 0.05)
    assert len(late) >= len(clicks[clicks > 1.5]) - 1
    assert rec["bpm_histogram_first_peak_bpm"] == pytest.approx(bpm, abs=2)
    assert len(rec["bpm_histogram"]) == 250


def test_bpm_from_ticks_hand_example():
    # tempi 120, 120, 120, 100 -> most common half-tempo 60 -> 120; mean of tempi within 5 BPM
    assert rhythm.bpm_from_ticks([0.0, 0.5, 1.0, 1.5, 2.1]) == pytest.approx(120.0, rel=1e-6)
    assert rhythm.bpm_from_ticks([1.0]) == 0.0


def test_bpm_histogram_hand_example():
    # 8 intervals at 120 BPM, 2 at 124 BPM: hist[120] = 0.8, hist[124] = 0.2.
    # first peak 120: weight = h[119..121] = 0.8; spread = 1 - 0.8 / sum(h[116..124]) = 0.2.
    # Those 9 bins are then zeroed, nothing is left: second peak 0 / 0 / 0.
    iv = [0.5] * 8 + [60.0 / 124] * 2
    hist, peaks = rhythm.bpm_histogram_descriptors(iv)
    assert hist[120] == pytest.approx(0.8) and hist[124] == pytest.approx(0.2)
    assert peaks[0] == pytest.approx((120.0, 0.8, 0.2))
    assert peaks[1] == (0.0, 0.0, 0.0)
    # intervals shorter than 60/250 s are dropped
    hist, peaks = rhythm.bpm_histogram_descriptors([0.1, 0.5])
    assert hist.sum() == pytest.approx(1.0) and peaks[0][0] == 120.0


def test_first_peak_weight_and_spread_are_both_output():
    x, _ = click_track(120.0, 10.0)
    rec = rhythm.compute(x, SR)
    hist = np.array(rec["bpm_histogram"])
    i = int(rec["bpm_histogram_first_peak_bpm"])
    weight = hist[max(0, i - 1):i + 2].sum()
    assert rec["bpm_histogram_first_peak_weight"] == pytest.approx(weight, abs=1e-6)
    spread = 1 - weight / hist[max(0, i - 4):i + 5].sum()
    assert rec["bpm_histogram_first_peak_spread"] == pytest.approx(spread, abs=1e-6)


def test_onset_rate_of_clicks():
    x, clicks = click_track(120.0, 12.0)
    assert rhythm.onset_rate(x) == pytest.approx(len(clicks) / 12.0, rel=0.12)


def test_danceability_of_white_noise():
    # std series of white noise is uncorrelated: DFA exponent about 0.5, danceability about 2
    x = (0.1 * np.random.default_rng(1).standard_normal(20 * SR)).astype(np.float32)
    assert 1.6 < rhythm.danceability(x) < 2.6
    assert rhythm.danceability(np.zeros(100, np.float32)) == 0.0


def test_beats_loudness_low_band():
    # 100 Hz bursts on the beats: the 0-200 Hz band holds almost all the energy
    x, clicks = click_track(100.0, 8.0, freq=100.0)
    loud, ratios = rhythm.beats_loudness(x, clicks)
    assert len(loud) == len(clicks) and ratios.shape == (len(clicks), 6)
    assert np.all(loud > 0) and np.all(ratios[:, 0] > 0.9)
    # a beat too close to the end yields nothing
    loud, _ = rhythm.beats_loudness(x, [len(x) / SR - 0.01])
    assert len(loud) == 0


def test_silence_and_options():
    rec = rhythm.compute(np.zeros(4 * SR, np.float32), SR, {"rhythm.stats": ["mean"]})
    assert set(rec["beats_loudness"]) == {"mean"}
    assert rec["beats_count"] == len(rec["beats_position"])
    assert rec["onset_rate"] == 0.0
    with pytest.raises(MirkitError):
        rhythm.compute(np.zeros(SR, np.float32), SR, {"method": "bogus"})
    with pytest.raises(MirkitError):
        rhythm.compute(np.zeros(SR, np.float32), SR, {"minTempo": 200, "maxTempo": 100})


def test_tempo_range_option():
    # 200 BPM clicks with maxTempo 120: the tracker must settle on half tempo
    x, _ = click_track(200.0, 12.0)
    rec = rhythm.compute(x, SR, {"minTempo": 40, "maxTempo": 120})
    assert rec["bpm"] == pytest.approx(100.0, rel=0.02)


def test_output_frames_option():
    x, clicks = click_track(120.0, 6.0)
    rec, frames = rhythm.compute(x, SR, {"outputFrames": True})
    # the frames record has the raw per-beat values and no beats_count (as Essentia's)
    assert "beats_count" not in frames and rec["beats_count"] == len(frames["beats_position"])
    assert len(frames["beats_loudness"]) == len(frames["beats_loudness_band_ratio"])
    assert rec["beats_loudness"]["max"] == pytest.approx(max(frames["beats_loudness"]))


def test_rhythm_and_tonal_from_a_spilled_store_equal_the_array_path(monkeypatch):
    # long inputs reach rhythm/tonal as a signal store read block by block: same values
    from mirkit.extractor import stream, tonal
    x, _ = click_track(120.0, seconds=12.0)
    monkeypatch.setattr(stream, "MEMORY_LIMIT", 1000)       # the store spills to a file
    store = stream.SignalStore(len(x))
    for i in range(0, len(x), 50000):
        store.append(x[i:i + 50000])
    assert store.spilled
    s0 = stream.ScaledStore(store, 1.0)
    for mod in (rhythm, tonal):
        a, b = mod.compute(x, SR), mod.compute(s0, SR)
        assert a == b, mod.__name__
    store.close()
