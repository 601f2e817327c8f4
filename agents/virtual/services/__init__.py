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
# iOS 17+ serves the lockdown services above over the RSD tunnel too, under these names
# (pymobiledevice3 picks them when its provider is an RSD, not a LockdownClient).
RSD_SHIM_SUFFIX = ".shim.remote"
RSD_SHIMMED = (
    "com.apple.afc", "com.apple.mobile.house_arrest", "com.apple.mobile.installation_proxy",
    "com.apple.mobile.diagnostics_relay", "com.apple.syslog_relay", "com.apple.os_trace_relay",
    "com.apple.crashreportcopymobile", "com.apple.crashreportmover", "com.apple.mobile.mobile_image_mounter",
)

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


def _load_dvt() -> Handler | None:
    try:
        from agents.virtual import dvt
    except ModuleNotFoundError as exc:
        if exc.name != DVT_MODULE:
            # dvt.py exists but one of its own imports is missing: that is a bug, say so
            log.error("DVT service not loaded: %s", exc)
        return None
    return dvt.serve_dvt
