"""The doctor's per-device checks for the iPhones and iPads attached to this host.

The same pymobiledevice3 client code the ``ios`` driver uses (``agents.drivers.ios_session``),
over the same usbmuxd, one lockdown session per device. Per device: paired (a pair record
exists for this host), trusted (the device accepts it), Developer Mode, the developer image,
the iOS 17+ tunnel and the harness app (installed, its build). Each is one small coroutine in
``DEVICE_CHECKS``; checks after pairing need a trusted session and are skipped without one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.cli.doctor import Finding

# lockdown checks take seconds; an iOS 17+ tunnel up to agents.drivers.ios_tunnel.TUNNEL_TIMEOUT_S
PER_DEVICE_TIMEOUT_S = 90.0


@dataclass
class Probe:
    """What the checks of one device share: its session and what it said when asked."""

    udid: str
    session: Any  # agents.drivers.ios_session.Session, connected (paired or not)
    values: dict[str, Any]
    paired: bool
    simulated: bool
    tunnels: list[Any]  # agents.drivers.ios_tunnel.TunnelPool, tunneld's first, then userspace

    @property
    def major(self) -> int:
        return int(str(self.values.get("ProductVersion", "0")).split(".")[0] or 0)


DeviceCheck = Callable[[Probe], Awaitable[Finding]]


def _name(p: Probe, what: str) -> str:
    return f"device {p.udid} {what}"


async def check_paired(p: Probe) -> Finding:
    from pymobiledevice3.pair_records import get_preferred_pair_record

    if p.paired:
        return Finding(_name(p, "paired"), "ok", "paired and trusted (lockdown session started)")
    target = p.session.target
    record = await get_preferred_pair_record(p.udid, target.pairing_records_dir or Path.home() / ".pymobiledevice3",
                                             target.usbmux_address)
    if record is None:
        return Finding(_name(p, "paired"), "fail", "not paired with this host: no pair record",
                       f"unlock the device, then: pymobiledevice3 lockdown pair --udid {p.udid} and tap Trust")
    return Finding(_name(p, "paired"), "fail", "pair record present but the device does not trust this host",
                   "unlock the device and tap Trust (Settings > General > Transfer or Reset > Reset Location & "
                   "Privacy forgets old hosts)")


async def check_developer_mode(p: Probe) -> Finding:
    from pymobiledevice3.exceptions import LockdownError

    if p.major < 16:
        return Finding(_name(p, "developer mode"), "ok", f"not needed before iOS 16 (iOS {p.major})")
    try:
        on = await p.session.call("developer mode", p.session.lockdown.get_value(
            "com.apple.security.mac.amfi", "DeveloperModeStatus"))
    except LockdownError as exc:
        return Finding(_name(p, "developer mode"), "warn", f"unknown ({exc})")
    if on:
        return Finding(_name(p, "developer mode"), "ok", "on")
    return Finding(_name(p, "developer mode"), "fail", "off: the harness cannot be launched",
                   "Settings > Privacy & Security > Developer Mode, then restart the device "
                   "(or: pymobiledevice3 amfi enable-developer-mode)")


async def check_developer_image(p: Probe) -> Finding:
    from pymobiledevice3.services.mobile_image_mounter import MobileImageMounterService

    kind = "Personalized" if p.major >= 17 else "Developer"
    async with p.session.service("mobile_image_mounter", MobileImageMounterService(p.session.lockdown)) as mounter:
        mounted = await p.session.call("lookup image", mounter.is_image_mounted(kind))
    if mounted:
        return Finding(_name(p, "developer image"), "ok", f"{kind} image mounted")
    return Finding(_name(p, "developer image"), "fail", f"no {kind} developer image mounted (as after a reboot)",
                   f"pymobiledevice3 mounter auto-mount --udid {p.udid}" +
                   (" (iOS 17+: needs Apple's signing server once)" if p.major >= 17 else ""))


async def check_tunnel(p: Probe) -> Finding:
    """iOS 17+: open the CoreDeviceProxy tunnel the driver would (tunneld's when one runs, else a
    userspace one in this process) and read the RSD's service list through it."""
    from agents.drivers.ios_tunnel import TUNNEL_TIMEOUT_S

    if p.major < 17:
        return Finding(_name(p, "tunnel"), "ok", f"not needed (iOS {p.major}: developer services over lockdown)")
    errors = []
    for pool in p.tunnels:
        try:
            rsd, _ = await asyncio.wait_for(pool.rsd(p.udid), TUNNEL_TIMEOUT_S)
        except Exception as exc:  # this way failed: try the next, report both
            errors.append(f"{pool.mode}: {type(exc).__name__}: {str(exc)[:150]}")
            continue
        services = len(((rsd.peer_info or {}).get("Services")) or {})
        await pool.discard(p.udid)
        return Finding(_name(p, "tunnel"), "ok", f"{pool.mode} tunnel up, RSD lists {services} services")
    return Finding(_name(p, "tunnel"), "fail", "no tunnel to its developer services (" + "; ".join(errors) + ")",
                   "iOS 17.4+ with Developer Mode on; for one shared tunnel per host: sudo pymobiledevice3 "
                   "remote tunneld, and ios17_tunnel: tunneld in the agent config")


