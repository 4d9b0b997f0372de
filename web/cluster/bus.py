"""The Redis connection the nodes share, its key names, and its failures as one error.

Redis holds only what is rebuilt by itself when lost: node heartbeats (they expire), room
placements with their fencing tokens (the store refuses a token it has already seen), and
the event channel. Records and live session state stay in PostgreSQL.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .errors import ClusterUnavailable

PREFIX = "confide:"
ROOMS = PREFIX + "rooms"
EVENTS = PREFIX + "events"
# a call that takes longer than this counts as Redis being away
REDIS_TIMEOUT_S = 1.5


def node_key(node_id: str) -> str:
    return f"{PREFIX}node:{node_id}"


def node_pattern() -> str:
    return f"{PREFIX}node:*"


def room_key(room_id: str) -> str:
    return f"{PREFIX}room:{room_id}"


def token_key(room_id: str) -> str:
    return f"{PREFIX}token:{room_id}"


def connect(url: str) -> aioredis.Redis:
    """A client (connections are made on first use, and again after an outage)."""
    return aioredis.Redis.from_url(
        url, decode_responses=True, socket_timeout=REDIS_TIMEOUT_S,
        socket_connect_timeout=REDIS_TIMEOUT_S, health_check_interval=5,
    )


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    """Redis being away becomes `ClusterUnavailable` ("try again in a moment")."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise ClusterUnavailable(
            "the service cannot place rooms just now: try again in a moment"
        ) from exc
