"""Where a model comes from: ``zoo:<name>``, ``import:<pkg.module:factory>`` or ``pte:sha256:<hex>``.

``pte:sha256:<hex>`` names an uploaded program by digest (``orchestrator.export.programs``).
``pte:<path>`` is accepted only where a CLI reads the user's own file (``local_files=True``)
and turns it into a digest before submitting: nothing past the front door reads a path.

A source's *fingerprint* goes into the artifact key. For a zoo model it hashes the Python
source of every module that defines a class in the built model (so editing a block's
forward re-exports, editing an unrelated file does not) plus the weights themselves (so is
a seed change). An ``import:`` source must belong to a registered model package
(``orchestrator.export.trust``, checked by string when the spec is validated) and is keyed
by that package's bytes, never by running it: only the exporter calls its factory. For a
program it is its sha256 (the digest): the program is stored as-is, keyed by content.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.export import trust, zoo_index

if TYPE_CHECKING:  # torch is imported where a model is built, never to parse or key a program
    import torch

# An ExecuTorch program is a flatbuffer whose file identifier (bytes 4..8) is "ET" + a
# two-digit schema version; anything else is not a program, whatever its extension.
_PTE_IDENT_PREFIX = b"ET"
MAX_PTE_BYTES = 2 * 1024**3
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class BadSource(ValueError):
    """A model source that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Source:
    kind: str  # zoo | import | pte
    ref: str

    @classmethod
    def parse(cls, source: str, *, local_files: bool = False) -> Source:
        """``local_files``: a CLI reading the user's own files may name a ``pte:<path>``."""
        kind, _, ref = source.partition(":")
        if kind == "zoo":
            if ref not in zoo_index.NAMES:
                raise BadSource(f"unknown zoo model {ref!r} (known: {', '.join(zoo_index.NAMES)})")
        elif kind == "import":
            mod, _, attr = ref.partition(":")
            if not mod or not attr.isidentifier():
                raise BadSource(f"import source must be 'import:pkg.module:factory', got {source[:200]!r}")
            try:  # by string: nothing named by a spec is imported to check it
                trust.registered_package(mod)
            except trust.UntrustedSource as exc:
                raise BadSource(f"{source[:200]}: {exc}") from None
        elif kind == "pte":
            if ref.startswith("sha256:"):
                if not _DIGEST.fullmatch(ref):
                    raise BadSource(f"pte source must be 'pte:sha256:<64 lowercase hex>', got {source[:100]!r}")
            elif not local_files:
                raise BadSource(f"{source[:200]}: a spec names a program by digest (pte:sha256:<hex>), never "
                                "by a path on the server: upload it (POST /programs) or submit with the CLI on "
                                "the host that holds the file")
            elif not ref.endswith(".pte"):
                raise BadSource(f"pte source must name a .pte file, got {ref[:200]!r}")
        else:
            raise BadSource(f"model source must start with zoo:, import: or pte:, got {source[:200]!r}")
        return cls(kind, ref)

    @property
    def is_program(self) -> bool:
        return self.kind == "pte"

    @property
    def is_local_file(self) -> bool:
        return self.kind == "pte" and not self.ref.startswith("sha256:")

    @property
    def digest(self) -> str:
        """An uploaded program's sha256 (hex); '' for any other source."""
        return self.ref.removeprefix("sha256:") if self.is_program and not self.is_local_file else ""


def build_model(source: Source) -> torch.nn.Module:
    """The eager model in eval mode; random weights are seeded with ``zoo.WEIGHTS_SEED``.

    An ``import:`` source runs its registered package's code: only the exporter's confined child
    (``orchestrator.export.isolated``) calls this for one."""
    import torch

    from orchestrator.export import zoo

    if source.kind == "zoo":
        return zoo.build(source.ref)
    if source.kind == "import":
        mod, _, attr = source.ref.partition(":")
        try:
            factory = getattr(import_module(mod), attr)
        except (ImportError, AttributeError) as exc:
            raise BadSource(f"cannot import {source.ref!r}: {exc}") from None
        with zoo.seeded_init():
            model = factory()
        if not isinstance(model, torch.nn.Module):
            raise BadSource(f"{source.ref!r} returned {type(model).__name__}, not a torch.nn.Module")
        return model.eval()
    raise BadSource(f"a {source.kind}: source is a program, not a torch model")


@lru_cache(maxsize=64)
def _zoo_fingerprint(source: Source) -> str:
    # Cached per process like Python's own import cache: a worker sees the code it imported.
    model = build_model(source)
    h = hashlib.sha256()
    modules = {type(m).__module__ for m in model.modules()} - {None}
    for name in sorted(modules):
        if name.startswith("torch."):
            continue  # torch's own layers are covered by the torch version in the recipe
        try:
            code = inspect.getsource(import_module(name))
        except (OSError, TypeError) as exc:  # e.g. classes defined in __main__ or a REPL
            raise BadSource(f"{source.kind}:{source.ref}: the source of module {name!r} cannot be read, "
                            f"so the artifact cannot be keyed by it ({exc})") from None
        h.update(name.encode())
        h.update(code.encode())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


def check_pte(path: Path) -> Path:
    """Refuse a missing, oversized or non-ExecuTorch file before it is stored (or served)."""
    path = Path(path)
    if not path.is_file():
        raise BadSource(f"pte source {path}: no such file")
    size = path.stat().st_size
    if size > MAX_PTE_BYTES:
        raise BadSource(f"pte source {path}: {size} bytes is over the {MAX_PTE_BYTES} limit")
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8 or not head[4:6] == _PTE_IDENT_PREFIX or not head[6:8].isdigit():
        raise BadSource(f"pte source {path}: not an ExecuTorch program (no ETxx flatbuffer identifier)")
    return path


def fingerprint(source: Source) -> str:
    if source.is_program:
        if source.is_local_file:  # only a CLI's own parse allows one; it stores the file first
            raise BadSource(f"pte:{source.ref}: a local file is keyed only once it is stored by digest")
        return source.digest
    if source.kind == "import":
        try:  # the package's bytes, read from disk: keying a model never runs its code
            return trust.code_fingerprint(source.ref.partition(":")[0])
        except (trust.UntrustedSource, OSError) as exc:
            raise BadSource(f"import:{source.ref}: {exc}") from None
    return _zoo_fingerprint(source)
