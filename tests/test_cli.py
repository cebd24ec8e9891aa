"""Behaviour every tool gets from the shared base (design.md §4), and docs that agree."""

import importlib.util
import re
import shutil
import subprocess
import sys

import msgpack
import pytest

from conftest import BIN, ROOT, tool_env

TOOLS = ["extract", "json2sig", "mkgroundtruth", "gridsearch", "retrain", "classify"]


def available(tool):
    return importlib.util.find_spec(f"mirkit.commands.{tool}") is not None


@pytest.fixture(params=TOOLS)
def tool(request):
    if not available(request.param):
        pytest.skip(f"{request.param} not implemented yet")
    return request.param


def test_help_and_version(tool, run_tool):
    res = run_tool(tool, "--help")
    assert res.returncode == 0 and b"usage: " + tool.encode() in res.stdout
    res = run_tool(tool, "--version")
    assert res.returncode == 0 and res.stdout.startswith(tool.encode() + b" (mirkit) ")


def test_unknown_option_is_usage_error(tool, run_tool):
    res = run_tool(tool, "--no-such-option")
    assert res.returncode == 2 and res.stderr.startswith(b"usage:") or tool.encode() in res.stderr


def option_strings(text):
    return set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", text))


def test_man_page_documents_every_option(tool, run_tool):
    page = ROOT / "man" / "man1" / f"{tool}.1"
    assert page.exists(), f"no man page for {tool}"
    roff = page.read_text().replace("\\-", "-").replace("\\f[BIRP]", "")
    roff = re.sub(r"\\f[BIRP]", "", roff)
    helptext = run_tool(tool, "--help").stdout.decode()
    helpopts = {o for o in option_strings(helptext.split("\n", 1)[1]) if len(o) > 2 or o[1].isalpha()}
    missing = sorted(o for o in helpopts if o not in roff)
    assert not missing, f"{tool}.1 lacks {missing}"
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "EXAMPLES"):
        assert f".SH {section}" in roff


@pytest.mark.skipif(shutil.which("man") is None, reason="man not installed")
def test_man_pages_render_without_warnings():
    pages = sorted((ROOT / "man").glob("man*/*.[17]"))
    assert pages
    for page in pages:
        res = subprocess.run(["man", "--warnings", "-l", str(page)], capture_output=True,
                             env={**tool_env(), "MANWIDTH": "80", "LC_ALL": "C.UTF-8"})
        assert res.returncode == 0 and not res.stderr.strip(), (page, res.stderr)


def test_no_tensorflow_import_without_a_tf_model():
    code = ("import sys\n"
            "for t in %r:\n"
            "    try:\n        __import__('mirkit.commands.' + t)\n    except ImportError:\n        pass\n"
            "import mirkit.modelio, mirkit.streams\n"
            "print('tensorflow' in sys.modules)\n" % (TOOLS,))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, env=tool_env())
    assert res.stdout.strip() == b"False", res.stderr


def test_bad_inputs_give_one_clear_line(tmp_path, run_tool):
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("a: [1, 2\nb: 3\n")
    res = run_tool("json2sig", "--filelist", bad_yaml)
    assert res.returncode == 2
    assert re.fullmatch(rb"json2sig: .*bad\.yaml: invalid YAML at line \d+, column \d+: .*\n", res.stderr)

    trunc = msgpack.packb({"metadata": {"id": "a"}}) + msgpack.packb({"metadata": {"id": "b"}})[:-2]
    res = run_tool("json2sig", "-d", tmp_path / "out", input=trunc)
    assert res.returncode == 1
    assert re.fullmatch(rb"json2sig: -: truncated msgpack stream at byte offset \d+ .*\n", res.stderr)
    assert (tmp_path / "out" / "a.sig").exists()  # the complete record before the fault

    res = run_tool("json2sig", "-d", tmp_path / "out", "-o", tmp_path / "no" / "dir" / "fl.yaml",
                   input=msgpack.packb({"metadata": {"id": "c"}}))
    assert res.returncode == 2 and b"fl.yaml" in res.stderr


def test_output_is_atomic_on_failure(tmp_path, run_tool):
    """A failing run leaves an existing -o file untouched, and no temp files behind."""
    out = tmp_path / "fl.yaml"
    out.write_text("previous: content\n")
    res = run_tool("json2sig", "--filelist", tmp_path / "absent.yaml", "-o", out)
    assert res.returncode == 2
    assert out.read_text() == "previous: content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fl.yaml"]


