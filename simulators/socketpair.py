"""python-can's SocketCAN bus over a Unix socket pair, for machines without ``vcan``.

`socketcan_pair` gives two `SocketpairBus` ends: each is python-can's `SocketcanBus`, its
own ``send``, ``recv`` and frame layout (``struct can_frame`` / ``canfd_frame``, and
``SO_TIMESTAMPNS`` times: when the frame entered the socket, as a CAN socket stamps a frame
when the kernel takes it from the controller), on one end of a Unix datagram socket pair
instead of a raw CAN socket. What one end sends, the other receives, in order. python-can's
``send`` finds the socket full when about 70 frames are unread (a quarter of its buffer: it
then waits up to its timeout, or raises ``CanOperationError``); written straight to the
socket (``bus.socket.send``) it holds about 280, where a CAN socket would drop frames.

It stands in for the kernel's CAN stack where there is none (tests, benchmarks): the agent
reads it as it reads SocketCAN, one python-can receive call a frame. There is no kernel
filtering (python-can filters in Python, as on buses without driver filters), and periodic
sends run in a Python thread (python-can's fallback) instead of the kernel's broadcast manager.
"""

from __future__ import annotations

import socket
import threading

import can
from can import CanProtocol
from can.interfaces.socketcan import SocketcanBus, constants

__all__ = ["SocketpairBus", "socketcan_pair"]


class SocketpairBus(SocketcanBus):
    """python-can's `SocketcanBus` on an already connected Unix datagram socket."""

    # A Unix socket has no CAN filters and no broadcast manager: python-can's own fallbacks
    # (filters in Python, periodic sends from a thread).
    _apply_filters = can.BusABC._apply_filters
    _send_periodic_internal = can.BusABC._send_periodic_internal

    def __init__(self, sock: socket.socket, channel: str = "socketpair", *, fd: bool = True):
        if not channel:
            # SocketcanBus reads an empty channel as "every interface", addressed per message
            raise ValueError("a socket pair's channel must be named")
        # SocketcanBus.__init__ opens and binds a raw CAN socket; this sets what it sets
        # and takes the given socket instead.
        sock.setsockopt(socket.SOL_SOCKET, constants.SO_TIMESTAMPNS, 1)
        self.socket = sock
        self.channel = channel
        self.channel_info = f"socketpair channel '{channel}'"
        self._bcm_sockets: dict[str, socket.socket] = {}
        self._is_filtered = False
        self._task_id = 0
        self._task_id_guard = threading.Lock()
        self._can_protocol = CanProtocol.CAN_FD if fd else CanProtocol.CAN_20
        can.BusABC.__init__(self, channel=channel)


def socketcan_pair(
    channel: str = "socketpair", *, fd: bool = True
) -> tuple[SocketpairBus, SocketpairBus]:
    """Two connected ends; frames sent on either are received on the other. ``fd`` is the
    protocol the buses report (both carry CAN FD frames either way)."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        return SocketpairBus(a, channel, fd=fd), SocketpairBus(b, channel, fd=fd)
    except BaseException:
        a.close()
        b.close()
        raise
