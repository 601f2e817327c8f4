"""lockdownd on port 62078: values, pairing, sessions (optionally TLS) and StartService.

Every reply repeats ``Request``; errors are ``Error`` strings the client maps to its
exceptions (InvalidHostID, MissingValue, InvalidService, UserDeniedPairing...).
StartService hands out a fresh port per request; the client's next usbmux Connect to
that port is given to the service's handler (see ``server.VirtualFleetServer``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING, Any

from agents.virtual import tls, wire
from agents.virtual.device import VirtualDevice
from agents.virtual.services import CORE_DEVICE_PROXY, offered_over_lockdown
from agents.virtual.services.developer import service_available

if TYPE_CHECKING:
    from agents.virtual.server import VirtualFleetServer

log = logging.getLogger("agents.virtual.lockdown")


class LockdownSession:
    def __init__(self, server: VirtualFleetServer, device: VirtualDevice,
                 reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.server, self.device = server, device
        self.reader, self.writer = reader, writer
        self.session_id: str | None = None
        self.host_id: str | None = None

    async def serve(self) -> None:
        while (request := await wire.read_plist(self.reader)) is not None:
            name = request.get("Request", "")
            handler = getattr(self, f"_{name}", None)
            reply = handler(request) if handler else {"Error": "UnknownRequest"}
            reply = {"Request": name, **reply}
            await wire.send_plist(self.writer, reply)
            if name == "StartSession" and reply.get("EnableSessionSSL"):
                await self.writer.start_tls(tls.server_context())
            if name == "Goodbye":
                return

    # -- requests ------------------------------------------------------------------------
    def _QueryType(self, _r: dict[str, Any]) -> dict[str, Any]:
        return {"Type": "com.apple.mobile.lockdown"}

    def _GetValue(self, r: dict[str, Any]) -> dict[str, Any]:
        domain, key = r.get("Domain"), r.get("Key")
        values = self.device.domain_values(domain) if domain else self.device.lockdown_values()
        if values is None:
            return {"Error": "MissingValue", "Domain": domain}
        values = {**values, **self.device_overrides(domain)}
        if key is None:
            return {"Value": values, **({"Domain": domain} if domain else {})}
        if key not in values:
            return {"Error": "MissingValue", "Key": key}
        return {"Value": values[key], "Key": key, **({"Domain": domain} if domain else {})}

    def device_overrides(self, domain: str | None) -> dict[str, Any]:
        return self.server.value_overrides.get((self.device.udid, domain or ""), {})

    def _SetValue(self, r: dict[str, Any]) -> dict[str, Any]:
        if self.session_id is None:
            return {"Error": "SetProhibited"}
        key = (self.device.udid, r.get("Domain") or "")
        if r.get("Key") is not None:
            self.server.value_overrides.setdefault(key, {})[r["Key"]] = r.get("Value")
        return {"Result": "Success"}

    def _RemoveValue(self, r: dict[str, Any]) -> dict[str, Any]:
        self.server.value_overrides.get((self.device.udid, r.get("Domain") or ""), {}).pop(str(r.get("Key")), None)
        return {"Result": "Success"}

    def _ValidatePair(self, r: dict[str, Any]) -> dict[str, Any]:
        host_id = (r.get("PairRecord") or {}).get("HostID")
        return {} if self._trusted(host_id) else {"Error": "InvalidHostID"}

    def _trusted(self, host_id: str | None) -> bool:
        return self.device.paired and host_id in self.device.trusted_hosts

    def _Pair(self, r: dict[str, Any]) -> dict[str, Any]:
        host_id = (r.get("PairRecord") or {}).get("HostID")
        if not self.device.paired:
            # the "not paired" fault stands for a device whose user does not trust this host
            return {"Error": "UserDeniedPairing"}
        if not host_id:
            return {"Error": "InvalidHostID"}
        self.device.trusted_hosts.add(host_id)
        log.info("paired", extra={"fields": {"udid": self.device.udid, "host_id": host_id}})
        return {"EscrowBag": self.server.escrow_bag}

    def _Unpair(self, r: dict[str, Any]) -> dict[str, Any]:
        self.device.trusted_hosts.discard((r.get("PairRecord") or {}).get("HostID"))
        return {"Result": "Success"}

    def _StartSession(self, r: dict[str, Any]) -> dict[str, Any]:
        if not self._trusted(r.get("HostID")):
            log.info("session refused", extra={"fields": {"udid": self.device.udid, "host_id": r.get("HostID")}})
            return {"Error": "InvalidHostID"}
        self.host_id = r["HostID"]
        self.session_id = str(uuid.uuid4()).upper()
        return {"SessionID": self.session_id, "EnableSessionSSL": self.device.tls}

    def _StopSession(self, _r: dict[str, Any]) -> dict[str, Any]:
        self.session_id = None
        return {"Result": "Success"}

    def _StartService(self, r: dict[str, Any]) -> dict[str, Any]:
        name = r.get("Service", "")
        if self.session_id is None or not self._trusted(self.host_id):
            return {"Error": "InvalidHostID" if self.session_id else "SessionInactive", "Service": name}
        if (name not in self.server.services or not offered_over_lockdown(name, self.device.product_version)
                or not service_available(self.device, name)):
            # iOS 17+ no longer starts developer services here (they live behind the tunnel);
            # CoreDeviceProxy exists from 17.4; DVT needs the developer image and Developer Mode
            log.info("unknown service", extra={"fields": {"udid": self.device.udid, "service": name}})
            return {"Error": "InvalidService", "Service": name}
        if name == CORE_DEVICE_PROXY and self.device.faults.take("core_device_proxy_refused"):
            return {"Error": "PasswordProtected", "Service": name}  # what a locked device answers
        port = self.server.open_service_port(self.device, name)
        return {"Service": name, "Port": port, "EnableServiceSSL": self.device.tls}

    def _Goodbye(self, _r: dict[str, Any]) -> dict[str, Any]:
        return {"Result": "Success"}
