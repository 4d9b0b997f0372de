"""The typed wire boundary shared by the HTTP API and signaling.

Bytes from a client become a bounded JSON value (`json`), then a typed model
(`validation`) before any logic sees them; what goes wrong on the way is a typed error
naming the field, never a stack trace or a closed socket.
"""
