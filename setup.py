# Metadata lives in pyproject.toml; this file only hands setuptools the cffi builds of the
# shield kernel and of hal's framing loop (cffi_modules is a setup() keyword that
# pyproject.toml cannot express).
from setuptools import setup

setup(cffi_modules=["cffi_build.py:shield", "cffi_build.py:wire"])
