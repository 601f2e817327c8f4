"""installation_proxy: Install/Upgrade from /PublicStaging, Browse, Lookup, Uninstall.

Install reads the uploaded .ipa from the media tree (pymobiledevice3 uploads it over a
separate AFC connection), takes ``Payload/<name>.app/Info.plist`` and installs the app
with every Info.plist key: CFBundleVersion and any custom key (a harness build hash)
come back through Browse and Lookup. Progress replies end with ``Status: Complete``;
a failure is one reply with ``Error`` and ``ErrorDescription``.
"""

from __future__ import annotations

import asyncio
import io
import plistlib
import zipfile
from typing import Any

from agents.virtual import wire
from agents.virtual.device import App, VirtualDevice
from agents.virtual.vfs import FsError

BROWSE_PAGE = 20  # apps per CurrentList reply, like the device's paging
INSTALL_STAGES = (("CreatingStagingDirectory", 5), ("ExtractingPackage", 15), ("InspectingPackage", 20),
                  ("PreflightingApplication", 30), ("VerifyingApplication", 40), ("CreatingContainer", 50),
                  ("InstallingApplication", 60), ("PostflightingApplication", 70), ("SandboxingApplication", 80),
                  ("GeneratingApplicationMap", 90))


class InstallError(Exception):
    def __init__(self, error: str, description: str):
        self.error, self.description = error, description
        super().__init__(f"{error}: {description}")


def read_info_plist(ipa: bytes) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(io.BytesIO(ipa)) as zf:
            names = [n for n in zf.namelist()
                     if n.startswith("Payload/") and n.count("/") == 2 and n.endswith(".app/Info.plist")]
            if not names:
                raise InstallError("PackageInspectionFailed", "no Payload/<name>.app/Info.plist in the package")
            info = plistlib.loads(zf.read(names[0]))
    except (zipfile.BadZipFile, plistlib.InvalidFileException, ValueError) as exc:
        if isinstance(exc, InstallError):
            raise
        raise InstallError("PackageExtractionFailed", f"unreadable package: {exc}") from None
    if not isinstance(info, dict) or not info.get("CFBundleIdentifier"):
        raise InstallError("PackageInspectionFailed", "Info.plist has no CFBundleIdentifier")
    return info


def _matches(app: App, app_type: str) -> bool:
    return app_type in ("Any", "") or app.app_type == app_type


def _select(app: App, attributes: list[str] | None) -> dict[str, Any]:
    rec = app.record()
    return {k: v for k, v in rec.items() if k in attributes} if attributes else rec


class InstallationProxy:
    def __init__(self, device: VirtualDevice, writer: asyncio.StreamWriter):
        self.device, self.writer = device, writer

    async def handle(self, request: dict[str, Any]) -> None:
        command = request.get("Command")
        options = request.get("ClientOptions") or {}
        if command in ("Install", "Upgrade"):
            await self.install(request.get("PackagePath", ""), options)
        elif command == "Uninstall":
            await self.uninstall(request.get("ApplicationIdentifier", ""))
        elif command == "Browse":
            await self.browse(options)
        elif command == "Lookup":
            await self.lookup(options)
        elif command == "CheckCapabilitiesMatch":
            await wire.send_plist(self.writer, {"LookupResult": True, "Status": "Complete"})
        else:
            await wire.send_plist(self.writer, {"Error": "UnknownCommand",
                                                "ErrorDescription": f"unknown command {command!r}"})

    async def install(self, package_path: str, options: dict[str, Any]) -> None:
        try:
            if self.device.faults.take("install_failure"):
                raise InstallError("APIInternalError", "simulated install failure (fault injection)")
            try:
                ipa = self.device.media.read(package_path)
            except FsError as exc:
                raise InstallError("PackageExtractionFailed", f"{package_path}: {exc}") from None
            info = read_info_plist(ipa)
        except InstallError as exc:
            await wire.send_plist(self.writer, {"Error": exc.error, "ErrorDescription": exc.description})
            return
        for stage, percent in INSTALL_STAGES:
            await wire.send_plist(self.writer, {"PercentComplete": percent, "Status": stage})
        self.device.install(info["CFBundleIdentifier"], info)
        await wire.send_plist(self.writer, {"Status": "Complete"})

    async def uninstall(self, bundle_id: str) -> None:
        await wire.send_plist(self.writer, {"PercentComplete": 50, "Status": "RemovingApplication"})
        self.device.uninstall(bundle_id)
        await wire.send_plist(self.writer, {"Status": "Complete"})

    async def browse(self, options: dict[str, Any]) -> None:
        app_type, attrs = options.get("ApplicationType", "Any"), options.get("ReturnAttributes")
        apps = [_select(a, attrs) for a in self.device.apps.values() if _matches(a, app_type)]
        total = len(apps)
        for start in range(0, total, BROWSE_PAGE):
            page = apps[start : start + BROWSE_PAGE]
            await wire.send_plist(self.writer, {"CurrentIndex": start, "CurrentAmount": len(page),
                                                "Total": total, "CurrentList": page, "Status": "BrowsingApplications"})
        await wire.send_plist(self.writer, {"Status": "Complete"})

    async def lookup(self, options: dict[str, Any]) -> None:
        app_type, attrs = options.get("ApplicationType", "Any"), options.get("ReturnAttributes")
        wanted = options.get("BundleIDs")
        result = {
            b: _select(a, attrs) for b, a in self.device.apps.items()
            if _matches(a, app_type) and (wanted is None or b in wanted)
        }
        await wire.send_plist(self.writer, {"LookupResult": result, "Status": "Complete"})


async def serve_installation_proxy(device: VirtualDevice, reader: asyncio.StreamReader,
                                   writer: asyncio.StreamWriter) -> None:
    proxy = InstallationProxy(device, writer)
    while (request := await wire.read_plist(reader)) is not None:
        await proxy.handle(request)
