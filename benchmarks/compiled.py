"""Benchmarks time `analyze` as a user runs it, installed: its modules compiled to
bytecode, as pip compiles them on install. Where PYTHONDONTWRITEBYTECODE is set (it is on
these machines) and nothing has written them, every `python -m analyzer` would compile
every module it imports again: half the CPU of a short command, and a tenth of `ls` at
10,000 images. They are written once, before anything is timed."""
from __future__ import annotations

import compileall
from pathlib import Path


def compile_analyzer() -> None:
    compileall.compile_dir(Path(__file__).resolve().parents[1] / "analyzer", quiet=1)
