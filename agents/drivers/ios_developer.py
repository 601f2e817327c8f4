"""Developer Mode and the developer disk image: may this phone run DVT at all, and if not, why.

Before a lease the iOS driver asks the device (lockdown ``com.apple.security.mac.amfi``
``DeveloperModeStatus``, iOS 16+) and mobile_image_mounter (is the ``Developer`` image
mounted, or from iOS 17 the ``Personalized`` one). A missing image is mounted when it can be
(pymobiledevice3's ``auto_mount``: the shared image from Xcode's DeviceSupport or its
download; the personalized one downloaded and then signed for this device by Apple's
signing server, tss.apple.com). What is wrong becomes a device condition with the remedy in
words: ``developer_mode_off`` needs a person at the phone; ``ddi_missing`` needs an image
the host can find or a host that can reach Apple. Neither is a launch failure of a job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import requests
from packaging.version import Version
from pymobiledevice3.exceptions import (
    AlreadyMountedError,
    DeveloperDiskImageNotFoundError,
    DeveloperModeIsNotEnabledError,
    LockdownError,
    NoSuchBuildIdentityError,
)
from pymobiledevice3.services.mobile_image_mounter import (
    MobileImageMounterService,
    auto_mount,
    image_type_for_device,
    uses_personalized_image,
)

from agents.drivers.ios_session import Session

log = logging.getLogger("agents.drivers.ios")
DEVELOPER_MODE_OFF, DDI_MISSING = "developer_mode_off", "ddi_missing"
CONDITIONS = (DEVELOPER_MODE_OFF, DDI_MISSING)
DEVELOPER_MODE_MIN = Version("16.0")
# Downloading a ~20 MB image and a TSS round trip; a host that is offline fails in seconds.
MOUNT_TIMEOUT_S = 120.0
REMEDY_DEVELOPER_MODE = ("Developer Mode is off: on the device open Settings > Privacy & Security > Developer "
                         "Mode, turn it on, let it restart and confirm \"Turn On\" (needs a person at the phone)")


@dataclass(frozen=True)
class Readiness:
    condition: str = ""  # "" | developer_mode_off | ddi_missing
    detail: str = ""  # the remedy in words, or what was done ("mounted the Developer image")

    @property
    def ok(self) -> bool:
        return not self.condition


async def readiness(s: Session, mount: bool = True) -> Readiness:
    """Check Developer Mode and the developer image; mount a missing image when ``mount``."""
    assert s.lockdown is not None
    version = Version(s.lockdown.product_version)
    if version >= DEVELOPER_MODE_MIN:
        try:
            on = await s.call("developer mode", s.lockdown.get_developer_mode_status())
        except Exception as exc:  # MissingValue on a device that has no such key: treat as on
            if not isinstance(exc.__cause__, LockdownError):
                raise
            on = True
        if not on:
            return Readiness(DEVELOPER_MODE_OFF, REMEDY_DEVELOPER_MODE)
    kind = image_type_for_device(s.lockdown)
    if await _mounted(s, kind):
        return Readiness()
    if not mount:
        return Readiness(DDI_MISSING, _remedy(version, "automatic mounting is disabled (mount_developer_image)"))
    async with s.step("mount_developer_image", image=kind) as entry:
        try:
            await s.call("mount developer image", auto_mount(s.lockdown), timeout=MOUNT_TIMEOUT_S)
        except Exception as exc:  # every way the mount fails is told apart only by its words
            why = _why(exc.__cause__ or exc)
            entry["error"] = why
            if isinstance(exc.__cause__ or exc, AlreadyMountedError):
                return Readiness()
            if isinstance(exc.__cause__ or exc, DeveloperModeIsNotEnabledError):
                return Readiness(DEVELOPER_MODE_OFF, REMEDY_DEVELOPER_MODE)
            log.warning("%s: developer image not mounted: %s", s.udid, why)
            return Readiness(DDI_MISSING, _remedy(version, why))
    if await _mounted(s, kind):
        return Readiness(detail=f"mounted the {kind} developer image")
    return Readiness(DDI_MISSING, _remedy(version, "the device accepted the image but does not list it as mounted"))


async def _mounted(s: Session, kind: str) -> bool:
    assert s.lockdown is not None
    async with s.service("mobile_image_mounter", MobileImageMounterService(s.lockdown)) as mounter:
        return bool(await s.call("lookup developer image", mounter.is_image_mounted(kind)))


def _why(exc: BaseException) -> str:
    if isinstance(exc, requests.ConnectionError | requests.Timeout | ConnectionError):
        return f"this host is offline or cannot reach the image source ({type(exc).__name__})"
    if isinstance(exc, DeveloperDiskImageNotFoundError):
        return "no developer disk image for this iOS version is known"
    if isinstance(exc, NoSuchBuildIdentityError):
        return "the personalized image does not cover this device's board"
    return f"{type(exc).__name__}: {exc}"[:300]


def _remedy(version: Version, why: str) -> str:
    if uses_personalized_image_version(version):
        return (f"no developer disk image mounted ({why}). iOS {version} needs the Personalized image, which "
                "Apple's signing server (tss.apple.com) signs for this device: connect this host to the internet "
                "(or run `pymobiledevice3 mounter auto-mount` once on a host that is online), then it mounts itself")
    return (f"no developer disk image mounted ({why}). Put Xcode's DeviceSupport/{version.major}.{version.minor} "
            "image on this host (or let it download once), or run `pymobiledevice3 mounter auto-mount`")


def uses_personalized_image_version(version: Version) -> bool:
    class _V:  # the one cut-off lives in pymobiledevice3; ask it with a stand-in provider
        product_version = str(version)

    return uses_personalized_image(_V())  # type: ignore[arg-type]
