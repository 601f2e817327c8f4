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

from agents.virtual.dvt import serve_dvt

pytestmark = pytest.mark.timeout(30)


class ProcessTable:
    """The slice of VirtualDevice that dvt.py calls: a process table with exit callbacks."""

    def __init__(self) -> None:
        self.next_pid = 500
        self.running: dict[int, str] = {}
        self.launches: list[tuple[str, list[str], dict[str, str], bool]] = []
        self.installed = {"dev.benchfarm.harness"}
        self._exit_callbacks: list = []

    def launch_app(self, bundle_id, arguments, environment, kill_existing):
        if bundle_id not in self.installed:
            raise LookupError(f"{bundle_id} is not installed")
        self.launches.append((bundle_id, arguments, environment, kill_existing))
        self.next_pid += 1
        self.running[self.next_pid] = bundle_id
        return self.next_pid

    async def kill(self, pid):
        self.running.pop(pid)
        for cb in self._exit_callbacks:
            cb(pid, None, 9)

    def pid_for_bundle(self, bundle_id):
        return next((p for p, b in self.running.items() if b == bundle_id), 0)

    def on_process_exit(self, cb):
        self._exit_callbacks.append(cb)


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


async def _connected(table: ProcessTable):
    host_sock, dev_sock = socket.socketpair()
    dev_reader, dev_writer = await asyncio.open_connection(sock=dev_sock)
    server = asyncio.create_task(serve_dvt(table, dev_reader, dev_writer))
    reader, writer = await asyncio.open_connection(sock=host_sock)
    conn = DTXConnection(reader, writer)
    provider = DvtProvider(LockdownStub(), dtx=conn)
    conn.sent_capabilities = provider.sent_capabilities
    await asyncio.wait_for(conn.connect(), 10)
    return conn, provider, server


def test_launch_kill_and_lookup_through_process_control():
    async def scenario():
        table = ProcessTable()
        conn, provider, server = await _connected(table)
        assert conn.supported_identifiers["com.apple.instruments.server.services.processcontrol"]
        async with ProcessControl(provider) as pc:
            pid = await pc.launch("dev.benchfarm.harness", arguments=["--job", "job.json"],
                                  environment={"BENCHFARM": "1"}, kill_existing=True)
            assert pid == 501 and table.running == {501: "dev.benchfarm.harness"}
            assert table.launches == [
                ("dev.benchfarm.harness", ["--job", "job.json"], {"BENCHFARM": "1"}, True)]
            assert await pc.process_identifier_for_bundle_identifier("dev.benchfarm.harness") == 501
            await pc.kill(pid)
            assert table.running == {}
            assert await pc.process_identifier_for_bundle_identifier("dev.benchfarm.harness") == 0
        await conn.aclose()
        await asyncio.wait_for(server, 5)

    asyncio.run(scenario())


def test_launch_of_missing_app_is_an_nserror():
    async def scenario():
        conn, provider, server = await _connected(ProcessTable())
        async with ProcessControl(provider) as pc:
            with pytest.raises(DTXNsError, match="not installed"):
                await pc.launch("com.example.absent")
        await conn.aclose()
        await asyncio.wait_for(server, 5)

    asyncio.run(scenario())


def test_device_reports_termination_of_launched_process():
    async def scenario():
        table = ProcessTable()
        conn, provider, server = await _connected(table)
        svc = await conn.open_channel(TerminationRecorder)
        pid = await svc.invoke(
            "launchSuspendedProcessWithDevicePath:bundleIdentifier:environment:arguments:options:",
            "", "dev.benchfarm.harness", {}, [], {"KillExisting": True, "StartSuspendedKey": False})
        await svc.send_signal_to_pid_(9, pid)
        assert await asyncio.wait_for(svc.terminated.get(), 5) == (pid, 0, 9)
        await conn.aclose()
        await asyncio.wait_for(server, 5)

    asyncio.run(scenario())