def test_output_or_project_dir_that_cannot_be_used_is_one_line(tmp_path, run_tool):
    """-o naming a directory, and a -d that cannot be created: one line, exit 2, no
    traceback and no temp file left behind."""
    res = run_tool("mkgroundtruth", "-q", "--label", "metadata.genre", "-o", tmp_path,
                   input=b'{"metadata": {"id": "a", "genre": "x"}}\n')
    assert res.returncode == 2, res.stderr
    assert re.fullmatch(rb"mkgroundtruth: .*: cannot write: is a directory\n", res.stderr)
    assert list(tmp_path.iterdir()) == []
    blocker = tmp_path / "file"
    blocker.write_text("")
    gt = tmp_path / "gt.yaml"
    gt.write_text("className: c\ngroundTruth: {a: x}\ntype: singleClass\nversion: 1.0\n")
    res = run_tool("gridsearch", gt, "-", "-d", blocker / "project",
                   input=b'{"metadata": {"id": "a"}}\n')
    assert res.returncode == 2, res.stderr
    assert b"Traceback" not in res.stderr and len(res.stderr.splitlines()) == 1
    assert b"project" in res.stderr


@pytest.mark.parametrize("tool_name", ["extract", "gridsearch"])
def test_negative_jobs_is_a_usage_error(tool_name, run_tool):
    # -j -1 used to be taken silently as "all cores"
    res = run_tool(tool_name, "-j", "-1", "x")
    assert res.returncode == 2 and b"number of jobs must be 0" in res.stderr


def test_no_progress_bar_over_records_printed_on_the_terminal(monkeypatch):
    # `extract song.wav` on a terminal printed "extract: extracting [###] 1/1{" (the bar and
    # the JSON record on one line): no bar when records go to the terminal, a bar with -o
    import io
    from mirkit.cli import Tool

    class Tty(io.StringIO):
        def isatty(self):
            return True

    class Dummy(Tool):
        name = "dummy"

        def run(self, args):
            return 0

    monkeypatch.setattr(sys, "stdout", Tty())
    monkeypatch.setattr(sys, "stderr", Tty())
    tool = Dummy()
    tool.args = tool.parser.parse_args([])
    assert not tool.progress("working", 3).enabled
    tool.args = tool.parser.parse_args(["-o", "out.msgpack"])
    assert tool.progress("working", 3).enabled
    tool.args = tool.parser.parse_args(["-q", "-o", "out.msgpack"])
    tool.verbosity = 0
    assert not tool.progress("working", 3).enabled


def test_every_input_failed_is_exit_2_and_writes_nothing(tmp_path, capsys):
    """The base rule for all six tools: inputs given, every one failed, nothing produced ->
    exit 2, no -o file created or replaced (record or text output); one success -> 1."""
    from mirkit.cli import Tool

    class Records(Tool):
        name = "records"

        def run(self, args):
            with self.record_writer(args) as writer:
                for name in args.inputs:
                    if name.startswith("bad"):
                        self.fail(name, "bad input")
                    else:
                        writer.write({"metadata": {"id": name}})

    class Text(Records):
        name = "text"

        def run(self, args):
            good = [n for n in args.inputs if not n.startswith("bad")]
            for name in args.inputs:
                if name.startswith("bad"):
                    self.fail(name, "bad input")
            self.successes += len(good)
            self.write_text(args, "".join(f"{n}\n" for n in good))

    out = tmp_path / "out"
    for cls in (Records, Text):
        assert cls().execute(["-o", str(out), "bad1", "bad2"]) == 2 and not out.exists()
        out.write_bytes(b"previous")
        assert cls().execute(["-o", str(out), "-q", "bad1"]) == 2
        assert out.read_bytes() == b"previous"
        assert cls().execute(["-o", str(out), "bad1", "good"]) == 1
        assert b"good" in out.read_bytes()
        out.unlink()
        assert cls().execute(["-o", str(out)]) == 0     # no input, no failure: empty output
        assert out.exists()
        out.unlink()
    err = capsys.readouterr().err
    assert "records: bad1: bad input" in err and f"{out}: not written" in err
