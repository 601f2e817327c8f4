"""mobile_image_mounter (``com.apple.mobile.mobile_image_mounter``): look up, upload and mount disk images.

Commands are plists (4-byte big-endian length + XML), one reply each: ``LookupImage``,
``CopyDevices``, ``ReceiveBytes`` (ack, then exactly ``ImageSize`` raw bytes, then
``Complete``), ``MountImage``, ``UnmountImage``, ``QueryDeveloperModeStatus`` and the iOS 17
personalization queries (``QueryPersonalizationIdentifiers``, ``QueryNonce``,
``QueryPersonalizationManifest``). A personalized image needs a manifest that Apple's
signing server issues for this device's ECID and nonce: the virtual device cannot check
one, so it takes the manifest the host sends (a real device verifies it), and has none to
offer before one was mounted, which sends a host to the server, as on hardware.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from agents.virtual import wire
from agents.virtual.services import developer

MAX_IMAGE_BYTES = 64 * 1024 * 1024  # a real DeveloperDiskImage.dmg is ~20 MB; refuse anything silly
DEV_MODE_OFF = 'Error Domain=com.apple.MobileStorage.ErrorDomain Code=-2 "Developer mode is not enabled."'


def _error(error: str, detail: str) -> dict[str, Any]:
    return {"Error": error, "DetailedError": detail}


class MounterSession:
    def __init__(self, device: Any) -> None:
        self.device = device
        self.received: dict[str, bytes] = {}  # image type -> signature sent with the uploaded bytes

    def lookup(self, r: dict[str, Any]) -> dict[str, Any]:
        kind = r.get("ImageType")
        if kind == developer.image_type(self.device) and developer.image_mounted(self.device):
            return {"ImagePresent": True, "ImageSignature": [developer.signature(self.device)], "Status": "Complete"}
        return {"ImagePresent": False, "ImageSignature": [], "Status": "Complete"}

    def mount(self, r: dict[str, Any]) -> dict[str, Any]:
        kind, sig = r.get("ImageType"), r.get("ImageSignature")
        if not developer.developer_mode_on(self.device):
            return _error("DeveloperModeIsNotEnabled", DEV_MODE_OFF)
        if kind != developer.image_type(self.device):
            return _error("ImageMountFailed", f"this device mounts a {developer.image_type(self.device)} image, "
                                              f"not {kind!r}")
        if developer.image_mounted(self.device):
            return _error("ImageMountFailed", f"A {kind} image is already mounted at {developer.MOUNT_PATHS[kind]}")
        if self.received.get(kind) != sig or not isinstance(sig, bytes) or not sig:
            return _error("ImageMountFailed", "no image with this signature was received")
        if kind == "Personalized" and not r.get("ImageTrustCache"):
            return _error("ImageMountFailed", "a personalized image needs its ImageTrustCache")
        developer.mount(self.device, sig)
        return {"Status": "Complete"}

    def unmount(self, r: dict[str, Any]) -> dict[str, Any]:
        path = developer.MOUNT_PATHS.get(developer.image_type(self.device))
        if r.get("MountPath") != path or not developer.image_mounted(self.device):
            return _error("InternalError", f"There is no matching entry in the device map for {r.get('MountPath')}")
        developer.unmount(self.device)
        return {"Status": "Complete"}

    def identifiers(self, _r: dict[str, Any]) -> dict[str, Any]:
        return {"PersonalizationIdentifiers": {
            "BoardId": self.device.chip_id & 0xFF, "ChipID": self.device.chip_id, "SecurityDomain": 1,
            "Ap,ProductType": self.device.product_type, "Ap,Target": self.device.hardware_model.upper(),
            "Ap,SDKPlatform": "iphoneos", "UniqueChipID": self.device.ecid}, "Status": "Complete"}

    def nonce(self, _r: dict[str, Any]) -> dict[str, Any]:
        return {"PersonalizationNonce": hashlib.sha384(f"nonce:{self.device.udid}".encode()).digest()[:20],
                "Status": "Complete"}

    def manifest(self, r: dict[str, Any]) -> dict[str, Any] | None:
        if developer.image_mounted(self.device) and developer.image_type(self.device) == "Personalized":
            return {"ImageSignature": developer.signature(self.device), "Status": "Complete"}
        return None  # no stored manifest: the device answers an error and hangs up

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers = {"LookupImage": self.lookup, "MountImage": self.mount, "UnmountImage": self.unmount,
                    "QueryPersonalizationIdentifiers": self.identifiers, "QueryNonce": self.nonce,
                    "CopyDevices": lambda _r: {"EntryList": developer.mounted_images(self.device),
                                               "Status": "Complete"},
                    "QueryDeveloperModeStatus": lambda _r: {
                        "DeveloperModeStatus": developer.developer_mode_on(self.device), "Status": "Complete"}}
        while (r := await wire.read_plist(reader)) is not None:
            command = r.get("Command")
            if command == "ReceiveBytes":
                if not await self._receive(r, reader, writer):
                    return
                continue
            if command == "QueryPersonalizationManifest":
                reply = self.manifest(r)
                if reply is None:
                    await wire.send_plist(writer, _error("MissingManifest", "no personalization manifest stored"))
                    return
                await wire.send_plist(writer, reply)
                continue
            if command == "Hangup":
                await wire.send_plist(writer, {"Status": "Complete"})
                return
            handler = handlers.get(str(command))
            await wire.send_plist(writer, handler(r) if handler else {"Error": "UnknownCommand"})

    async def _receive(self, r: dict[str, Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        size, kind = r.get("ImageSize"), str(r.get("ImageType"))
        if not isinstance(size, int) or not 0 < size <= MAX_IMAGE_BYTES:
            await wire.send_plist(writer, _error("InvalidArgument", f"bad ImageSize {size!r}"))
            return False
        await wire.send_plist(writer, {"Status": "ReceiveBytesAck"})
        await reader.readexactly(size)
        self.received[kind] = r.get("ImageSignature") or b""
        await wire.send_plist(writer, {"Status": "Complete"})
        return True


async def serve_mobile_image_mounter(device: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await MounterSession(device).serve(reader, writer)
