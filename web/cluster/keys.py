"""Typed application keys of the nodes' shared directory."""

from __future__ import annotations

from aiohttp import web

from .node import ClusterNode

CLUSTER = web.AppKey("cluster_node", ClusterNode)
