"""The numba kernel of the sampler: one pass over a decoded batch, frame by frame.

For every present sample of a mapped signal it decides, by the signal's policy and the state
left by earlier batches, whether the sample is sent, and copies the samples of watched
signals (those triggers and the crash detector read) to a second output at full rate.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

_JIT: dict[str, Any] = {"nogil": True, "cache": True, "boundscheck": False}

# Policy modes (SamplingPolicy.mode)
MODE_OFF = 0
MODE_ALL = 1
MODE_INTERVAL = 2
MODE_ON_CHANGE = 3
MODE_DEADBAND = 4

# Columns of the per-signal state (int64): whether a sample was sent, the last sent time and
# raw value, the interval bucket of the last sent sample, the last seen time and raw value.
ST_SENT = 0
ST_SENT_T = 1
ST_SENT_RAW = 2
ST_BUCKET = 3
ST_SEEN = 4
ST_SEEN_T = 5
ST_SEEN_RAW = 6
ST_WIDTH = 7
# Columns of the float state: the last sent value, the last seen value (VSS units).
FST_SENT_VALUE = 0
FST_SEEN_VALUE = 1
FST_WIDTH = 2


@numba.njit(**_JIT)
def select(
    frame_msg: Any,
    frame_slot: Any,
    timestamps: Any,
    msg_sig_start: Any,
    msg_sig_count: Any,
    msg_frames: Any,
    present: Any,
    raw: Any,
    values: Any,
    sig_wire: Any,
    mode: Any,
    period_ms: Any,
    deadband: Any,
    min_ms: Any,
    max_ms: Any,
    vss_scale: Any,
    vss_offset: Any,
    watched: Any,
    state: Any,
    fstate: Any,
    out_sig: Any,
    out_t: Any,
    out_raw: Any,
    all_sig: Any,
    all_t: Any,
    all_raw: Any,
    all_value: Any,
    alarm: Any,
) -> tuple[int, int, int, int, int]:
    """Select the samples to send; returns (sent, watched, clamped, mapped, alarms) counts.

    ``alarms`` counts samples whose magnitude exceeds their signal's ``alarm`` threshold
    (NaN: none), so that a detector can skip a quiet batch without looking at it.

    A sample whose time is before its signal's last seen sample is given that time
    (``clamped``), so every signal's times stay non-decreasing on the wire.
    """
    n_out = 0
    n_all = 0
    clamped = 0
    mapped = 0
    alarms = 0
    for row in range(len(frame_msg)):
        m = frame_msg[row]
        if m < 0:
            continue
        t = np.int64(np.round(timestamps[row] * 1000.0))
        first = msg_sig_start[m]
        slot = frame_slot[row]
        stride = msg_frames[m]
        for k in range(msg_sig_count[m]):
            w = sig_wire[first + k]
            if w < 0 or not present[slot + k * stride]:
                continue
            mapped += 1
            r = raw[slot + k * stride]
            v = values[slot + k * stride] * vss_scale[w] + vss_offset[w]
            st = state[w]
            if st[ST_SEEN] and t < st[ST_SEEN_T]:
                t_w = st[ST_SEEN_T]
                clamped += 1
            else:
                t_w = t
            st[ST_SEEN] = 1
            st[ST_SEEN_T] = t_w
            st[ST_SEEN_RAW] = r
            fstate[w, FST_SEEN_VALUE] = v
            if abs(v) > alarm[w]:
                alarms += 1
            if watched[w]:
                all_sig[n_all] = w
                all_t[n_all] = t_w
                all_raw[n_all] = r
                all_value[n_all] = v
                n_all += 1
            md = mode[w]
            send = False
            if md == MODE_ALL:
                send = True
            elif md == MODE_INTERVAL:
                bucket = t_w // period_ms[w]
                send = st[ST_SENT] == 0 or bucket != st[ST_BUCKET]
            elif md != MODE_OFF:
                if st[ST_SENT] == 0:
                    changed = True
                elif md == MODE_ON_CHANGE:
                    changed = r != st[ST_SENT_RAW]
                else:
                    last = fstate[w, FST_SENT_VALUE]
                    if np.isnan(v) or np.isnan(last):
                        changed = np.isnan(v) != np.isnan(last)
                    else:
                        changed = abs(v - last) > deadband[w]
                since = t_w - st[ST_SENT_T]
                if changed:
                    send = st[ST_SENT] == 0 or since >= min_ms[w]
                elif max_ms[w] > 0:
                    send = since >= max_ms[w]
            if send:
                st[ST_SENT] = 1
                st[ST_SENT_T] = t_w
                st[ST_SENT_RAW] = r
                if period_ms[w] > 0:
                    st[ST_BUCKET] = t_w // period_ms[w]
                fstate[w, FST_SENT_VALUE] = v
                out_sig[n_out] = w
                out_t[n_out] = t_w
                out_raw[n_out] = r
                n_out += 1
    return n_out, n_all, clamped, mapped, alarms
