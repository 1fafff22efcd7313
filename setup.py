"""Builds in_sql.so and out_sql.so into the package during ``pip install``.

Everything else is in pyproject.toml; this file only hooks the cffi build
(csrc/build_shim.py) into setuptools' build_py.
"""

from __future__ import annotations

import pathlib
import runpy

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

HERE = pathlib.Path(__file__).resolve().parent


class BuildWithShim(build_py):
    """build_py that also compiles the two plugin libraries."""

    def run(self) -> None:
        """Copy the sources, build in_sql.so/out_sql.so into flbsql/lib and the C speed-ups."""
        super().run()
        shim = runpy.run_path(str(HERE / "csrc" / "build_shim.py"))
        outdir = pathlib.Path(self.build_lib) / "flbsql" / "lib"
        for kind in ("input", "output"):
            shim["build"](kind, outdir)
        for name in shim["EXTENSIONS"]:
            shim["build_extension"](name, pathlib.Path(self.build_lib) / "flbsql")


class BinaryDistribution(Distribution):
    """The .so files link one libpython: the wheel is cpXY/platform-specific, not pure."""

    def has_ext_modules(self) -> bool:
        """Tag the wheel for this interpreter and platform."""
        return True


setup(cmdclass={"build_py": BuildWithShim}, distclass=BinaryDistribution)
