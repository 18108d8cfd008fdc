"""`hybrid-gp bench eval` and `bench run` refuse bad options before any benchmark work:
exit status 2, one line naming the option, the value and what was expected, no
traceback (the main CLI's convention, hybrid_gp.argtypes.OneLineParser)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numba
import pytest

from hybrid_gp.bench import eval as bench_eval
from hybrid_gp.bench import run as bench_run
from hybrid_gp.bench.args import writable_file

TOO_MANY = str(numba.config.NUMBA_NUM_THREADS + 1)
LOW_POP = bench_run.min_population()


@pytest.fixture(autouse=True)
def no_benchmark(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any benchmark work at all fails the test: the checks must come first."""

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("benchmark work started before the arguments were checked")

    monkeypatch.setattr(bench_run, "problem_with_rows", boom)
    monkeypatch.setattr(bench_run, "ours", boom)
    monkeypatch.setattr(bench_run, "operon", boom)
    monkeypatch.setattr(bench_eval.generate, "random_programs", boom)
    monkeypatch.setattr(bench_eval, "bench_rows", boom)
    monkeypatch.setattr(bench_eval, "compile_times", boom)


def _refused(main, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one stderr line of a refused call (after checking status 2 and no output)."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(("argv", "expected"), [
    (["--rows", "abc"], "argument --rows: expected a positive integer, got 'abc'"),
    (["--rows", "0"], "argument --rows: expected a positive integer, got '0'"),
    (["--rows", "20,abc"], "argument --rows: expected a positive integer, got 'abc' in "
                           "'20,abc'"),
    (["--rows", "20,"], "argument --rows: expected a positive integer, got '' in '20,'"),
    (["--rounds", "0"], "argument --rounds: expected a positive integer, got '0'"),
    (["--rounds", "x"], "argument --rounds: expected a positive integer, got 'x'"),
    (["--threads", "0"], "argument --threads: expected a positive integer, got '0'"),
    (["--threads", f"1,{TOO_MANY}"], f"argument --threads: expected at most "
                                     f"{numba.config.NUMBA_NUM_THREADS}, got '{TOO_MANY}'"),
    (["--population", "-3"], "argument --population: expected a positive integer, got '-3'"),
    (["--population", str(LOW_POP - 1)], f"argument --population: expected an integer >= "
                                         f"{LOW_POP}, got '{LOW_POP - 1}'"),
    (["--evaluations", "0"], "argument --evaluations: expected a positive integer, got '0'"),
    (["--evaluations", "1e5"], "argument --evaluations: expected a positive integer, got "
                               "'1e5'"),
    (["--population", "50", "--evaluations", "50"],
     "argument --evaluations: expected an integer > --population (50), got '50'"),
    (["--seed", "-1"], "argument --seed: expected an integer >= 0, got '-1'"),
])
def test_bench_run_refuses(argv, expected, capsys):
    line = _refused(bench_run.main, argv, capsys)
    assert line.startswith("hybrid-gp bench run: error: "), line
    assert expected in line


@pytest.mark.parametrize(("argv", "expected"), [
    (["--rows", "abc"], "argument --rows: expected a positive integer, got 'abc'"),
    (["--rows", "100", "0"], "argument --rows: expected a positive integer, got '0'"),
    (["--quick", "--rows", "-1"], "argument --rows: expected a positive integer, got '-1'"),
    (["--trees", "0"], "argument --trees: expected a positive integer, got '0'"),
    (["--rounds", "0"], "argument --rounds: expected a positive integer, got '0'"),
    (["--threads", "0"], "argument --threads: expected a positive integer, got '0'"),
    (["--threads", TOO_MANY], f"argument --threads: expected at most "
                              f"{numba.config.NUMBA_NUM_THREADS}, got '{TOO_MANY}'"),
    (["--features", "0"], "argument --features: expected a positive integer, got '0'"),
    (["--depth", "-1", "4"], "argument --depth: expected an integer >= 0, got '-1'"),
    (["--depth", "5", "4"], "argument --depth: expected MIN <= MAX, got '5 4'"),
    (["--depth", "4"], "argument --depth: expected 2 arguments"),
    (["--seed", "-1"], "argument --seed: expected an integer >= 0, got '-1'"),
    (["--json", ""], "argument --json: expected a file path, got ''"),
])
def test_bench_eval_refuses(argv, expected, capsys):
    line = _refused(bench_eval.main, argv, capsys)
    assert line.startswith("hybrid-gp bench eval: error: "), line
    assert expected in line


def _unwritable(tmp_path: Path, kind: str) -> tuple[str, str]:
    if kind == "directory":
        return str(tmp_path), "expected a file path, got {!r}; that is a directory"
    if kind == "missing directory":
        return (str(tmp_path / "nowhere" / "x.json"),
                "expected a file in an existing directory, got {!r}")
    if kind == "/proc":
        if not os.path.isdir("/proc"):
            pytest.skip("no /proc here")
        return "/proc/x.json", "expected a writable file, got {!r}"
    if os.name != "posix" or os.geteuid() == 0:
        pytest.skip("root (or not POSIX) may write into a read-only directory")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    return str(ro / "x.json"), "expected a writable file, got {!r}; Permission denied"


@pytest.mark.parametrize("kind", ["directory", "missing directory", "/proc", "read-only"])
def test_bench_eval_refuses_an_unwritable_json_path_up_front(kind, tmp_path, capsys):
    path, expected = _unwritable(tmp_path, kind)
    line = _refused(bench_eval.main, ["--quick", "--json", path], capsys)
    assert f"argument --json: {expected.format(path)}" in line, line


def test_a_writable_json_path_is_left_as_it_was(tmp_path):
    new = tmp_path / "new.json"
    assert writable_file(str(new)) == str(new)
    assert not new.exists()  # checked, not created
    old = tmp_path / "old.json"
    old.write_text("keep me")
    assert writable_file(str(old)) == str(old)
    assert old.read_text() == "keep me"


def test_good_options_parse_to_lists_of_numbers():
    args = bench_run.build_parser().parse_args(["--rows", "20, 300", "--threads", "1",
                                                "--seed", "0"])
    assert args.rows == [20, 300] and args.threads == [1] and args.seed == 0
    defaults = bench_run.build_parser().parse_args([])
    assert defaults.rows == [20, 10000] and defaults.threads == [1, 2]
    args = bench_eval.build_parser().parse_args(["--depth", "0", "0", "--rows", "5", "6"])
    assert args.depth == [0, 0] and args.rows == [5, 6]


def test_the_hybrid_gp_command_gives_one_line_and_status_2(tmp_path):
    """Through the console script, as a user runs it (both calls start at once)."""
    exe = shutil.which("hybrid-gp") or str(Path(sys.executable).parent / "hybrid-gp")
    env = {k: v for k, v in os.environ.items() if k != "HYBRID_GP_DEBUG"}
    calls = {
        "hybrid-gp bench run: error: argument --rows: expected a positive integer, got "
        "'abc'": ["bench", "run", "--rows", "abc"],
        "hybrid-gp bench eval: error: argument --json: expected a file path, got "
        f"{str(tmp_path)!r}": ["bench", "eval", "--json", str(tmp_path)],
    }
    running = {expected: subprocess.Popen([exe, *argv], stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True, env=env)
               for expected, argv in calls.items()}
    for expected, proc in running.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, (out, err)
        assert out == "" and "Traceback" not in err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(expected), err
