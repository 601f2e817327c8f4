"""crashreportcopymobile (AFC on the crash-report directory) and crashreportmover (flush, then ``ping``).

On iOS the mover moves reports from the system's staging area into the directory
crashreportcopymobile serves and then writes ``ping\\0``; a virtual device writes its reports
straight there (``agents.virtual.crashlog``), so the mover only acknowledges.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agents.virtual.crashlog import reports
from agents.virtual.services.afc import AfcSession

MOVER_ACK = b"ping\x00"


async def serve_crashreportcopymobile(device: Any, reader: asyncio.StreamReader,
                                      writer: asyncio.StreamWriter) -> None:
    await AfcSession(device, reports(device)).serve(reader, writer)


async def serve_crashreportmover(device: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(MOVER_ACK)
    await writer.drain()
