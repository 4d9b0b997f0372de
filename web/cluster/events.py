"""The nodes' event channel: typed events over Redis pub/sub (at most once, in order)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from pydantic import ValidationError

from . import bus
from .models import CLUSTER_EVENT, ClusterEvent

logger = logging.getLogger(__name__)

# how long to wait before listening again after the channel was lost (Redis away)
RESUBSCRIBE_S = 1.0

Handler = Callable[[ClusterEvent], Awaitable[None]]


class EventChannel:
    """Publish events to every node; hear every node's events (this one's included)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def publish(self, event: ClusterEvent) -> None:
        with bus.guarded():
            await self.redis.publish(bus.EVENTS, event.model_dump_json())

    async def listen(self, handler: Handler) -> None:
        """Hand every event heard to `handler`, for ever; subscribe again after an outage."""
        while True:
            try:
                pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                async with pubsub:
                    await pubsub.subscribe(bus.EVENTS)
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        try:
                            event = CLUSTER_EVENT.validate_json(message["data"])
                        except ValidationError:
                            logger.warning("cluster event not understood; ignored")
                            continue
                        try:
                            await handler(event)
                        except Exception:
                            # a failed event is logged; the channel goes on
                            logger.exception("cluster event %s failed", event.kind)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: listen again when it is back
                logger.debug("event channel lost: %s", type(exc).__name__)
                await asyncio.sleep(RESUBSCRIBE_S)
