"""An in-memory file tree: what AFC and house_arrest serve, and what the simulated harness reads.

Each device has one media tree (/var/mobile/Media, the AFC root) and one container tree
per installed app (the house_arrest root, with Documents/). Paths are POSIX, relative to
the tree's root; ``..`` never climbs above it, as AFC jails a client to its root.
"""

from __future__ import annotations

import posixpath
import time
from dataclasses import dataclass, field


class FsError(Exception):
    """A failed file operation; ``code`` is the AFC error it maps to."""

    READ_ERROR = 4  # what iOS answers READ_DIR on a file with
    NOT_FOUND = 8  # also a path that runs through a file: AFC has no ENOTDIR, iOS says "not found"
    IS_DIR = 9
    EXISTS = 16
    NOT_EMPTY = 33

    def __init__(self, code: int, message: str):
        self.code = code
        super().__init__(message)


APFS_DIRENT_BYTES = 32
# What the AFC root (/private/var/mobile/Media) of a real iPhone lists, whatever is installed.
MEDIA_ROOT_DIRS = ("Books", "DCIM", "Downloads", "MediaAnalysis", "PhotoData", "Photos", "PublicStaging",
                   "Purchases", "Radio", "Recordings", "general_storage", "iTunes_Control")


def now_ns() -> int:
    return time.time_ns()


@dataclass
class Node:
    birth_ns: int = field(default_factory=now_ns)
    mtime_ns: int = field(default_factory=now_ns)


@dataclass
class File(Node):
    data: bytearray = field(default_factory=bytearray)


@dataclass
class Dir(Node):
    children: dict[str, Node] = field(default_factory=dict)


def _parts(path: str) -> list[str]:
    # normpath of "/" + path keeps ".." from leaving the root ("/../x" -> "/x")
    norm = posixpath.normpath("/" + path)
    return [p for p in norm.split("/") if p]


class Tree:
    """A rooted tree of :class:`Dir` and :class:`File` nodes."""

    def __init__(self, root: Dir | None = None):
        self.root = root or Dir()

    def lookup(self, path: str) -> Node:
        node: Node = self.root
        for part in _parts(path):
            if not isinstance(node, Dir):
                raise FsError(FsError.NOT_FOUND, f"{path}: a component is not a directory")
            try:
                node = node.children[part]
            except KeyError:
                raise FsError(FsError.NOT_FOUND, f"{path}: no such file or directory") from None
        return node

    def exists(self, path: str) -> bool:
        try:
            self.lookup(path)
        except FsError:
            return False
        return True

    def _parent(self, path: str) -> tuple[Dir, str]:
        parts = _parts(path)
        if not parts:
            raise FsError(FsError.EXISTS, "the root has no parent")
        parent = self.lookup("/".join(parts[:-1]))
        if not isinstance(parent, Dir):
            raise FsError(FsError.NOT_FOUND, f"{path}: parent is not a directory")
        return parent, parts[-1]

    def makedirs(self, path: str) -> Dir:
        node: Node = self.root
        for part in _parts(path):
            assert isinstance(node, Dir)
            child = node.children.get(part)
            if child is None:
                child = node.children[part] = Dir()
                node.mtime_ns = now_ns()
            elif not isinstance(child, Dir):
                raise FsError(FsError.EXISTS, f"{path}: a file is in the way")
            node = child
        assert isinstance(node, Dir)
        return node

    def open_file(self, path: str, create: bool, truncate: bool) -> File:
        try:
            node = self.lookup(path)
        except FsError as exc:
            if exc.code != FsError.NOT_FOUND or not create:
                raise
            parent, name = self._parent(path)
            node = parent.children[name] = File()
            parent.mtime_ns = now_ns()
        if isinstance(node, Dir):
            raise FsError(FsError.IS_DIR, f"{path}: is a directory")
        assert isinstance(node, File)
        if truncate:
            node.data = bytearray()
            node.mtime_ns = now_ns()
        return node

    def read(self, path: str) -> bytes:
        node = self.lookup(path)
        if not isinstance(node, File):
            raise FsError(FsError.IS_DIR, f"{path}: is a directory")
        return bytes(node.data)

    def write(self, path: str, data: bytes, parents: bool = True) -> None:
        """Replace a file's contents whole (atomically: nothing else runs in between)."""
        if parents:
            self.makedirs(posixpath.dirname(posixpath.normpath("/" + path)))
        node = self.open_file(path, create=True, truncate=True)
        node.data = bytearray(data)

    def listdir(self, path: str) -> list[str]:
        node = self.lookup(path)
        if not isinstance(node, Dir):
            raise FsError(FsError.READ_ERROR, f"{path}: not a directory")
        return list(node.children)

    def remove(self, path: str, recursive: bool = False) -> None:
        parent, name = self._parent(path)
        node = parent.children.get(name)
        if node is None:
            raise FsError(FsError.NOT_FOUND, f"{path}: no such file or directory")
        if isinstance(node, Dir) and node.children and not recursive:
            raise FsError(FsError.NOT_EMPTY, f"{path}: directory not empty")
        del parent.children[name]
        parent.mtime_ns = now_ns()

    def rename(self, src: str, dst: str) -> None:
        sparent, sname = self._parent(src)
        node = sparent.children.get(sname)
        if node is None:
            raise FsError(FsError.NOT_FOUND, f"{src}: no such file or directory")
        dparent, dname = self._parent(dst)
        del sparent.children[sname]
        dparent.children[dname] = node
        sparent.mtime_ns = dparent.mtime_ns = now_ns()

    def stat(self, path: str) -> dict[str, str]:
        """GET_FILE_INFO keys, all the ones pymobiledevice3's ``AfcService.stat`` reads."""
        node = self.lookup(path)
        if isinstance(node, File):
            size, ifmt, nlink = len(node.data), "S_IFREG", 1
            blocks = (size + 4095) // 4096 * 8  # APFS allocates 4 KiB blocks, st_blocks counts 512 B
        else:
            assert isinstance(node, Dir)
            # APFS, as iOS formats it: a directory's size is 32 bytes per entry counting . and ..,
            # its link count is 2 plus its entries, and it takes no data blocks.
            entries = len(node.children) + 2
            size, ifmt, nlink, blocks = APFS_DIRENT_BYTES * entries, "S_IFDIR", entries, 0
        return {
            "st_size": str(size),
            "st_blocks": str(blocks),
            "st_nlink": str(nlink),
            "st_ifmt": ifmt,
            "st_mtime": str(node.mtime_ns),
            "st_birthtime": str(node.birth_ns),
        }

    def total_bytes(self) -> int:
        total, stack = 0, [self.root]
        while stack:
            node = stack.pop()
            for child in node.children.values():
                if isinstance(child, Dir):
                    stack.append(child)
                else:
                    assert isinstance(child, File)
                    total += len(child.data)
        return total
