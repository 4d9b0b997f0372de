"""Fixtures for several nodes as one service: a real PostgreSQL and a real Redis."""

from tests.support.servers import postgres_server, redis_server  # noqa: F401 (fixtures)
