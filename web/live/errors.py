"""Errors of the live rooms' store link, each with a stable code for the wire."""

from __future__ import annotations

from sfu.errors import SfuError


class ServiceUnavailable(SfuError):
    """The join needs the database and it cannot be reached: try again in a moment."""

    code = "service_unavailable"
