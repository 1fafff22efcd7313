"""Build in_sql.so and out_sql.so with cffi's embedding mode.

Each library is the C shim (``shim.c``) plus cffi's glue; the ``FLBPlugin*`` symbols
are plain C functions in ``set_source`` that call static ``extern "Python"`` callbacks,
so C controls the boot order, the threads and the return codes (docs/fluent-bit-abi.md §12).

Usage: ``python csrc/build_shim.py [OUTDIR]`` (default: ``src/flbsql/lib``, and the C
speed-ups ``EXTENSIONS`` into ``src/flbsql``); ``--extensions PKGDIR`` builds only those.
Set ``FLBSQL_SANITIZE=1`` to build with AddressSanitizer and UBSan.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import sys
import sysconfig
import tempfile

import cffi

HERE = pathlib.Path(__file__).resolve().parent

COMMON_CDEF = """
int shim_log(int kind, void *api, void *ins, int level, const char *msg);
int shim_log_check(int kind, void *api, void *ins, int level);
const char *shim_get_property(int kind, void *api, void *ins, const char *key);
void *shim_alloc(size_t n);
"""

CDEF = {
    "output": """
int shim_flush_on_engine(void);
int shim_output_workers(void *ins, int want);
extern "Python" int py_output_init(void *api, void *ins, void **handle);
extern "Python" int py_output_flush(void *ctx, const void *data, size_t size, const char *tag);
extern "Python" int py_output_exit(void *ctx);
""",
    "input": """
int shim_input_counters(void *api, void *ins, long long *out);
extern "Python" int py_input_init(void *api, void *ins, void **handle);
extern "Python" int py_input_collect(void *ctx, void **data, size_t *size);
extern "Python" int py_input_cleanup(void *ctx);
extern "Python" void py_input_event(void *ctx, int event);
""",
}

# Runs once per library inside the embedded interpreter. Failure to import the core
# must still leave Init able to log the traceback through Fluent Bit and return
# FLB_ERROR, instead of cffi's "initialization code failed. Returning 0.".
INIT_CODE = """
from {module} import ffi, lib
try:
    from flbsql.plugin._bridge import install
    install(ffi, lib, "{kind}")
except BaseException:
    import traceback
    _tb = traceback.format_exc()

    @ffi.def_extern(name="py_{kind}_init", error=0)
    def _failed_init(api, ins, handle):
        msg = "[{module}] cannot load the flbsql Python package:\\n" + _tb
        lib.shim_log({kind_no}, api, ins, 1, msg.encode("utf-8", "replace"))
        return 0
"""


def libpython_flags() -> tuple[list[str], list[str]]:
    """Library dir and name of the shared libpython, as uWSGI's uwsgiplugin.py finds them."""
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        sys.exit("flbsql: this Python has no shared libpython (build it with --enable-shared)")
    libdir = sysconfig.get_config_var("LIBDIR")
    ldlib = sysconfig.get_config_var("LDLIBRARY")  # libpython3.11.so
    name = ldlib[3:].split(".so")[0]
    return [libdir], [name]


def build(kind: str, outdir: pathlib.Path, sanitize: bool = False) -> pathlib.Path:
    """Compile one library and return its path."""
    module = "in_sql" if kind == "input" else "out_sql"
    ffi = cffi.FFI()
    ffi.cdef(COMMON_CDEF + CDEF[kind])
    ffi.embedding_api("")
    ffi.embedding_init_code(
        INIT_CODE.format(module=module, kind=kind, kind_no=1 if kind == "input" else 2)
    )
    libdirs, libs = libpython_flags()
    cflags = ["-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-unused-function"]
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        cflags.append("-Werror")  # CI keeps the shim warning-free; a new gcc breaks no user
    ldflags = [f"-Wl,-rpath,{d}" for d in libdirs]
    if sanitize:
        cflags += ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-O1", "-g"]
        ldflags += ["-fsanitize=address,undefined"]
    ffi.set_source(
        module,
        '#include "shim.c"',
        include_dirs=[str(HERE)],
        define_macros=[
            ("FLBSQL_KIND_INPUT" if kind == "input" else "FLBSQL_KIND_OUTPUT", "1"),
            ("FLBSQL_BUILD_PYTHON", f'"{sys.executable}"'),
        ],
        library_dirs=libdirs,
        libraries=libs,
        extra_compile_args=cflags,
        extra_link_args=ldflags,
    )
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"flbsql-{module}-") as tmp:
        built = ffi.compile(tmpdir=tmp, target=f"{module}.so", verbose=False)
        dest = outdir / f"{module}.so"
        tmpdest = dest.with_suffix(".so.tmp")
        shutil.copy2(built, tmpdest)
        os.replace(tmpdest, dest)  # atomic: a running host keeps its mapped copy
    return dest


