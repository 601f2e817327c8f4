"""``benchfarm harness build``: build and sign the iOS harness app on a Mac, fetch the .ipa.

The harness source (``agents/harness/ios/``, an XcodeGen ``project.yml``) is uploaded to the
Mac, ``xcodegen`` generates the Xcode project, ``xcodebuild archive`` and ``-exportArchive``
produce a signed ``.ipa`` (signing identities live in the Mac's keychain, never here), and
the ``.ipa`` comes back into a content-addressed store: ``$BENCHFARM_ARTIFACTS/harness/<sha256>.ipa``,
written atomically, so every agent installs byte-for-byte the build a job names.

This cannot run without a Mac. The tests exercise command construction, the upload and the
fetch against a Linux sshd with stand-in ``xcodegen``/``xcodebuild`` scripts on the host's PATH
that write an ``.ipa``; the real toolchain is only exercised on a macOS harness-builder host.
"""

from __future__ import annotations

import hashlib
import json
import os
import plistlib
import posixpath
import shlex
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from orchestrator.export.artifacts import store_hashed
from orchestrator.fleetops.errors import FleetOpsError
from orchestrator.fleetops.inventory import Host
from orchestrator.fleetops.ssh import Remote, Timeouts

BUILD_TIMEOUT_S = 3600.0  # a clean archive with ExecuTorch's static libraries is slow
# An unsigned or development export is useless on a farm of enrolled devices only when the
# team cannot sign; ``development`` is what a lab's devices (registered UDIDs) accept.
DEFAULT_EXPORT_OPTIONS = {"method": "development", "signingStyle": "automatic", "compileBitcode": False}
_SKIP = {".git", "build", ".build", ".swiftpm", "DerivedData", ".DS_Store", "xcuserdata"}


@dataclass(frozen=True)
class HarnessBuild:
    sha256: str
    path: str
    size: int
    host: str
    scheme: str
    build_hash: str
    built_at: float


def source_revision(source: Path) -> str:
    """What the app reports as ``BenchfarmBuildHash``: the git commit (``+dirty`` with local
    edits), or a digest of the files when the source is not in a git checkout."""
    try:
        head = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        if head.returncode == 0:
            dirty = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--", "."],
                                   capture_output=True, text=True, timeout=10).stdout.strip()
            return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        pass
    digest = hashlib.sha256()
    for path in sorted(p for p in source.rglob("*") if p.is_file() and not _SKIP & set(p.parts)):
        digest.update(path.relative_to(source).as_posix().encode() + b"\0" + path.read_bytes())
    return "tree-" + digest.hexdigest()[:16]


def build_commands(src: str, project: str, scheme: str, export_options: str, build_hash: str,
                   team_id: str | None = None) -> list[list[str]]:
    """The remote build, one argv per step (each runs with ``cd src``); as in the harness README."""
    archive = posixpath.join(src, "build", f"{scheme}.xcarchive")
    settings = [f"BENCHFARM_BUILD_HASH={build_hash}", *([f"DEVELOPMENT_TEAM={team_id}"] if team_id else [])]
    return [
        ["xcodegen", "generate", "--spec", "project.yml"],
        ["xcodebuild", "-resolvePackageDependencies", "-project", f"{project}.xcodeproj", "-scheme", scheme],
        ["xcodebuild", "-project", f"{project}.xcodeproj", "-scheme", scheme, "-configuration", "Release",
         "-destination", "generic/platform=iOS", "-archivePath", archive, *settings,
         "-allowProvisioningUpdates", "archive"],
        ["xcodebuild", "-exportArchive", "-archivePath", archive, "-exportPath",
         posixpath.join(src, "build", "export"), "-exportOptionsPlist", export_options,
         "-allowProvisioningUpdates"],
    ]


def _upload_tree(remote: Remote, local: Path, dest: str) -> int:
    count = 0
    for dirpath, dirnames, filenames in os.walk(local):
        dirnames[:] = [d for d in dirnames if d not in _SKIP and not d.endswith(".xcodeproj")]
        rel = Path(dirpath).relative_to(local).as_posix()
        for name in filenames:
            if name in _SKIP:
                continue
            with open(os.path.join(dirpath, name), "rb") as fh:
                remote.put_stream(fh, posixpath.normpath(posixpath.join(dest, rel, name)))
            count += 1
    return count


def fetch_to_store(remote: Remote, remote_path: str, store: Path) -> tuple[str, Path, int]:
    """Download into ``store`` under the file's sha256; atomic (temp file + rename)."""
    with remote.sftp.open(remote_path, "rb") as src:
        src.prefetch()
        sha, final = store_hashed(src, store, lambda d: store / f"{d}.ipa", prefix=".incoming-", suffix=".ipa")
    return sha, final, final.stat().st_size


def build_harness(host: Host, known_hosts: str, source: Path, store: Path, project: str = "BenchfarmHarness",
                  scheme: str = "BenchfarmHarness", team_id: str | None = None,
                  timeouts: Timeouts | None = None) -> HarnessBuild:
    if "harness-builder" not in host.roles:
        raise FleetOpsError(host.name, f"has roles {host.roles}, not 'harness-builder'")
    if not (source / "project.yml").is_file():
        raise FleetOpsError("localhost", f"{source}/project.yml not found: not an XcodeGen source dir")
    build_hash = source_revision(source)
    with Remote(host, known_hosts, timeouts) as remote:
        src = remote.path("harness", "src")
        remote.run(["rm", "-rf", src])  # a stale file from an older checkout must not leak into the build
        _upload_tree(remote, source, src)
        export_options = "ExportOptions.plist"
        if not (source / export_options).is_file():
            remote.put_bytes(plistlib.dumps(DEFAULT_EXPORT_OPTIONS), posixpath.join(src, export_options))
        for argv in build_commands(src, project, scheme, export_options, build_hash, team_id):
            remote.run(f"cd {shlex.quote(src)} && {shlex.join(argv)}", timeout=BUILD_TIMEOUT_S)
        export_dir = posixpath.join(src, "build", "export")
        ipas = [n for n in remote.sftp.listdir(export_dir) if n.endswith(".ipa")]
        if len(ipas) != 1:
            raise FleetOpsError(host.name, f"expected one .ipa in {export_dir}, found {ipas or 'none'}")
        sha, path, size = fetch_to_store(remote, posixpath.join(export_dir, ipas[0]), store)
    build = HarnessBuild(sha, str(path), size, host.name, scheme, build_hash, time.time())
    meta = store / f"{sha}.json"
    tmp = meta.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(asdict(build), indent=2, sort_keys=True))
    os.replace(tmp, meta)
    return build
