"""Booting the interpreter (ABI doc T2) and surviving dlclose (T6).

The shim must find the right virtualenv without environment variables, take an
override, and fail Init with a log line (never exit the process) when the
interpreter it finds cannot run the plugin.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.fix_host import event_v2, props, write_frames

pytestmark = pytest.mark.shim


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory):
    """A virtualenv with nothing installed (no cffi, no flbsql)."""
    path = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path


def _run(host, tmp_path, *extra, plugins=None, env=None):
    frames = write_frames(tmp_path / "f.bin", [event_v2({"a": 1})])
    return host.run(
        "--log-level",
        "debug",
        "-i",
        "feed",
        *props(file=frames),
        "-o",
        "sql",
        *props(url=tmp_path / "o.db", table="logs"),
        *extra,
        plugins=plugins if plugins is not None else [host.out_sql],
        env=env,
    )


def test_the_build_venv_is_found_without_environment_variables(host, tmp_path):
    r = _run(host, tmp_path, env={"FLBSQL_PYTHON": ""})
    assert r.returncode == 0, r.log
    assert f"({sys.prefix})" in r.log  # the interpreter logs the venv it runs in


def test_the_python_property_overrides_and_a_bad_interpreter_fails_init_cleanly(
    host, tmp_path, bare_venv
):
    r = _run(host, tmp_path, "-p", f"python={bare_venv}/bin/python")
    assert r.returncode == 255  # Init failed; the process was not killed by Python
    assert f"are cffi and flbsql installed for this interpreter?: {bare_venv}/bin/python" in r.log
    assert "failed to initialize" in r.log


def test_a_venv_next_to_the_library_wins_over_the_build_venv(host, tmp_path, bare_venv):
    lib = bare_venv / "lib" / "flbsql-lib"
    lib.mkdir(parents=True, exist_ok=True)
    shutil.copy2(host.out_sql, lib / "out_sql.so")
    r = _run(host, tmp_path, plugins=[lib / "out_sql.so"], env={"FLBSQL_PYTHON": ""})
    assert r.returncode == 255
    assert f"{bare_venv}/bin/python" in r.log


def test_the_library_stays_mapped_after_dlclose(host, tmp_path):
    r = _run(host, tmp_path, plugins=[host.in_sql, host.out_sql])
    assert r.returncode == 0, r.log
    assert f"{host.out_sql} still mapped after dlclose" in r.log
    assert f"{host.in_sql} still mapped after dlclose" in r.log
