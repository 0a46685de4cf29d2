"""The `lyriscope` dispatcher: help, exit codes 0/2/1/130, one-line errors, -v, a light import."""

from __future__ import annotations

import argparse
import errno
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from lyriscope import cli
from lyriscope.errors import SetError
from lyriscope.numba_cache import use_private_numba_cache

HEAVY = ("torch", "librosa", "moderngl", "numba", "av", "sklearn")


def test_help_lists_the_core_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "new" in out and "check" in out


def test_no_arguments_prints_help_and_succeeds(capsys):
    assert cli.main([]) == 0
    assert "usage: lyriscope" in capsys.readouterr().out


def test_unknown_command_is_exit_2(capsys):
    assert cli.main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("new", ("--audio", "--lyrics", "--sets-dir", "--force", "--verbose")),
        ("check", ("SET", "--need-models", "--verbose")),
    ],
)
def test_command_help_shows_its_options(capsys, command, options):
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: lyriscope {command}")
    assert all(option in out for option in options)


def test_missing_arguments_are_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["new", "only-a-name"])
    assert exc.value.code == 2
    assert "--audio" in capsys.readouterr().err


def test_bad_input_is_one_line_without_traceback(tmp_path, capsys):
    assert cli.main(["check", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lyriscope check: ") and err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv", [["check", "-v", "{}"], ["-v", "check", "{}"], ["-vvvv", "check", "{}"]]
)
def test_verbose_adds_the_traceback_and_keeps_exit_2(tmp_path, capsys, argv):
    argv = [a.format(tmp_path / "none") for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "SetError" in err
    assert err.rstrip().splitlines()[-1].startswith("lyriscope check: ")


def _run_command(run, *, verbose: int = 0) -> int:
    # A stand-in command module: the dispatcher is under test, not a command.
    module = types.SimpleNamespace(run=run)
    command = cli.Command("stand-in", "tests.stand_in", "a command for tests")
    return cli._run(command, module, argparse.Namespace(verbose=verbose), verbose)


def _raise(exc: BaseException):
    def run(args):
        raise exc

    return run


@pytest.mark.parametrize(
    ("exc", "code", "message"),
    [
        (
            SetError("set.toml: [song] title: missing"),
            2,
            "lyriscope stand-in: set.toml: [song] title: missing",
        ),
        (
            ZeroDivisionError("division by zero"),
            1,
            "internal error: ZeroDivisionError: division by zero",
        ),
        (KeyboardInterrupt(), 130, "interrupted"),
        (
            OSError(errno.ENOSPC, "No space left on device", "out.mp4"),
            1,
            "the disk is full (out.mp4)",
        ),
        (
            PermissionError(errno.EACCES, "Permission denied", "x.png"),
            1,
            "Permission denied (x.png)",
        ),
    ],
)
def test_exit_codes_by_kind_of_failure(capsys, exc, code, message):
    assert _run_command(_raise(exc)) == code
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_run_returning_none_or_a_code(capsys):
    assert _run_command(lambda args: None) == 0
    assert _run_command(lambda args: 3) == 3


def test_verbose_internal_error_shows_the_traceback_and_exits_1(capsys):
    assert _run_command(_raise(ValueError("bad")), verbose=1) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "internal error: ValueError: bad" in err


def _modules_after(code: str) -> set[str]:
    probe = (
        f"import sys\n{code}\n"
        "print('HEAVY:', *(m for m in sys.modules if m.split('.')[0] in " + repr(HEAVY) + "))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.splitlines()[-1].split()[1:])  # the help text comes first


@pytest.mark.parametrize(
    "code",
    [
        "import lyriscope.cli",
        "import lyriscope.cli\ntry:\n    lyriscope.cli.main(['--help'])\nexcept SystemExit:\n    pass",
        "import lyriscope.cli\nfor c in ('new', 'check'):\n    try:\n        lyriscope.cli.main([c, '--help'])\n"
        "    except SystemExit:\n        pass",
    ],
)
def test_cli_and_help_import_nothing_heavy(code):
    assert _modules_after(code) == set()


def test_console_script_help_is_fast_and_errors_exit_2(tmp_path):
    script = Path(sys.executable).parent / "lyriscope"
    if not script.exists():
        pytest.skip("the console script is not installed (pip install -e .)")
    began = time.perf_counter()
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - began
    assert done.returncode == 0 and "check" in done.stdout
    assert elapsed < 5.0, f"lyriscope --help took {elapsed:.1f} s"
    done = subprocess.run(
        [str(script), "check", str(tmp_path / "none")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "no such set file" in done.stderr


def test_numba_caches_in_the_users_cache_folder_unless_told_otherwise(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    use_private_numba_cache(env)
    assert env["NUMBA_CACHE_DIR"] == str(tmp_path / "cache" / "lyriscope" / "numba")
    mine = {"NUMBA_CACHE_DIR": "/srv/numba"}
    use_private_numba_cache(mine)
    assert mine["NUMBA_CACHE_DIR"] == "/srv/numba"
    # A command sees it: librosa, imported by the command, compiles into that folder.
    probe = (
        "import os, lyriscope.cli\n"
        "try:\n    lyriscope.cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(os.environ['NUMBA_CACHE_DIR'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env, "NUMBA_CACHE_DIR": ""},
    )
    assert done.stdout.strip().splitlines()[-1] == env["NUMBA_CACHE_DIR"]
