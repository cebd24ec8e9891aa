import json

from mirkit import yamlio
from mirkit.gaia.groundtruth import load_groundtruth


def make_tree(root):
    for label in ("rock", "jazz"):
        (root / label / "sub").mkdir(parents=True)
        for name in ("same.json", "sub/other.json"):
            (root / label / name).write_text("{}")
    (root / "jazz" / ".hidden").write_text("")
    (root / "README").write_text("not a class")


def test_directory_mode(tmp_path, run_tool):
    make_tree(tmp_path / "data")
    res = run_tool("mkgroundtruth", tmp_path / "data", "-l", tmp_path / "fl.yaml", "-c", "genre",
                   "-o", tmp_path / "gt.yaml")
    assert res.returncode == 0, res.stderr
    gt = load_groundtruth(tmp_path / "gt.yaml")
    assert gt.class_name == "genre"
    assert gt.labels == {"jazz/same": "jazz", "jazz/sub/other": "jazz",
                         "rock/same": "rock", "rock/sub/other": "rock"}
    fl = yamlio.load(tmp_path / "fl.yaml", gaia=False)
    assert fl["rock/same"].endswith("rock/same.json")
    assert b"fewer than 5" in res.stderr  # 2 items per class


def test_table_mode_with_groups_and_errors(tmp_path, run_tool):
    (tmp_path / "t.tsv").write_text("# id label group\n01\tsad\tA\n02\thappy\tB\n01\thappy\tC\n03\t\tD\n\n")
    res = run_tool("mkgroundtruth", tmp_path / "t.tsv", "--folds", "1")
    assert res.returncode == 1
    err = res.stderr.decode()
    assert "t.tsv:4" in err and "duplicate id '01'" in err and "empty label" in err
    gt = yamlio.loads(res.stdout, gaia=False)
    assert gt["groundTruth"] == {"01": "sad", "02": "happy"}
    assert gt["groups"] == {"01": "A", "02": "B"}
    assert gt["type"] == "singleClass" and gt["version"] == 1.0 and gt["className"] == "t"


def test_records_mode(tmp_path, run_tool):
    recs = [{"metadata": {"id": f"f{i}.mp3", "tags": {"genre": [g], "artist": [f"a{i % 2}"]}}}
            for i, g in enumerate(["rock", "jazz", "rock"])]
    recs.append({"metadata": {"id": "nolabel"}})
    data = "\n".join(json.dumps(r) for r in recs).encode()
    res = run_tool("mkgroundtruth", "--label", "metadata.tags.genre", "--group",
                   "metadata.tags.artist", "-q", input=data)
    assert res.returncode == 1 and b"nolabel" in res.stderr
    gt = yamlio.loads(res.stdout, gaia=False)
    assert gt["className"] == "genre"
    assert gt["groundTruth"] == {"f0.mp3": "rock", "f1.mp3": "jazz", "f2.mp3": "rock"}
    assert gt["groups"] == {"f0.mp3": "a0", "f1.mp3": "a1", "f2.mp3": "a0"}


def test_nothing_found_is_fatal(tmp_path, run_tool):
    (tmp_path / "empty").mkdir()
    res = run_tool("mkgroundtruth", tmp_path / "empty")
    assert res.returncode == 2 and b"no labelled items" in res.stderr


def test_usage_errors(run_tool, tmp_path):
    assert run_tool("mkgroundtruth").returncode == 2
    assert run_tool("mkgroundtruth", tmp_path / "absent").returncode == 2


def test_csv_header_row_is_skipped(tmp_path, run_tool):
    # spreadsheets export a header; it must not become an item 'id' of class 'label'
    (tmp_path / "t.csv").write_text("ID,Label,group\nx,a,g1\ny,b,g2\nid,label\n")
    res = run_tool("mkgroundtruth", tmp_path / "t.csv", "--folds", "1")
    assert res.returncode == 0, res.stderr
    gt = yamlio.loads(res.stdout, gaia=False)
    # only the first row is a header: a later 'id,label' row is an item
    assert gt["groundTruth"] == {"x": "a", "y": "b", "id": "label"}
    assert gt["groups"] == {"x": "g1", "y": "g2"}


def test_filelist_paths_are_relative_to_the_filelist(tmp_path, run_tool):
    # `mkgroundtruth data -l sub/fl.yaml` wrote paths relative to the current directory,
    # but json2sig/gridsearch resolve them against the filelist's directory
    make_tree(tmp_path / "data")
    (tmp_path / "sub").mkdir()
    res = run_tool("mkgroundtruth", "data", "-l", "sub/fl.yaml", "-o", "gt.yaml",
                   "--folds", "1", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    fl = yamlio.load(tmp_path / "sub" / "fl.yaml", gaia=False)
    assert fl["rock/same"] == "../data/rock/same.json"
    for path in fl.values():
        assert (tmp_path / "sub" / path).exists()
    res = run_tool("json2sig", "--filelist", "sub/fl.yaml", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "data" / "rock" / "same.sig").exists()


def test_every_record_unlabelled_is_fatal_and_writes_nothing(tmp_path, run_tool):
    out = tmp_path / "gt.yaml"
    out.write_text("previous: content\n")
    data = "\n".join(json.dumps({"metadata": {"id": f"f{i}"}}) for i in range(3)).encode()
    res = run_tool("mkgroundtruth", "--label", "metadata.tags.genre", "-o", out, input=data)
    assert res.returncode == 2 and res.stdout == b""
    assert res.stderr.count(b"no label at") == 3
    assert out.read_text() == "previous: content\n"


def test_non_utf8_file_names(tmp_path, run_tool):
    """Ids are valid UTF-8 (undecodable bytes as \\xHH, as extract's ids); a filelist cannot
    name such a file: that entry is reported (exit 1), the rest is written."""
    import os
    make_tree(tmp_path / "t")
    open(os.path.join(os.fsencode(str(tmp_path / "t" / "rock")), b"caf\xe9.json"), "w").close()
    res = run_tool("mkgroundtruth", tmp_path / "t", "-q")
    assert res.returncode == 0, res.stderr
    assert yamlio.loads(res.stdout.decode("utf-8"), gaia=False)["groundTruth"]["rock/caf\\xe9"] == "rock"
    res = run_tool("mkgroundtruth", tmp_path / "t", "-q", "-l", tmp_path / "fl.yaml")
    assert res.returncode == 1 and b"caf\\xe9.json: file name is not valid UTF-8" in res.stderr
    assert "rock/caf\\xe9" not in yamlio.loads(res.stdout.decode("utf-8"), gaia=False)["groundTruth"]
    assert len(yamlio.load(str(tmp_path / "fl.yaml"), gaia=False)) == 4
    # a class folder whose name is not UTF-8: the class name follows the same rule
    os.rename(os.path.join(os.fsencode(str(tmp_path / "t")), b"jazz"),
              os.path.join(os.fsencode(str(tmp_path / "t")), b"j\xe9zz"))
    res = run_tool("mkgroundtruth", tmp_path / "t", "-q")
    assert res.returncode == 0, res.stderr
    assert "j\\xe9zz" in yamlio.loads(res.stdout.decode("utf-8"), gaia=False)["groundTruth"].values()
