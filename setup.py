# Metadata lives in pyproject.toml; this file only hands setuptools the cffi build of the
# shield kernel (cffi_modules is a setup() keyword that pyproject.toml cannot express).
from setuptools import setup

setup(cffi_modules=["flight/shield/_build.py:ffibuilder"])
