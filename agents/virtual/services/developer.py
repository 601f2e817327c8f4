"""Developer Mode and the developer disk image on a virtual device: what gates the developer services.

A phone runs DVT (instruments) only with Developer Mode on (iOS 16+) and a developer image
mounted: the shared ``Developer`` image up to iOS 16, a ``Personalized`` one (signed for this
device by Apple's server) from iOS 17. Without them lockdownd answers StartService for those
services with ``InvalidService``. A virtual device has its image mounted unless the
``ddi_missing`` fault says otherwise (as after a reboot); mounting through
mobile_image_mounter clears that fault, unmounting sets it. ``developer_mode_off`` holds
Developer Mode off until cleared (on a phone: Settings, then a restart).
"""

from __future__ import annotations

import hashlib
import weakref
from typing import Any

DEVELOPER_MODE_MIN_MAJOR = 16
PERSONALIZED_MIN_MAJOR = 17
MOUNT_PATHS = {"Developer": "/Developer", "Personalized": "/System/Developer"}
# Services a real device only offers with the developer image mounted.
NEEDS_DEVELOPER_IMAGE = (
    "com.apple.instruments.remoteserver.DVTSecureSocketProxy",
    "com.apple.instruments.remoteserver",
    "com.apple.instruments.dtservicehub",
    "com.apple.debugserver",
    "com.apple.debugserver.DVTSecureSocketProxy",
)
_signatures: weakref.WeakKeyDictionary[Any, bytes] = weakref.WeakKeyDictionary()


def major(device: Any) -> int:
    return int(device.product_version.split(".")[0])


def has_developer_mode(device: Any) -> bool:
    return major(device) >= DEVELOPER_MODE_MIN_MAJOR


def developer_mode_on(device: Any) -> bool:
    """iOS before 16 has no Developer Mode: everything it gates is simply allowed."""
    return not has_developer_mode(device) or device.faults.active("developer_mode_off") is None


def image_type(device: Any) -> str:
    return "Personalized" if major(device) >= PERSONALIZED_MIN_MAJOR else "Developer"


def image_mounted(device: Any) -> bool:
    return device.faults.active("ddi_missing") is None and developer_mode_on(device)


def signature(device: Any) -> bytes:
    """The mounted image's signature (an IM4M for a personalized image)."""
    return _signatures.get(device) or hashlib.sha384(f"ddi:{device.udid}".encode()).digest()


def mount(device: Any, sig: bytes) -> None:
    _signatures[device] = sig
    device.faults.clear("ddi_missing")


def unmount(device: Any) -> None:
    _signatures.pop(device, None)
    device.faults.add("ddi_missing")


def mounted_images(device: Any) -> list[dict[str, Any]]:
    """CopyDevices' EntryList."""
    if not image_mounted(device):
        return []
    kind = image_type(device)
    return [{"DiskImageType": kind, "IsMounted": True, "ImageSignature": signature(device),
             "MountPath": MOUNT_PATHS[kind], "BackingImagePath": f"/private/var/run/mobile_image_mounter/{kind}.dmg",
             "DeviceNode": "/dev/disk2", "DiskImageMounted": True}]


def service_available(device: Any, name: str) -> bool:
    """Whether lockdownd starts ``name`` now (it must also be a registered service)."""
    return name not in NEEDS_DEVELOPER_IMAGE or image_mounted(device)
