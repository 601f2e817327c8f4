"""Which model code a farm runs: registered, allow-listed packages only, checked as strings.

An ``import:pkg.module:factory`` source names code. The coordinator and the API never import
it: they check the module path *by string* against the operator's list of registered model
packages (``BENCHFARM_MODEL_PACKAGES=pkg1,pkg2.models``), so ``import:os:abort`` is a spec
error, not a call. Only the exporter runs a registered package's factory, in a child process
of its own (``orchestrator.export.isolated``), and it checks the list again: its own
environment is the authority, whatever a submitter's said.

The artifact key of such a source is computed from the package's bytes (every file under the
registered package's directory), found without importing anything: a cache hit runs no user
code at all, and editing any file of the package re-exports.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from pathlib import Path

ENV = "BENCHFARM_MODEL_PACKAGES"
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
# a package is hashed on every export request; a checkpoint of gigabytes belongs in a zoo entry
MAX_PACKAGE_BYTES = 512 * 1024**2
MAX_PACKAGE_FILES = 10_000


class UntrustedSource(ValueError):
    """An import source outside the registered model packages (never imported)."""


def model_packages() -> tuple[str, ...]:
    """The registered packages, from ``BENCHFARM_MODEL_PACKAGES`` (comma-separated, dotted names)."""
    names = [n.strip() for n in os.environ.get(ENV, "").split(",") if n.strip()]
    return tuple(n for n in names if _DOTTED.fullmatch(n))


def registered_package(module: str) -> str:
    """The registered package that ``module`` belongs to (the longest matching prefix), or
    raise :class:`UntrustedSource` saying how to register one. Pure string work."""
    if not _DOTTED.fullmatch(module):
        raise UntrustedSource(f"module {module[:100]!r} is not a dotted Python module name")
    packages = model_packages()
    matches = [p for p in packages if module == p or module.startswith(p + ".")]
    if not matches:
        known = ", ".join(packages) if packages else "none are registered"
        raise UntrustedSource(
            f"module {module!r} is not in a registered model package ({known}); the farm runs model "
            f"code only from packages its operator registered ({ENV}=pkg1,pkg2 on the API, coordinator "
            "and exporter); use a zoo: model or an uploaded pte:sha256: program otherwise")
    return max(matches, key=len)


def package_root(package: str) -> Path:
    """The directory (or single ``.py`` file) holding ``package``, found without importing it.

    Only the top-level name goes through the import system's finders (``find_spec`` of a
    top-level name runs no package code); the rest is a walk down directories."""
    top, *rest = package.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError) as exc:
        raise UntrustedSource(f"registered model package {package!r} cannot be located: {exc}") from None
    if spec is None:
        raise UntrustedSource(f"registered model package {package!r} is not installed on this host")
    if spec.submodule_search_locations:
        for base in spec.submodule_search_locations:
            path = Path(base).joinpath(*rest)
            if path.is_dir():
                return path
            if rest and path.with_suffix(".py").is_file():
                return path.with_suffix(".py")
    elif not rest and spec.origin and spec.origin.endswith(".py"):
        return Path(spec.origin)
    raise UntrustedSource(f"registered model package {package!r} has no source directory on this host")


def module_file(module: str) -> Path:
    """The source file of ``module`` inside its registered package (checked to exist)."""
    package = registered_package(module)
    root = package_root(package)
    rest = module[len(package):].lstrip(".").split(".") if module != package else []
    if root.is_file():
        if rest:
            raise UntrustedSource(f"module {module!r}: {package!r} is a single module, not a package")
        return root
    for candidate in (root.joinpath(*rest).with_suffix(".py") if rest else None,
                      root.joinpath(*rest, "__init__.py")):
        if candidate is not None and candidate.is_file():
            return candidate
    raise UntrustedSource(f"module {module!r} is not in registered package {package!r} ({root})")


def _package_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    files = []
    for dirpath, dirnames, filenames in os.walk(root):  # symlinked directories are not followed
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith("."))
        files += [Path(dirpath, f) for f in sorted(filenames)
                  if not f.endswith((".pyc", ".pyo")) and not f.startswith(".")]
        if len(files) > MAX_PACKAGE_FILES:
            raise UntrustedSource(f"model package at {root} has over {MAX_PACKAGE_FILES} files")
    return files


def code_fingerprint(module: str) -> str:
    """sha256 over the path and bytes of every file of ``module``'s registered package."""
    module_file(module)  # the module must exist before anything is keyed by it
    root = package_root(registered_package(module))
    h = hashlib.sha256()
    total = 0
    for path in _package_files(root):
        data = path.read_bytes()
        total += len(data)
        if total > MAX_PACKAGE_BYTES:
            raise UntrustedSource(f"model package at {root} is over {MAX_PACKAGE_BYTES} bytes")
        rel = path.relative_to(root.parent if root.is_file() else root).as_posix()
        h.update(len(rel).to_bytes(4, "big") + rel.encode())
        h.update(len(data).to_bytes(8, "big") + data)
    return h.hexdigest()
