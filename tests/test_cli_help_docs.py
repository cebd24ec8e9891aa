"""--help and man pages agree with what the tools do (README/man-page QA)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _help_of(run_tool, name, option):
    proc = run_tool(name, "--help")
    assert proc.returncode == 0, proc.stderr.decode()
    text = " ".join(proc.stdout.decode().split())  # argparse wraps lines
    match = re.search(re.escape(option) + r" N (.*?)(?: --\w|$)", text)
    assert match, text
    return match.group(1)


def test_jobs_default_in_help(run_tool):
    # gridsearch takes the project's numberProcesses when -j is not given
    # (commands/gridsearch.py), extract always defaults to all cores
    grid = _help_of(run_tool, "gridsearch", "--jobs")
    assert "default: the project's numberProcesses when it is a number, else all cores" in grid
    assert "default: all cores" in _help_of(run_tool, "extract", "--jobs")
    page = (ROOT / "man" / "man1" / "gridsearch.1").read_text()
    assert "numberProcesses" in page


def test_dask_install_hint_is_installable(run_tool):
    # mirkit is not on PyPI: the hint must name Dask itself, not `pip install mirkit[dask]`
    for name in ("extract", "gridsearch"):
        text = " ".join(run_tool(name, "--help").stdout.decode().split())
        assert "pip install 'dask[distributed]'" in text
        assert "pip install 'mirkit[dask]'" not in text
        page = (ROOT / "man" / "man1" / f"{name}.1").read_text()
        assert r"\(aqmirkit[dask]\(aq" not in page


def test_unknown_statistic_names_the_profile(run_tool, tmp_path):
    # extract(1): "Unknown keys and statistics are errors"; like an unknown key, an unknown
    # statistic is reported as `extract: PROFILE: reason` (exit 2)
    profile = tmp_path / "p.yaml"
    profile.write_text("lowlevel:\n  stats: [mean, bogus]\n")
    clip = ROOT / "examples" / "audio" / "chromium-bsu-music-game.wav"
    proc = run_tool("extract", "--profile", profile, clip)
    assert proc.returncode == 2
    assert proc.stdout == b""
    err = proc.stderr.decode()
    assert err.startswith(f"extract: {profile}: profile key lowlevel.stats: unknown statistic(s) "
                          "bogus"), err
    assert len(err.splitlines()) == 1