#: The C speed-ups: extension module -> (its C file, its declarations).
EXTENSIONS = {
    "flbsql.events.cframe": (
        "frame.c",
        """
long flbsql_frame(const char *in, size_t in_len, const char *head, size_t head_len,
                  long head_col, size_t stamp_at, uint32_t max_sec,
                  const char *keys, const size_t *key_len,
                  const unsigned char *emit, size_t ncols, const char *tail,
                  size_t tail_len, size_t ntail, size_t *offs, char *out, size_t out_cap);
""",
    ),
    "flbsql.dialects.cpgcopy": (
        "pgcopy.c",
        """
long flbsql_pg_copy_default(const char *in, size_t len, const char *tag, size_t tag_len,
                            int jsonb, char *out, size_t cap, size_t *rows);
long flbsql_tsv_default(const char *in, size_t len, const char *tag, size_t tag_len,
                        char *out, size_t cap, size_t *rows);
long flbsql_lines_iso(const char *in, size_t len, const char *tag, size_t tag_len,
                      char *out, size_t cap, size_t *rows);
""",
    ),
    "flbsql.cdc.cpgoutput": (
        "pgtuple.c",
        """
long flbsql_pg_tuple(const char *buf, size_t len, size_t off, const char *keys,
                     const size_t *key_len, const unsigned char *kinds, size_t ncols,
                     char *out, size_t out_cap);
long flbsql_pg_inserts(const char *msgs, const size_t *ends, size_t first, size_t count,
                       uint32_t oid, const char *prefix, size_t prefix_len,
                       const char *keys, const size_t *key_len, const unsigned char *kinds,
                       size_t ncols, int64_t pos0, int64_t seq0, size_t max_rows,
                       size_t max_bytes, char *out, size_t out_cap, size_t *written);
""",
    ),
}


def build_extension(name: str, pkgdir: pathlib.Path, sanitize: bool = False) -> pathlib.Path:
    """Compile one of :data:`EXTENSIONS` into its package under ``pkgdir`` (``flbsql``)."""
    source, cdef = EXTENSIONS[name]
    ffi = cffi.FFI()
    ffi.cdef(cdef)
    cflags = ["-O2", "-Wall", "-Wextra"]
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        cflags.append("-Werror")
    ldflags: list[str] = []
    if sanitize:
        cflags += ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-g"]
        ldflags += ["-fsanitize=address,undefined"]
    ffi.set_source(
        name,
        f'#include "{source}"',
        include_dirs=[str(HERE)],
        extra_compile_args=cflags,
        extra_link_args=ldflags,
    )
    dest_dir = pkgdir.joinpath(*name.split(".")[1:-1])
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="flbsql-ext-") as tmp:
        built = pathlib.Path(ffi.compile(tmpdir=tmp, verbose=False))
        dest = dest_dir / built.name
        tmpdest = dest.with_name(dest.name + ".tmp")
        shutil.copy2(built, tmpdest)
        os.replace(tmpdest, dest)
    return dest


def main(argv: list[str]) -> int:
    """Build both libraries into OUTDIR, and the C speed-ups into the package."""
    root = HERE.parent
    sanitize = os.environ.get("FLBSQL_SANITIZE") == "1"
    if len(argv) == 3 and argv[1] == "--extensions":  # only the C speed-ups, into a package
        for name in EXTENSIONS:
            print(build_extension(name, pathlib.Path(argv[2]), sanitize))
        return 0
    outdir = pathlib.Path(argv[1]) if len(argv) > 1 else root / "src" / "flbsql" / "lib"
    for kind in ("input", "output"):
        print(build(kind, outdir, sanitize))
    if len(argv) == 1:  # the source tree's package (a sanitizer build goes elsewhere)
        for name in EXTENSIONS:
            print(build_extension(name, root / "src" / "flbsql"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