async def check_harness(p: Probe) -> Finding:
    from pymobiledevice3.services.installation_proxy import InstallationProxyService

    from agents.drivers.ios_ipa import BUILD_HASH_KEY
    from agents.harness.contract import HARNESS_BUNDLE_ID

    async with p.session.service("installation_proxy", InstallationProxyService(p.session.lockdown)) as iproxy:
        found = await p.session.call("lookup", iproxy.lookup({"BundleIDs": [HARNESS_BUNDLE_ID]}))
    app = (found or {}).get(HARNESS_BUNDLE_ID)
    if not app:
        if p.simulated:
            return Finding(_name(p, "harness"), "ok", "not installed yet (the agent installs one before the first job)")
        return Finding(_name(p, "harness"), "warn", f"{HARNESS_BUNDLE_ID} not installed",
                       "build the harness (agents/harness/ios/README.md), benchfarm harness build; the agent "
                       "installs it before the first job")
    build = app.get(BUILD_HASH_KEY) or app.get("BenchfarmHarnessHash") or "no build hash"
    return Finding(_name(p, "harness"), "ok", f"{HARNESS_BUNDLE_ID} {app.get('CFBundleShortVersionString', '?')} "
                   f"({app.get('CFBundleVersion', '?')}), build {str(build)[:12]}")


DEVICE_CHECKS: list[DeviceCheck] = [check_developer_mode, check_developer_image, check_tunnel, check_harness]


async def _probe_device(udid: str, target: Any, tunnels: list[Any]) -> list[Finding]:
    from agents.drivers.ios import SIMULATED_KEY
    from agents.drivers.ios_session import Session

    s = Session(udid, target, None)
    try:
        ld = await s.connect(require_paired=False)
        probe = Probe(udid, s, dict(ld.all_values or {}), bool(ld.paired), ld.all_values.get(SIMULATED_KEY) is True,
                      tunnels)
        out = [await check_paired(probe)]
        for check in DEVICE_CHECKS:
            name = check.__name__.removeprefix("check_").replace("_", " ")
            if not probe.paired:
                out.append(Finding(_name(probe, name), "skip", "needs a trusted pairing first"))
                continue
            try:
                out.append(await check(probe))
            except Exception as exc:  # one failing probe must not hide the device's other checks
                out.append(Finding(_name(probe, name), "fail", f"{type(exc).__name__}: {str(exc)[:200]}"))
        return out
    finally:
        await s.close()


async def _check_all(usbmux: str | None) -> list[Finding]:
    from agents.drivers.ios_session import Target, attached_udids
    from agents.drivers.ios_tunnel import TunnelPool

    target = Target(usbmux)
    where = usbmux or "the system usbmuxd"
    try:
        udids = sorted(set(await attached_udids(target)))
    except Exception as exc:  # no usbmuxd: this host has no iOS devices to check
        return [Finding("usbmuxd", "skip", f"{where} does not answer ({type(exc).__name__}): no iOS devices here",
                        "on an agent host with iPhones: install usbmuxd (Linux) or use macOS's own")]
    out = [Finding("usbmuxd", "ok", f"{where}: {len(udids)} device(s) attached")]
    tunnels = [TunnelPool(mode, usbmux, None) for mode in ("tunneld", "userspace")]
    try:
        for udid in udids:
            try:
                out += await asyncio.wait_for(_probe_device(udid, target, tunnels), PER_DEVICE_TIMEOUT_S)
            except Exception as exc:  # a device that does not answer lockdown is itself the finding
                out.append(Finding(f"device {udid}", "fail", f"lockdown: {type(exc).__name__}: {str(exc)[:200]}",
                                   "unplug and replug it; unlock it"))
    finally:
        for pool in tunnels:
            await pool.close()
    return out


def check_ios_devices(usbmux: str | None) -> list[Finding]:
    return asyncio.run(_check_all(usbmux))
