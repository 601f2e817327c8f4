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


def respond(device: VirtualDevice, request: dict[str, Any]) -> dict[str, Any]:
    kind = request.get("Request")
    if kind == "IORegistry":
        wanted = {request.get("EntryClass"), request.get("EntryName")} - {None}
        if wanted and not wanted & {"IOPMPowerSource", "AppleARMPMUCharger", "AppleSmartBattery"}:
            return {"Status": "Success", "Diagnostics": {"IORegistry": {}}}
        return {"Status": "Success", "Diagnostics": {"IORegistry": power_source(device)}}
    if kind == "GasGauge":
        src = power_source(device)
        return {"Status": "Success", "Diagnostics": {"GasGauge": {
            "CycleCount": src["CycleCount"], "DesignCapacity": src["DesignCapacity"],
            "FullChargeCapacity": src["AppleRawMaxCapacity"], "Status": "Success"}}}
    if kind == "MobileGestalt":
        values = {"ProductType": device.product_type, "ProductVersion": device.product_version,
                  "UniqueDeviceID": device.udid, "BatteryCurrentCapacity": int(device.current_battery_level()),
                  "BatteryIsCharging": device.is_charging()}
        keys = request.get("MobileGestaltKeys") or list(values)
        return {"Status": "Success",
                "Diagnostics": {"MobileGestalt": {"Status": "Success", **{k: values.get(k) for k in keys
                                                                            if k in values}}}}
    if kind in ("All", "WiFi", "NAND", "HDMI"):
        return {"Status": "Success", "Diagnostics": {kind: {}}}
    if kind in ("Goodbye", "Sleep", "Restart", "Shutdown"):
        return {"Status": "Success"}
    return {"Status": "UnknownRequest"}


async def serve_diagnostics(device: VirtualDevice, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
    while (request := await wire.read_plist(reader)) is not None:
        await wire.send_plist(writer, respond(device, request))
        if request.get("Request") == "Goodbye":
            return
