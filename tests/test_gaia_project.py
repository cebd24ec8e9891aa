"""Project files: built-in templates, template choice, grid expansion (gaia.md §1.4)."""

import pytest

from mirkit import yamlio
from mirkit.errors import MirkitError
from mirkit.gaia.project import Project, template_text, template_version, write_default_project


def test_beta5_template_grid(tmp_path):
    path = tmp_path / "p.yaml"
    write_default_project(path, "2.1-beta5", "genre", str(tmp_path), "fl.yaml", "gt.yaml")
    p = Project.load(path)
    configs = p.configurations()
    assert len(configs) == 1728  # 6 x 1 x 2 x 9 x 8 x 2
    assert configs[0] == {"preprocessing": "basic", "type": "C-SVC", "kernel": "poly", "C": -5,
                          "gamma": 3, "balanceClasses": False, "classifier": "svm"}
    assert p.evaluations() == [{"nfold": 5, "type": "nfoldcrossvalidation"}]
    assert p.excluded == ["metadata.tags*"] and p.seed == 1
    assert p.results_dir == str(tmp_path / "results")
    # aliases expand to the same lists
    assert p.preprocessing["basic"][0] == p.preprocessing["mfcc"][0]
    assert "rhythm.bpm_histogram" in p.preprocessing["basic"][0]["params"]["descriptorNames"]
    assert p.get("numberProcesses") is False
    assert "&unusedDescs" in path.read_text() and "*stringDescs" in path.read_text()


def test_beta2_template_differences():
    data = yamlio.loads(template_text("2.1-beta2", "c", "d", "r", "f", "g"), gaia=False)
    assert "numberProcesses" not in data
    basic = data["preprocessing"]["basic"]
    assert basic[0]["params"]["descriptorNames"][-1] == "lowlevel.silence_rate*"
    assert basic[1]["params"]["descriptorNames"] == ["tonal.chords_key", "tonal.chords_scale",
                                                     "tonal.key_key", "tonal.key_scale"]


@pytest.mark.parametrize("versions,expected", [
    (["2.1-beta5-dev"], "2.1-beta5"), (["2.1-beta6-dev", "2.1-beta6-dev"], "2.1-beta5"),
    (["2.1-beta2"], "2.1-beta2"), ([], "2.1-beta2"), (["2.1-beta5-dev", "2.1-beta2"], "2.1-beta2"),
    (["2.0.1"], "2.1-beta2"),
])
def test_template_choice(versions, expected):
    assert template_version(versions) == expected


def test_force_consistency():
    with pytest.raises(MirkitError, match="different Essentia versions"):
        template_version(["2.1-beta5-dev", "2.1-beta2"], force_consistency=True)


def test_missing_keys_fall_back_like_gaia():
    p = Project({"className": "c", "classifiers": {"svm": [{"kernel": ["RBF"], "C": [1],
                                                            "gamma": [1]}]}})
    assert p.evaluations() == [{"nfold": 10, "type": "nfoldcrossvalidation"}]
    assert [c["preprocessing"] for c in p.configurations()] == ["default"]
    with pytest.raises(MirkitError, match="not defined"):
        Project({"className": "c", "preprocessing": {"a": []},
                 "classifiers": {"svm": [{"preprocessing": ["b"]}]}}).configurations()


def test_mirkit_records_choose_the_beta5_template():
    # mirkit's extract writes the music 2.0 layout (tonal.key_edma..., no tonal.key_key) and
    # metadata.version.mirkit instead of .essentia: the beta2 default template would fail on
    # every configuration ("pattern tonal.key_key didn't match any descriptor").
    from mirkit.gaia.dataset import essentia_version
    record = {"metadata": {"version": {"mirkit": "0.1.0", "extractor": "music 2.0"}}}
    assert essentia_version(record) == "2.1-beta6"
    assert template_version([essentia_version(record)]) == "2.1-beta5"
    assert essentia_version({"metadata": {"version": {"essentia": "2.1-beta2"}}}) == "2.1-beta2"
    assert essentia_version({"metadata": {}}) is None
    assert essentia_version({}) is None
