"""cffi build script (API mode) for hal's framing loop (hal/wire.c), run by the install
step through `cffi_modules` in setup.py, from the repository root."""

from pathlib import Path

from cffi import FFI

ffibuilder = FFI()
HEADER = Path(__file__).with_name("wire.h").read_text()
ffibuilder.cdef("\n".join(line for line in HEADER.splitlines() if not line.startswith("#")))
ffibuilder.set_source(
    "hal._wire",
    '#include "wire.h"',
    sources=["hal/wire.c"],
    include_dirs=["hal"],
    extra_compile_args=["-O3", "-std=c11", "-Wall"],
)
