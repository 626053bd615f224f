"""The batch decoder: a DBC compiled once into flat tables, frames decoded in batches.

>>> decoder = BatchDecoder(cantools.database.load_file("vehicle.dbc"))
>>> result = decoder.decode(frames)          # frames: edge_agent.frames.FrameBatch
>>> result.signal("ESP_VehicleSpeed.VehicleSpeed").values

Decoding matches cantools' ``Message.decode(data, decode_choices=False,
allow_truncated=True)`` value for value (bit-identical floats); value tables are not applied
to values but are available as :attr:`SignalInfo.choices`.  J1939 messages (``ProtocolType``
J1939) also match frames of the same parameter group number whatever their priority and
source address.  A frame whose multiplexer selects no known branch still yields its other
signals (cantools raises ``DecodeError`` for the whole frame).
"""

from ._tables import MessageInfo, SignalInfo
from .decoder import BatchDecoder, DecodedBatch, DecodeStats, LongForm, SignalColumn
from .errors import DecoderError, UnsupportedSignalError

__all__ = [
    "BatchDecoder",
    "DecodeStats",
    "DecodedBatch",
    "DecoderError",
    "LongForm",
    "MessageInfo",
    "SignalColumn",
    "SignalInfo",
    "UnsupportedSignalError",
]
