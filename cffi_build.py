"""The cffi builds (API mode) of skyrack's two C modules, run by the install step through
`cffi_modules` in setup.py: the shield kernel (flight/shield/shield.c) and hal's framing
loop (hal/wire.c). Each header is the one declaration of its module's API."""

from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent


def _builder(module: str, directory: str, stem: str) -> FFI:
    ffi = FFI()
    header = (ROOT / directory / f"{stem}.h").read_text()
    # cffi takes the header without its preprocessor lines (it drops comments itself).
    ffi.cdef("\n".join(line for line in header.splitlines() if not line.startswith("#")))
    ffi.set_source(module, f'#include "{stem}.h"', sources=[f"{directory}/{stem}.c"],
                   include_dirs=[directory], extra_compile_args=["-O3", "-std=c11", "-Wall",
                                                      # sqrt as one instruction (no errno):
                                                      # loops that take one vectorise
                                                      "-fno-math-errno"])
    return ffi


shield = _builder("flight.shield._kernel", "flight/shield", "shield")
wire = _builder("hal._wire", "hal", "wire")
