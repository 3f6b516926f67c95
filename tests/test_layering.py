"""The floors of ../shared/DESIGN.md, enforced on the source text.

cli → service → render → engines → model → ground (ids, errors, the Go-API package, the
native fronts); sources → model. Engines, model and goapi never import render or sources;
render never imports sources; and only the evidence-root modules open files, so that the
one safe opener is the only way into a data root.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "analyzer"

# The floor of each module, by its dotted name under analyzer (longest prefix wins).
FLOORS = {
    "errors": 0, "ids": 0, "goapi": 0,
    "native": 0, "digest": 0, "thinloops": 0, "pathindex": 0, "nativeio": 0, "treeusage": 0, "layerrecords": 0,
    "safeopen": 0, "compression": 0, "_native_py": 0, "_digest_py": 0, "_thin_py": 0, "_pathindex_py": 0, "_nativeio_py": 0, "_treeusage_py": 0, "_layerrecords_py": 0, "_walk_py": 0, "_fastdigest": 0,
    "model": 1, "containerdmodel": 1, "reference": 1,
    "engines": 2,
    "sources": 2,
    "render": 3,
    "service": 4, "containerdservice": 4,
    "cli": 5, "__main__": 5,
}

# Who may import whom beyond "a lower floor": the two floor-2 families stay apart.
FORBIDDEN = {
    "engines": ("sources", "render", "service", "cli"),
    "containerdmodel": ("engines", "sources", "render", "service", "cli"),
    "model": ("engines", "sources", "render", "service", "cli"),
    "reference": ("engines", "sources", "render", "service", "cli"),
    "goapi": ("model", "reference", "engines", "sources", "render", "service", "cli"),
    "sources": ("engines", "render", "service", "cli"),
    "render": ("sources", "service", "cli"),
    "service": ("render", "cli"),
    "containerdservice": ("render", "cli"),
}

# Calls that reach the file system by path. Only these modules may make them: the
# evidence backends and the safe-open policy (the data root), the pure-Python twins of the
# native readers (they get directory fds from the root), and the CLI for the analyst's own
# files (an output file, a metadata file named on the command line).
FILE_CALLS = {"open", "listdir", "scandir", "stat", "lstat", "readlink", "walk",
              "read_bytes", "read_text", "iterdir", "opendir", "openat"}
PATH_MODULES = {"os", "io", "shutil", "tarfile", "gzip", "bz2", "lzma", "pathlib"}
MAY_OPEN = ("sources.evidence", "safeopen", "_walk_py", "_nativeio_py", "cli")


def modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        name = ".".join(parts) or "__init__"
        found[name] = ast.parse(path.read_text(), str(path))
    return found


def family(name: str, table) -> str | None:
    best = None
    for key in table:
        if name == key or name.startswith(key + "."):
            if best is None or len(key) > len(best):
                best = key
    return best


def imported(name: str, tree: ast.Module) -> set[str]:
    """Every analyzer module `name` imports, at any depth (lazy imports included)."""
    package = name.split(".")[:-1] if not _is_package(name) else name.split(".")
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("analyzer"):
                target = node.module.removeprefix("analyzer").lstrip(".")
            else:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}" if target else alias.name
                out.add(sub if _exists(sub) else target)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("analyzer."):
                    out.add(alias.name.removeprefix("analyzer."))
    return {m for m in out if m}


def _is_package(name: str) -> bool:
    return (PACKAGE.joinpath(*name.split(".")) / "__init__.py").exists()


def _exists(name: str) -> bool:
    base = PACKAGE.joinpath(*name.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists() \
        or any(PACKAGE.glob(name.replace(".", "/") + ".*.so")) \
        or base.with_suffix(".pyx").exists()


ALL = modules()


def test_every_module_has_a_floor():
    assert [m for m in ALL if family(m, FLOORS) is None and m != "__init__"] == []


@pytest.mark.parametrize("name", sorted(ALL))
def test_no_module_runs_back_up_a_floor(name):
    mine = family(name, FLOORS)
    if mine is None:
        return
    wrong = []
    for target in sorted(imported(name, ALL[name])):
        theirs = family(target, FLOORS)
        if theirs is None:
            continue
        forbidden = FORBIDDEN.get(mine, ())
        if family(target, {f: 0 for f in forbidden}) is not None \
                or (FLOORS[theirs] > FLOORS[mine]):
            wrong.append(target)
    assert wrong == [], f"{name} imports {wrong}"


def file_calls(tree: ast.Module) -> list[str]:
    """Calls that reach the file system by path: builtin open, the os/io/tarfile/gzip
    functions that take a path, and methods of a Path built on the spot."""
    calls = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == "open":
            calls.append(f"open at line {node.lineno}")
        elif isinstance(func, ast.Attribute) and func.attr in FILE_CALLS \
                and not _over_a_file_object(node):
            value = func.value
            if (isinstance(value, ast.Name) and value.id in PATH_MODULES) or (
                    isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
                    and value.func.id == "Path"):
                calls.append(f"{func.attr} at line {node.lineno}")
    return calls


def _over_a_file_object(call: ast.Call) -> bool:
    """``tarfile.open(fileobj=...)`` and the like: no path, a stream already open."""
    return not call.args and any(k.arg == "fileobj" for k in call.keywords) \
        and not any(k.arg == "name" for k in call.keywords)


@pytest.mark.parametrize("name", sorted(ALL))
def test_only_the_evidence_roots_open_files(name):
    if family(name, {m: 0 for m in MAY_OPEN}) is None:
        assert file_calls(ALL[name]) == [], f"{name} reaches the file system itself"


def test_the_checks_can_fail():
    """A module that imports upwards, and one that opens a file, are both caught."""
    bad = ast.parse("from ..render.units import human_size\nopen('/etc/passwd')\n")
    assert "render.units" in imported("engines.fake", bad)
    assert file_calls(bad) == ["open at line 2"]
    by_name = ast.parse("tarfile.open('x.tar', fileobj=f)\ntarfile.open(fileobj=f, mode='r|')\n")
    assert file_calls(by_name) == ["open at line 1"]


def prints(tree: ast.Module) -> list[str]:
    """Calls that write to stdout or stderr directly: print, click.echo/secho, sys.std*.write."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == "print":
            found.append(f"print at line {node.lineno}")
        elif isinstance(func, ast.Attribute) and (
                (func.attr in ("echo", "secho") and isinstance(func.value, ast.Name)
                 and func.value.id == "click")
                or (func.attr == "write" and isinstance(func.value, ast.Attribute)
                    and func.value.attr in ("stdout", "stderr"))):
            found.append(f"{func.attr} at line {node.lineno}")
    return found


def test_one_way_out_to_the_terminal():
    """Text from the evidence reaches the analyst only through cli's terminal, which
    escapes what a terminal would obey (render/terminal.py)."""
    for name, tree in ALL.items():
        if name == "cli":
            terminal = next(n for n in tree.body
                            if isinstance(n, ast.ClassDef) and n.name == "_Terminal")
            rest = ast.Module([n for n in tree.body if n is not terminal], [])
            assert prints(rest) == [], "cli prints around its _Terminal"
            assert prints(terminal)
        else:
            assert prints(tree) == [], f"{name} prints by itself"
    assert prints(ast.parse("import click, sys\nclick.echo(1)\nsys.stderr.write('x')\n")) \
        == ["echo at line 2", "write at line 3"]
