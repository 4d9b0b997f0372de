"""WebSocket signaling, protocol version 1 (see docs/signaling.md).

`messages` and `commands` are what a client may send, as typed models; `outbound` is what
the server sends; `session` runs one socket.
"""

from .messages import PROTOCOL_VERSION
from .session import MAX_MESSAGE_BYTES, SignalingSession, TokenBucket, websocket_handler

__all__ = [
    "MAX_MESSAGE_BYTES",
    "PROTOCOL_VERSION",
    "SignalingSession",
    "TokenBucket",
    "websocket_handler",
]
