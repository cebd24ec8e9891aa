"""Gaia's descriptor-name pattern semantics (gaia.md §2)."""

import pytest

from mirkit.errors import MirkitError
from mirkit.gaia.patterns import match_pattern, select_names

NAMES = [
    "lowlevel.mfcc.mean", "lowlevel.mfcc.cov", "lowlevel.mfcc.icov",
    "lowlevel.barkbands.mean", "lowlevel.barkbands_crest.var", "lowlevel.spectral_flux.dmean",
    "lowlevel.spectral_flux.dmean2", "lowlevel.spectral_flux.max",
    "rhythm.bpm_histogram", "rhythm.bpm_histogram_first_peak_bpm", "tonal.chords_key",
    "tonal.key_edma.key", "tonal.key_krumhansl.key", "metadata.tags.artist",
]


def test_leading_star_matches_whole_name():
    assert match_pattern(NAMES, "*cov") == ["lowlevel.mfcc.cov", "lowlevel.mfcc.icov"]
    assert match_pattern(NAMES, "*dmean*") == ["lowlevel.spectral_flux.dmean",
                                                "lowlevel.spectral_flux.dmean2"]
    assert match_pattern(NAMES, "*.max") == ["lowlevel.spectral_flux.max"]


def test_leading_dot_is_absolute():
    assert match_pattern(NAMES, ".tonal.chords_key") == ["tonal.chords_key"]
    with pytest.raises(MirkitError):
        match_pattern(NAMES, ".chords_key")


def test_relative_pattern_with_prefix():
    assert match_pattern(NAMES, "barkbands*") == ["lowlevel.barkbands.mean",
                                                   "lowlevel.barkbands_crest.var"]
    assert match_pattern(NAMES, "rhythm.bpm_histogram") == ["rhythm.bpm_histogram"]
    assert match_pattern(NAMES, "mfcc.mean") == ["lowlevel.mfcc.mean"]
    assert match_pattern(NAMES, "metadata.*") == ["metadata.tags.artist"]


def test_ambiguous_pattern():
    # '.key' is found under two prefixes (.tonal.key_edma and .tonal.key_krumhansl)
    with pytest.raises(MirkitError) as err:
        match_pattern(NAMES, "key")
    assert 'pattern "key" is ambiguous' in str(err.value)


def test_unmatched_pattern():
    with pytest.raises(MirkitError) as err:
        match_pattern(NAMES, "tonal.key_key")
    assert str(err.value) == 'PointLayout: pattern "tonal.key_key" didn\'t match any descriptor'
    assert match_pattern(NAMES, "tonal.key_key", fail_on_unmatched=False) == []
    assert match_pattern([], "*") == []  # '*' never fails


def test_select_with_except_keeps_input_order():
    got = select_names(NAMES, ["lowlevel*", "rhythm.*"], exclude=["*mfcc*", "*dmean*"])
    assert got == ["lowlevel.barkbands.mean", "lowlevel.barkbands_crest.var",
                   "lowlevel.spectral_flux.max", "rhythm.bpm_histogram",
                   "rhythm.bpm_histogram_first_peak_bpm"]


def test_question_mark_and_sets():
    assert match_pattern(NAMES, "*.mfcc.?cov") == ["lowlevel.mfcc.icov"]
    assert match_pattern(NAMES, "*.[ci]cov") == ["lowlevel.mfcc.icov"]
