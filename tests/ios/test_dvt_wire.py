"""The virtual DVT server against pymobiledevice3's own DTX client, over a real socket pair.

No lockdown here (that path is covered in test_driver_virtual.py): this pins the DTX layer
alone, so a failure points at dvt.py rather than at the virtual usbmux/lockdown stack.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from pymobiledevice3.dtx import DTXConnection, DTXNsError
from pymobiledevice3.services.dvt.instruments.dvt_provider import DvtProvider
from pymobiledevice3.services.dvt.instruments.process_control import ProcessControl, ProcessControlService

from agents.virtual.device import VirtualDevice
from agents.virtual.dvt import serve_dvt

pytestmark = pytest.mark.timeout(30)


APP = "com.example.app"


def _device() -> VirtualDevice:
    dev = VirtualDevice(7, "iPhone14,5", "16.6", "wire")
    dev.install(APP, {"CFBundleExecutable": "App", "CFBundleShortVersionString": "1.0"})
    return dev


class TerminationRecorder(ProcessControlService):
    """The host's own service class, keeping the termination callbacks it is sent."""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.terminated: asyncio.Queue = asyncio.Queue()

    async def _on_process_terminated(self, pid, exit_code, crashing_signal):
        await self.terminated.put((pid, exit_code, crashing_signal))


class LockdownStub:
    """Only what DvtProvider reads before it is handed a ready DTX connection."""

    product_version = "16.4"


async def _connected(device: VirtualDevice):
    host_sock, dev_sock = socket.socketpair()
    dev_reader, dev_writer = await asyncio.open_connection(sock=dev_sock)
    server = asyncio.create_task(serve_dvt(device, dev_reader, dev_writer))
    reader, writer = await asyncio.open_connection(sock=host_sock)
    conn = DTXConnection(reader, writer)
    provider = DvtProvider(LockdownStub(), dtx=conn)
    conn.sent_capabilities = provider.sent_capabilities
    await asyncio.wait_for(conn.connect(), 10)
    return conn, provider, server


def test_launch_kill_and_lookup_through_process_control():
    async def scenario():
        dev = _device()
        conn, provider, server = await _connected(dev)
        assert conn.supported_identifiers["com.apple.instruments.server.services.processcontrol"]
        async with ProcessControl(provider) as pc:
            pid = await pc.launch(APP, arguments=["--job", "job.json"],
                                  environment={"BENCHFARM": "1"}, kill_existing=True)
            proc = dev.processes[pid]
            assert (proc.bundle_id, proc.arguments, proc.environment) == (APP, ["--job", "job.json"],
                                                                        {"BENCHFARM": "1"})
            assert await pc.process_identifier_for_bundle_identifier(APP) == pid
            # KillExisting replaces the running instance
            second = await pc.launch(APP)
            assert second != pid and list(dev.processes) == [second]
            await pc.kill(second)
            assert dev.processes == {}
            assert await pc.process_identifier_for_bundle_identifier(APP) == 0
        await conn.aclose()
        await asyncio.wait_for(server, 5)

    asyncio.run(scenario())


def test_launch_of_missing_app_is_an_nserror():
    async def scenario():
        conn, provider, server = await _connected(_device())
        async with ProcessControl(provider) as pc:
            with pytest.raises(DTXNsError, match="not installed"):
                await pc.launch("com.example.absent")
            with pytest.raises(DTXNsError, match="no process"):
                await pc.kill(99999)
        await conn.aclose()
        await asyncio.wait_for(server, 5)

    asyncio.run(scenario())


def test_device_reports_termination_of_launched_process():
    async def scenario():
        dev = _device()
        conn, provider, server = await _connected(dev)
        svc = await conn.open_channel(TerminationRecorder)
        pid = await svc.invoke(
            "launchSuspendedProcessWithDevicePath:bundleIdentifier:environment:arguments:options:",
            "", APP, {}, [], {"KillExisting": True, "StartSuspendedKey": False})
        await svc.send_signal_to_pid_(9, pid)
        assert await asyncio.wait_for(svc.terminated.get(), 5) == (pid, 0, 9)
        await conn.aclose()
        await asyncio.wait_for(server, 5)
        assert dev.on_process_exit == []  # the closed channel unsubscribed itself

    asyncio.run(scenario())
