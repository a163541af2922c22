"""cffi build script (API mode) for the shield kernel, run by the install step through
`cffi_modules` in setup.py. Paths are relative to the repository root, where setup.py runs.
"""

from pathlib import Path

from cffi import FFI

ffibuilder = FFI()
# The header is the one declaration of the kernel's API; cffi takes it without the
# preprocessor lines (it drops comments itself).
HEADER = Path(__file__).with_name("shield.h").read_text()
ffibuilder.cdef("\n".join(line for line in HEADER.splitlines() if not line.startswith("#")))
ffibuilder.set_source(
    "flight.shield._kernel",
    '#include "shield.h"',
    sources=["flight/shield/shield.c"],
    include_dirs=["flight/shield"],
    extra_compile_args=["-O3", "-std=c11", "-Wall"],
)
