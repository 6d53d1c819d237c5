"""cffi builder for pymigjob._c._core (API mode, out of line).

The cdef is read from csrc/migjob.h, the one public header (and
csrc/testing.h, the tests' hooks), so the C and Python sides cannot drift
apart.  PYMIGJOB_SANITIZE=thread|address builds a
sanitizer variant for testing (see the README).
"""

import os
import re

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
CSRC = "csrc"
SOURCES = ["begin.c", "domain.c", "end.c", "enums.c", "error.c", "job.c", "migration.c",
           "notes.c", "notify.c", "testing.c", "waiter.c",
           # libvirt 11: the async job's life, post-copy, job data
           "asyncjob.c", "jobdata.c", "postcopy.c"]

SANITIZERS = {
    "": [],
    "thread": ["-fsanitize=thread"],
    "address": ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"],
}


def header_cdef(path: str) -> str:
    """The header's declarations in the subset of C that cffi parses."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"#ifdef __cplusplus.*?#endif", "", text, flags=re.S)
    lines = []
    for line in text.splitlines():
        define = re.match(r"#define\s+(\w+)\s+(\S+)", line)
        if define and re.fullmatch(r"[0-9]*\.[0-9]+", define.group(2)):
            lines.append(f"static const double {define.group(1)};")
        elif define:
            # object-like constants only; values come from the compiler
            lines.append(f"#define {define.group(1)} ...")
        elif not line.startswith("#"):
            # array sizes computed from macros: let the compiler say
            lines.append(re.sub(r"\[[^\]0-9][^\]]*\]", "[...]", line))
    return "\n".join(lines)


def sanitizer_flags() -> list:
    kind = os.environ.get("PYMIGJOB_SANITIZE", "")
    if kind not in SANITIZERS:
        raise SystemExit(
            f"PYMIGJOB_SANITIZE={kind!r}: expected one of 'thread', 'address'"
        )
    flags = SANITIZERS[kind]
    return flags + ["-g", "-O1", "-fno-omit-frame-pointer"] if flags else []


ffibuilder = FFI()
for header in ("migjob.h", "testing.h"):
    ffibuilder.cdef(header_cdef(os.path.join(HERE, CSRC, header)))

_san = sanitizer_flags()
ffibuilder.set_source(
    "pymigjob._c._core",
    '#include "migjob.h"\n#include "testing.h"',
    # relative to the project root, as setuptools wants
    sources=[os.path.join(CSRC, name) for name in SOURCES],
    include_dirs=[CSRC],
    extra_compile_args=["-std=c11", "-O2", "-pthread", "-Wall", "-Wextra"] + _san,
    extra_link_args=["-pthread"] + _san,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
