"""Confide's own app for bench_fanout, optionally decoding and re-encoding every video track.

`--always-process` swaps in a room registry whose rooms use `RoomPolicy(always_process=True)`:
each published video is decoded, passed through unchanged and encoded once, then fanned out,
even for profile `none`. `--full-size` keeps every encode-once stream at the source's 640x480
whatever the room's size (one layer, as before sfu/bitrate.py picked layers by gallery size),
for comparison. Product code is untouched; this only composes it differently.

Run: python -m bench.confide_server --port 8091 --data-dir DIR [--always-process] [--full-size]
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace

from aiohttp import web

from sfu.bitrate import BitratePolicy, Layer
from sfu.grants import Grant
from sfu.registry import RoomRegistry
from sfu.room import Room, RoomPolicy
from web import keys
from web.app import create_app
from web.settings import load_settings


def _always_process(grant: Grant) -> RoomPolicy:
    return RoomPolicy(always_process=True)


# one layer for every room size: the source's 640x480 (the rate still shares the budget)
FULL_SIZE = BitratePolicy(layers=(Layer(10**6, 640, 480, 600_000, 300_000),))


def build_app(data_dir: str, port: int, *, always_process: bool,
              full_size: bool = False) -> web.Application:
    """Confide's app in dev mode on loopback, with the benchmark's room policy."""
    settings = load_settings(data_dir, host="127.0.0.1", port=port, dev=True, ice_loopback=True)
    app = create_app(settings)
    if always_process:
        stock = app[keys.ROOMS]
        app[keys.ROOMS] = RoomRegistry(
            ice_servers=stock.ice_servers,
            allow_adhoc=True,
            policy_for=_always_process,
            transform_factory=stock.transform_factory,
            media_workers=stock.media_workers,
        )
    if full_size:
        registry = app[keys.ROOMS]
        stock_setup = registry.room_setup

        async def setup(room: Room, grant: Grant) -> None:
            if stock_setup is not None:
                await stock_setup(room, grant)
            room.policy = replace(room.policy, bitrate=FULL_SIZE)

        registry.room_setup = setup
    return app


def main(argv: list[str] | None = None) -> int:
    """Serve Confide on 127.0.0.1 for the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--always-process", action="store_true")
    parser.add_argument("--full-size", action="store_true",
                        help="every encode-once stream 640x480, whatever the room's size")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    app = build_app(args.data_dir, args.port, always_process=args.always_process,
                    full_size=args.full_size)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
