"""python-can's SocketCAN bus over a Unix socket pair."""

from __future__ import annotations

import time

import can
import pytest

from simulators.socketpair import socketcan_pair

from ..can_messages import every_kind


def test_every_kind_of_frame_crosses_the_pair_in_order_both_ways() -> None:
    a, b = socketcan_pair("pair0")
    sent = every_kind()
    before = time.time()
    for each in sent:
        a.send(each)
    got = [b.recv(1.0) for _ in sent]
    assert b.recv(0.01) is None
    for want, message in zip(sent, got, strict=True):
        assert message is not None
        assert message.equals(want, timestamp_delta=None, check_channel=False)
        assert message.channel == "pair0"
        assert before <= message.timestamp <= time.time()  # the socket's time
    b.send(sent[0])
    back = a.recv(1.0)
    assert back is not None and back.data == b"\x01\x02"
    a.shutdown()
    b.shutdown()


def test_a_full_buffer_makes_the_sender_wait_or_fail_not_drop() -> None:
    a, b = socketcan_pair()
    message = can.Message(arbitration_id=0x10, data=bytes(8), is_extended_id=False)
    sent = 0
    try:
        while True:
            a.send(message)  # no timeout: python-can polls once
            sent += 1
    except can.CanOperationError as exc:
        assert "buffer full" in str(exc)
    assert sent > 50  # the socket takes tens of frames before python-can sees it full
    received = 0
    while b.recv(0.01) is not None:
        received += 1
    assert received == sent
    a.shutdown()
    b.shutdown()


def test_periodic_sends_run_in_a_thread_and_the_channel_is_named() -> None:
    a, b = socketcan_pair(fd=False)
    assert a.protocol == can.CanProtocol.CAN_20
    task = a.send_periodic(can.Message(arbitration_id=0x42, is_extended_id=False), 0.01)
    got = [b.recv(1.0) for _ in range(3)]
    task.stop()
    assert all(m is not None and m.arbitration_id == 0x42 for m in got)
    a.shutdown()
    b.shutdown()
    with pytest.raises(ValueError, match="channel must be named"):
        socketcan_pair("")
