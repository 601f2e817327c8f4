"""The services lockdownd can start, by name: the plug-in seam of the virtual device.

A handler is ``async def handler(device, reader, writer) -> None``, called on the
device's event loop once the client has connected to the port StartService returned
(and after service TLS, when the device uses TLS). It owns the connection until it
returns; the server closes the connection afterwards.

The DVT service lives in ``agents/virtual/dvt.py`` (``serve_dvt``) and is registered
under both instruments names when that module imports; until it exists those names
are unknown and StartService answers ``InvalidService``, as a device without the
Developer Disk Image does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agents.virtual.device import VirtualDevice

Handler = Callable[["VirtualDevice", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

DVT_SERVICE_NAMES = (
    "com.apple.instruments.remoteserver.DVTSecureSocketProxy",  # iOS 14-16
    "com.apple.instruments.remoteserver",  # older name, same protocol
)
DVT_MODULE = "agents.virtual.dvt"
# From iOS 17 the developer services are no longer started through lockdownd: DVT answers as
# com.apple.instruments.dtservicehub on the RSD port list, inside the CoreDeviceProxy tunnel
# (lockdown service since iOS 17.4; 17.0-17.3 reach it through RemotePairing instead).
CORE_DEVICE_PROXY = "com.apple.internal.devicecompute.CoreDeviceProxy"
DVT_RSD_NAME = "com.apple.instruments.dtservicehub"
LOCKDOWN_RSD_NAMES = ("com.apple.mobile.lockdown.remote.trusted", "com.apple.mobile.lockdown.remote.untrusted")
# Services lockdownd starts only on some versions: name -> (first, last) ProductVersion, inclusive.
VERSION_RANGES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    **{name: ((0,), (16, 99)) for name in DVT_SERVICE_NAMES},
    CORE_DEVICE_PROXY: ((17, 4), (99,)),
}
# iOS 17+ serves the lockdown services over the RSD tunnel too, as NAME + this suffix behind an
# RSDCheckin (pymobiledevice3 picks those names when its provider is an RSD): every registered
# service is, except the old aliases a device only answers through lockdownd.
RSD_SHIM_SUFFIX = ".shim.remote"
LOCKDOWN_ONLY = ("com.apple.iosdiagnostics.relay",)

log = logging.getLogger("agents.virtual.services")


def default_services() -> dict[str, Handler]:
    """A fresh registry: the built-in services plus DVT when its module is present."""
    from agents.virtual.services.afc import serve_afc, serve_house_arrest
    from agents.virtual.services.crash_reports import serve_crashreportcopymobile, serve_crashreportmover
    from agents.virtual.services.diagnostics import serve_diagnostics
    from agents.virtual.services.installation_proxy import serve_installation_proxy
    from agents.virtual.services.mobile_image_mounter import serve_mobile_image_mounter
    from agents.virtual.services.os_trace_relay import serve_os_trace_relay
    from agents.virtual.services.syslog_relay import serve_syslog_relay

    registry: dict[str, Handler] = {
        "com.apple.afc": serve_afc,
        "com.apple.mobile.house_arrest": serve_house_arrest,
        "com.apple.mobile.installation_proxy": serve_installation_proxy,
        "com.apple.mobile.diagnostics_relay": serve_diagnostics,
        "com.apple.iosdiagnostics.relay": serve_diagnostics,
        "com.apple.syslog_relay": serve_syslog_relay,
        "com.apple.os_trace_relay": serve_os_trace_relay,
        "com.apple.crashreportcopymobile": serve_crashreportcopymobile,
        "com.apple.crashreportmover": serve_crashreportmover,
        "com.apple.mobile.mobile_image_mounter": serve_mobile_image_mounter,
    }
    dvt = _load_dvt()
    if dvt is not None:
        for name in DVT_SERVICE_NAMES:
            registry[name] = dvt
    return registry


def offered_over_lockdown(name: str, product_version: str) -> bool:
    """Whether lockdownd's StartService offers ``name`` on this OS version (see VERSION_RANGES)."""
    first, last = VERSION_RANGES.get(name, ((0,), (99,)))
    version = tuple(int(x) for x in product_version.split("."))
    return first <= version <= last + (99,)


def rsd_names(registry: dict[str, Handler]) -> dict[str, tuple[Handler, bool]]:
    """The RSD view of a lockdown registry: RSD name -> (handler, needs RSDCheckin).

    One rule for every service, so a service registered once is served on both paths: a lockdown
    service ``X`` answers as ``X.shim.remote`` behind an RSDCheckin (what pymobiledevice3's
    ``start_lockdown_service`` sends over RSD); DVT is ``com.apple.instruments.dtservicehub``
    without a check-in (``start_lockdown_developer_service``). The tunnel itself is not listed.
    """
    table: dict[str, tuple[Handler, bool]] = {}
    for name, handler in registry.items():
        if name == CORE_DEVICE_PROXY or name in LOCKDOWN_ONLY:
            continue
        if name in DVT_SERVICE_NAMES:
            table[DVT_RSD_NAME] = (handler, False)
            continue
        table[name + RSD_SHIM_SUFFIX] = (handler, True)
    return table


def _load_dvt() -> Handler | None:
    try:
        from agents.virtual import dvt
    except ModuleNotFoundError as exc:
        if exc.name != DVT_MODULE:
            # dvt.py exists but one of its own imports is missing: that is a bug, say so
            log.error("DVT service not loaded: %s", exc)
        return None
    return dvt.serve_dvt
