"""The device end of an IPv6 link: a small TCP endpoint that terminates the host's connections.

Over the CoreDeviceProxy tunnel the host sends raw IPv6 packets; its TCP/IP stack (pmd-pytcp
in pymobiledevice3's userspace tunnel, the kernel's behind tunneld's TUN) connects to the
device's tunnel address. This module is the device's half: passive opens on listening ports
(SYN -> SYN-ACK -> established), in-order delivery with cumulative ACKs, the peer's receive
window respected on send, FIN in both directions, RST for unknown ports and aborts. pmd-pytcp
cannot be used here: its stack is one per process, and the host client in the same test
process already owns it.

Each established connection is handed to a handler as ordinary asyncio streams over a
``socketpair`` (the same shape a service gets on the usbmux path, start_tls included); a pump
moves bytes between that socketpair and the segments. Window scaling, SACK and timestamps are
not offered in the SYN-ACK, so the peer uses none of them (RFC 7323/2018). The outer stream is
reliable, so loss only happens if the host drops a packet; a simple retransmission timer
(go-back-N from the first unacknowledged byte) covers that.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger("agents.virtual.tcp")

StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

IPV6_HEADER = struct.Struct("!IHBB16s16s")  # version/class/flow, payload length, next header, hops
TCP_HEADER = struct.Struct("!HHIIBBHHH")  # ports, seq, ack, offset, flags, window, checksum, urgent
PROTO_TCP = 6
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
WINDOW = 65535  # the window field; shifted by OUR_WSCALE when the host offers scaling
OUR_WSCALE = 2  # 256 KiB of receive window; pmd-pytcp requires the peer to agree to scaling
DEFAULT_MSS = 1220  # IPv6 minimum MTU 1280 - 60, when the SYN carries no MSS option
RTO_S = 0.5  # the tunnel's round trip is milliseconds; this only fires after a real drop
SEND_BUFFER = 256 * 1024  # handler bytes queued before the pump stops reading the handler
CHUNK = 65536
MOD = 1 << 32


def _lt(a: int, b: int) -> bool:
    """Sequence-space a < b (RFC 793 modular comparison)."""
    return 0 < (b - a) % MOD < MOD // 2


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@dataclass
class _Conn:
    peer: tuple[bytes, int]  # peer address (16 bytes), peer port
    port: int  # local port
    iss: int
    rcv_nxt: int
    snd_wnd: int
    mss: int
    peer_wscale: int | None = None  # None: the host offered no scaling, so neither side scales
    state: str = "SYN_RCVD"
    snd_una: int = 0
    snd_nxt: int = 0
    unacked: bytearray = field(default_factory=bytearray)  # sent, not acknowledged (from snd_una)
    pending: bytearray = field(default_factory=bytearray)  # from the handler, not sent yet
    fin_queued: bool = False  # the handler closed its side
    fin_seq: int | None = None  # sequence number of our FIN once sent
    peer_fin: bool = False
    progress_at: float = field(default_factory=time.monotonic)
    wb: asyncio.StreamWriter | None = None  # stack side of the socketpair
    inbox: bytearray = field(default_factory=bytearray)  # received before the socketpair is up
    space: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task] = field(default_factory=list)

    def in_flight(self) -> int:
        return (self.snd_nxt - self.snd_una) % MOD


class TcpEndpoint:
    """One device address on one tunnel; ``receive`` takes host packets, ``send`` emits ours."""

    def __init__(self, address: str, mtu: int, send: Callable[[bytes], None],
                 listeners: dict[int, StreamHandler]) -> None:
        self.address = ipaddress.IPv6Address(address).packed
        self.mtu = mtu
        self.send = send
        self.listeners = listeners
        self.conns: dict[tuple[bytes, int, int], _Conn] = {}
        self.closed = False
        self._timer = asyncio.get_running_loop().create_task(self._retransmit_loop(), name="tcp-rto")

    # -- inbound -----------------------------------------------------------------------
    def receive(self, packet: bytes) -> None:
        if len(packet) < IPV6_HEADER.size + TCP_HEADER.size:
            return
        vtf, plen, nxt, _hops, src, dst = IPV6_HEADER.unpack_from(packet)
        if vtf >> 28 != 6 or nxt != PROTO_TCP or dst != self.address:
            return  # ICMPv6 (router/neighbour solicitations, MLD) and anything not for us: ignored
        seg = packet[IPV6_HEADER.size:IPV6_HEADER.size + plen]
        sport, dport, seq, ack, off, flags, window, _ck, _urg = TCP_HEADER.unpack_from(seg)
        hlen = (off >> 4) * 4
        payload = seg[hlen:]
        key = (src, sport, dport)
        conn = self.conns.get(key)
        if conn is None:
            self._no_connection(src, sport, dport, seq, ack, flags, seg[TCP_HEADER.size:hlen], len(payload))
            return
        if flags & RST:
            self._drop(key, conn, "reset by host")
            return
        if flags & SYN:
            if conn.state == "SYN_RCVD":
                self._segment(conn, conn.iss, SYN | ACK, mss_option=True)  # our SYN-ACK was lost
            return
        if not flags & ACK:
            return
        conn.snd_wnd = window << (conn.peer_wscale or 0)
        self._acked(key, conn, ack)
        if key not in self.conns:
            return
        if payload:
            self._deliver(conn, seq, payload)
        if flags & FIN and (seq + len(payload)) % MOD == conn.rcv_nxt and not conn.peer_fin:
            conn.peer_fin = True
            conn.rcv_nxt = (conn.rcv_nxt + 1) % MOD
            if conn.wb is not None:
                _write_eof(conn.wb)  # the handler reads EOF, as after a host half-close
        if payload or flags & FIN:
            self._segment(conn, conn.snd_nxt, ACK)
        self._flush(conn)
        self._maybe_done(key, conn)

    def _no_connection(self, src: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
                       options: bytes, plen: int) -> None:
        if flags & RST:
            return
        if flags & SYN and not flags & ACK and dport in self.listeners and not self.closed:
            iss = random.getrandbits(32)
            mss, wscale = _syn_options(options)
            conn = _Conn((src, sport), dport, iss, (seq + 1) % MOD, WINDOW, min(mss, self.mtu - 60),
                         peer_wscale=wscale, snd_una=iss, snd_nxt=(iss + 1) % MOD)
            self.conns[(src, sport, dport)] = conn
            self._segment(conn, iss, SYN | ACK, mss_option=True)
            return
        # a closed port (or a tunnel restarted under the host): connection refused, as RFC 793 says
        if flags & ACK:
            self._raw(src, sport, dport, ack, 0, RST)
        else:
            self._raw(src, sport, dport, 0, (seq + plen + (1 if flags & SYN else 0)) % MOD, RST | ACK)

    def _acked(self, key: tuple[bytes, int, int], conn: _Conn, ack: int) -> None:
        if conn.state == "SYN_RCVD":
            if ack != conn.snd_nxt:
                return
            conn.state = "ESTABLISHED"
            conn.snd_una = ack
            conn.progress_at = time.monotonic()
            conn.tasks.append(asyncio.get_running_loop().create_task(self._start(key, conn), name="tcp-conn"))
            return
        if not _lt(conn.snd_una, ack) or _lt(conn.snd_nxt, ack):
            return  # duplicate or from the future
        n = (ack - conn.snd_una) % MOD
        data_acked = min(n, len(conn.unacked))
        del conn.unacked[:data_acked]
        conn.snd_una = ack
        conn.progress_at = time.monotonic()
        if len(conn.pending) < SEND_BUFFER:
            conn.space.set()

    def _deliver(self, conn: _Conn, seq: int, payload: bytes) -> None:
        offset = (conn.rcv_nxt - seq) % MOD
        if offset >= MOD // 2:
            return  # beyond what we expect: a hole; drop it, the duplicate ACK asks again
        if offset >= len(payload):
            return  # all of it already delivered (a retransmission)
        data = payload[offset:]
        conn.rcv_nxt = (conn.rcv_nxt + len(data)) % MOD
        if conn.wb is not None:
            conn.wb.write(data)
        else:
            conn.inbox += data

    # -- outbound ----------------------------------------------------------------------
    def _flush(self, conn: _Conn) -> None:
        if conn.state != "ESTABLISHED":
            return
        while conn.pending:
            room = conn.snd_wnd - conn.in_flight()
            if room <= 0:
                return
            n = min(conn.mss, room, len(conn.pending))
            chunk = bytes(conn.pending[:n])
            del conn.pending[:n]
            self._segment(conn, conn.snd_nxt, ACK | PSH, chunk)
            conn.unacked += chunk
            conn.snd_nxt = (conn.snd_nxt + n) % MOD
        if len(conn.pending) < SEND_BUFFER:
            conn.space.set()
        if conn.fin_queued and conn.fin_seq is None:
            conn.fin_seq = conn.snd_nxt
            self._segment(conn, conn.snd_nxt, FIN | ACK)
            conn.snd_nxt = (conn.snd_nxt + 1) % MOD

    def _segment(self, conn: _Conn, seq: int, flags: int, data: bytes = b"", mss_option: bool = False) -> None:
        opts = b""
        if mss_option:  # the SYN-ACK: our MSS, and window scaling only if the host offered it
            opts = struct.pack("!BBH", 2, 4, self.mtu - 60)
            if conn.peer_wscale is not None:
                opts += struct.pack("!BBBB", 1, 3, 3, OUR_WSCALE)
        self._raw(conn.peer[0], conn.peer[1], conn.port, seq, conn.rcv_nxt, flags, data, opts)

    def _raw(self, dst: bytes, dport: int, sport: int, seq: int, ack: int, flags: int,
             data: bytes = b"", opts: bytes = b"") -> None:
        if self.closed:
            return
        hlen = TCP_HEADER.size + len(opts)
        head = TCP_HEADER.pack(sport, dport, seq, ack, (hlen // 4) << 4, flags, WINDOW, 0, 0) + opts
        length = hlen + len(data)
        pseudo = self.address + dst + struct.pack("!IxxxB", length, PROTO_TCP)
        ck = _checksum(pseudo + head + data)
        head = head[:16] + struct.pack("!H", ck) + head[18:]
        ip = IPV6_HEADER.pack(6 << 28, length, PROTO_TCP, 64, self.address, dst)
        self.send(ip + head + data)

    async def _retransmit_loop(self) -> None:
        while True:
            await asyncio.sleep(RTO_S / 2)
            now = time.monotonic()
            for conn in list(self.conns.values()):
                if conn.in_flight() and now - conn.progress_at > RTO_S:
                    self._retransmit(conn)
                    conn.progress_at = now

    def _retransmit(self, conn: _Conn) -> None:
        if conn.state == "SYN_RCVD":
            self._segment(conn, conn.iss, SYN | ACK, mss_option=True)
            return
        # go back to the first unacknowledged byte and send again what the window allows
        conn.pending[:0] = conn.unacked
        conn.unacked.clear()
        conn.snd_nxt = conn.snd_una
        if conn.fin_seq is not None:
            conn.fin_seq = None
        self._flush(conn)

    # -- the handler's side ------------------------------------------------------------
    async def _start(self, key: tuple[bytes, int, int], conn: _Conn) -> None:
        ours, theirs = socket.socketpair()
        try:
            rb, wb = await asyncio.open_connection(sock=ours)
            hr, hw = await asyncio.open_connection(sock=theirs)
        except Exception:
            ours.close()
            theirs.close()
            raise
        conn.wb = wb
        if conn.inbox:
            wb.write(bytes(conn.inbox))
            conn.inbox.clear()
        if conn.peer_fin:
            _write_eof(wb)
        handler = self.listeners[conn.port]
        conn.tasks.append(asyncio.get_running_loop().create_task(self._run_handler(handler, hr, hw),
                                                                 name=f"tcp-service-{conn.port}"))
        try:
            while True:
                data = await rb.read(CHUNK)
                if not data:
                    break
                conn.pending += data
                self._flush(conn)
                while len(conn.pending) >= SEND_BUFFER and key in self.conns:
                    conn.space.clear()
                    await conn.space.wait()
        except (ConnectionError, OSError):
            pass
        if key in self.conns:
            conn.fin_queued = True
            self._flush(conn)
            self._maybe_done(key, conn)

    async def _run_handler(self, handler: StreamHandler, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        except Exception:
            log.exception("service over the tunnel failed")
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def _maybe_done(self, key: tuple[bytes, int, int], conn: _Conn) -> None:
        if conn.peer_fin and conn.fin_seq is not None and conn.snd_una == (conn.fin_seq + 1) % MOD:
            self._drop(key, conn, None)

    def _drop(self, key: tuple[bytes, int, int], conn: _Conn, reason: str | None) -> None:
        self.conns.pop(key, None)
        conn.space.set()
        if conn.wb is not None:
            conn.wb.transport.abort() if reason else conn.wb.close()
        if reason:
            for task in conn.tasks:
                task.cancel()

    def close(self) -> None:
        """The tunnel is gone: every connection ends (the handlers see a reset)."""
        self.closed = True
        self._timer.cancel()
        for key, conn in list(self.conns.items()):
            self._drop(key, conn, "tunnel closed")


def _write_eof(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.write_eof()


def _syn_options(options: bytes) -> tuple[int, int | None]:
    """(MSS, window-scale shift or None) from a SYN's options; SACK, timestamps, TFO are ignored
    (not echoed, so not in use)."""
    mss, wscale = DEFAULT_MSS, None
    i = 0
    while i < len(options):
        kind = options[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(options):
            break
        size = options[i + 1]
        if kind == 2 and size == 4 and i + 4 <= len(options):
            mss = int(struct.unpack_from("!H", options, i + 2)[0])
        elif kind == 3 and size == 3 and i + 3 <= len(options):
            wscale = min(options[i + 2], 14)
        i += max(size, 2)
    return mss, wscale
