"""diagnostics_relay: IORegistry (battery as IOPMPowerSource), GasGauge, MobileGestalt, Goodbye.

Temperature is in centi-degrees Celsius, as iOS reports it, and follows the device's
thermal state (THERMAL_TEMPERATURE_C): a driver that gates on battery temperature sees
a device under thermal fault as hot.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from agents.virtual import wire
from agents.virtual.device import VirtualDevice

DESIGN_CAPACITY_MAH = 3274


def power_source(device: VirtualDevice) -> dict[str, Any]:
    level = device.current_battery_level()
    charging = device.is_charging()
    return {
        "BatteryInstalled": True,
        "CurrentCapacity": int(round(level)),
        "MaxCapacity": 100,
        "DesignCapacity": DESIGN_CAPACITY_MAH,
        "NominalChargeCapacity": DESIGN_CAPACITY_MAH - 120,
        "AppleRawCurrentCapacity": int(DESIGN_CAPACITY_MAH * level / 100),
        "AppleRawMaxCapacity": DESIGN_CAPACITY_MAH - 120,
        "CycleCount": 142,
        "Temperature": int(device.temperature_c() * 100),
        "Voltage": int(3700 + 5 * level),
        "InstantAmperage": 900 if charging else -350,
        "IsCharging": charging,
        "FullyCharged": level >= 100,
        "ExternalConnected": charging,
        "ExternalChargeCapable": charging,
        "AtCriticalLevel": level < 5,
        "UpdateTime": int(time.time()),
    }


# What iOS answers for the non-battery parts of ``diagnostics info`` (shape and keys).
STATIC_DIAGNOSTICS: dict[str, dict[str, Any]] = {
    "HDMI": {"Connection": "Unknown", "Status": "Success"},
    "NAND": {"Status": "Success"},
    "WiFi": {"Active": "true", "Status": "Success"},
}
BATTERY_NAMES = {"IOPMPowerSource", "AppleARMPMUCharger", "AppleSmartBattery"}
WIFI_NAMES = {"AppleBCMWLANSkywalkInterface", "IO80211Interface"}
# The top of each IORegistry plane, as CurrentPlane without an entry returns it: the root
# entry and the names of its children (a real device nests hundreds of entries below).
PLANES: dict[str, list[str]] = {
    "IODeviceTree": ["device-tree"],
    "IOService": ["J{model}AP", "IOResources", "IOUserResources"],
    "IOPower": ["IOPowerConnection", "IOPMrootDomain"],
    "IOUSB": ["AppleT{chip}USBXHCI"],
}


def gas_gauge(device: VirtualDevice) -> dict[str, Any]:
    src = power_source(device)
    return {"CycleCount": src["CycleCount"], "DesignCapacity": src["DesignCapacity"],
            "FullChargeCapacity": src["AppleRawMaxCapacity"], "Status": "Success"}


def wifi_interface(device: VirtualDevice) -> dict[str, Any]:
    return {"IOClass": "AppleBCMWLANSkywalkInterface", "IOObjectClass": "AppleBCMWLANSkywalkInterface",
            "BSD Name": "en0", "IOMACAddress": bytes.fromhex(device.lockdown_values()["WiFiAddress"].replace(":", "")),
            "IOInterfaceType": 6, "IOLinkStatus": 3, "IOMaxTransferUnit": 1500}


def ioregistry(device: VirtualDevice, request: dict[str, Any]) -> dict[str, Any]:
    """One entry by class or name (battery, Wi-Fi), a plane's root, or nothing, as iOS answers."""
    wanted = {request.get("EntryClass"), request.get("EntryName")} - {None}
    if wanted & BATTERY_NAMES:
        return power_source(device)
    if wanted & WIFI_NAMES:
        return wifi_interface(device)
    if wanted:
        return {}
    plane = request.get("CurrentPlane")
    if plane is None:
        return power_source(device)  # the diagnostics relay's default entry on iOS
    children = PLANES.get(str(plane))
    if children is None:
        return {}
    fill = {"model": device.hardware_model.upper().removesuffix("AP"), "chip": f"{device.chip_id:x}"}
    return {"IORegistryEntryName": "Root", "IOObjectClass": "IORegistryEntry", "IORegistryPlane": plane,
            "IORegistryEntryChildren": [{"IORegistryEntryName": c.format(**fill)} for c in children]}


def respond(device: VirtualDevice, request: dict[str, Any]) -> dict[str, Any]:
    kind = request.get("Request")
    if kind == "IORegistry":
        return {"Status": "Success", "Diagnostics": {"IORegistry": ioregistry(device, request)}}
    if kind == "GasGauge":
        return {"Status": "Success", "Diagnostics": {"GasGauge": gas_gauge(device)}}
    if kind == "MobileGestalt":
        values = {"ProductType": device.product_type, "ProductVersion": device.product_version,
                  "UniqueDeviceID": device.udid, "BatteryCurrentCapacity": int(device.current_battery_level()),
                  "BatteryIsCharging": device.is_charging()}
        keys = request.get("MobileGestaltKeys") or list(values)
        return {"Status": "Success",
                "Diagnostics": {"MobileGestalt": {"Status": "Success", **{k: values.get(k) for k in keys
                                                                            if k in values}}}}
    if kind == "All":
        return {"Status": "Success", "Diagnostics": {"GasGauge": gas_gauge(device), **STATIC_DIAGNOSTICS}}
    if kind in STATIC_DIAGNOSTICS:
        return {"Status": "Success", "Diagnostics": {kind: STATIC_DIAGNOSTICS[kind]}}
    if kind in ("Goodbye", "Sleep", "Restart", "Shutdown"):
        return {"Status": "Success"}
    return {"Status": "UnknownRequest"}


async def serve_diagnostics(device: VirtualDevice, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
    while (request := await wire.read_plist(reader)) is not None:
        await wire.send_plist(writer, respond(device, request))
        if request.get("Request") == "Goodbye":
            return
