"""The harness .ipa as the iOS driver sees it: identity, version, build hash; and the placeholder.

Virtual devices run a simulated harness, but the driver still installs a real package through
installation_proxy so the install path is exercised end to end. The placeholder is built in
code, byte-for-byte deterministic (fixed zip timestamps, sorted plist), so its hash is stable.
"""

from __future__ import annotations

import hashlib
import io
import plistlib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.harness.contract import HARNESS_BUNDLE_ID  # noqa: F401  (re-exported)

# Info.plist key carrying the build's identity (the real app sets it from the git commit in
# project.yml); Lookup returns it, so a rebuilt harness with an unchanged version is still
# detected as different.
BUILD_HASH_KEY = "BenchfarmBuildHash"
PLACEHOLDER_VERSION = "0.0.1"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
# An .ipa far larger than this is not our harness; refuse before reading it into memory.
MAX_IPA_BYTES = 512 * 1024 * 1024


class IpaError(ValueError):
    """A file that is not a usable harness .ipa."""


@dataclass(frozen=True)
class IpaInfo:
    path: Path
    bundle_id: str
    version: str  # CFBundleShortVersionString
    build: str  # CFBundleVersion
    build_hash: str  # BUILD_HASH_KEY from Info.plist, else sha256 of the .ipa

    def differs_from(self, installed: dict[str, Any] | None, known_hash: str | None) -> str | None:
        """Why the installed app must be replaced by this .ipa, or None when it is the same build.

        ``installed`` is the installation_proxy Lookup record; ``known_hash`` is what this
        driver last installed on the device (used when the record carries no build hash).
        """
        if not installed:
            return "not installed"
        have = (installed.get("CFBundleShortVersionString"), installed.get("CFBundleVersion"))
        if have != (self.version, self.build):
            return f"installed version {have[0]} ({have[1]}) != {self.version} ({self.build})"
        installed_hash = installed.get(BUILD_HASH_KEY) or known_hash
        if installed_hash and installed_hash != self.build_hash:
            return f"installed build {installed_hash[:12]} != {self.build_hash[:12]}"
        return None


def read_ipa(path: Path) -> IpaInfo:
    """Identity of an .ipa: Payload/<name>.app/Info.plist plus a content hash."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise IpaError(f"{path}: cannot read harness .ipa: {exc}") from None
    if size > MAX_IPA_BYTES:
        raise IpaError(f"{path}: {size} bytes is over the {MAX_IPA_BYTES} byte limit for a harness .ipa")
    raw = path.read_bytes()
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            plists = [n for n in zf.namelist()
                      if n.startswith("Payload/") and n.count("/") == 2 and n.endswith(".app/Info.plist")]
            if len(plists) != 1:
                raise IpaError(f"{path}: expected one Payload/<name>.app/Info.plist, found {len(plists)}")
            info = plistlib.loads(zf.read(plists[0]))
    except (zipfile.BadZipFile, plistlib.InvalidFileException) as exc:
        raise IpaError(f"{path}: not a valid .ipa: {exc}") from None
    for key in ("CFBundleIdentifier", "CFBundleShortVersionString", "CFBundleVersion"):
        if not isinstance(info.get(key), str) or not info[key]:
            raise IpaError(f"{path}: Info.plist field {key} is missing or not a string")
    return IpaInfo(path=path, bundle_id=info["CFBundleIdentifier"], version=info["CFBundleShortVersionString"],
                   build=info["CFBundleVersion"],
                   build_hash=info.get(BUILD_HASH_KEY) or hashlib.sha256(raw).hexdigest())


def placeholder_ipa(version: str = PLACEHOLDER_VERSION, build: str = "1") -> bytes:
    """A minimal, deterministic harness package for virtual devices (no executable inside)."""
    marker = f"benchfarm placeholder harness {version} ({build}); virtual devices only\n".encode()
    info = {
        "CFBundleIdentifier": HARNESS_BUNDLE_ID,
        "CFBundleName": "BenchfarmHarness",
        "CFBundleDisplayName": "Benchfarm",
        "CFBundleExecutable": "BenchfarmHarness",
        "CFBundlePackageType": "APPL",
        "CFBundleShortVersionString": version,
        "CFBundleVersion": build,
        "MinimumOSVersion": "14.0",
        "UIFileSharingEnabled": True,
        BUILD_HASH_KEY: hashlib.sha256(marker).hexdigest(),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in (("Payload/BenchfarmHarness.app/Info.plist", plistlib.dumps(info, sort_keys=True)),
                           ("Payload/BenchfarmHarness.app/PLACEHOLDER", marker)):
            entry = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(entry, data)
    return buf.getvalue()


def write_placeholder_ipa(path: Path, version: str = PLACEHOLDER_VERSION, build: str = "1") -> Path:
    """Write the placeholder .ipa (atomically: an agent may be reading the previous one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(placeholder_ipa(version, build))
    tmp.replace(path)
    return path
