"""Builds analyzer._fastdigest (Cython + our C in analyzer/_csrc); metadata is in pyproject.toml.

Needs only a C compiler and the Python headers: the SHA-NI and PCLMULQDQ code carries its
own target attributes and is chosen at run time, so the default (generic x86-64) flags build
it, and on other CPUs it is left out by the preprocessor.
"""
from glob import glob

from Cython.Build import cythonize
from setuptools import Extension, setup

fastdigest = Extension(
    "analyzer._fastdigest",
    sources=["analyzer/_fastdigest.pyx", *sorted(glob("analyzer/_csrc/*.c"))],
    depends=sorted(glob("analyzer/_csrc/*.h")),
    include_dirs=["analyzer/_csrc"],
    extra_compile_args=["-O3", "-pthread"],
    extra_link_args=["-pthread"],
)

setup(ext_modules=cythonize([fastdigest], language_level=3))
