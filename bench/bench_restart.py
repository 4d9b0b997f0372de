"""Time from a restart of `confide serve` to everyone back in the session with media, and
what the restart lost, over several restarts (SIGKILL by default).

A host and N members are in a scheduled session: all admitted but one, who waits in the
lobby. The first `--media` members send real video and audio (aiortc); the host receives
it; the others are signaling only. Before each restart the host sends a burst of commands
(lock / unlock) and the process is killed `--settle` seconds after the last answer (0: at
once). Then the server starts again on the same port and data, and every client reconnects
as the page does (backoff with jitter), with its grant and reconnect token. "Back" means
joined and in the same place (admitted, or in the lobby). Printed as p50 / max:

- `ready`: new process started → it answers /healthz (the baseline in the same run: the
  start-up the service cannot avoid);
- `back`: new process started → the last client back; `back/ready`;
- `media`: new process started → the host receives video from every media member again;
- `kill→back`, `kill→media`: from the kill (what the members live through);
- records: commands the host had answered before each kill (each is audited, allowed or
  not), their audit lines in the store afterwards, and the difference (lost); room states lost (a command answered `no_change`
  because the room came back as it was before an answered command).

Run: .venv/bin/python bench/bench_restart.py [--restarts 5] [--members 4] [--media 2]
     [--signal kill|term] [--burst 20] [--settle 0] [--database-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select  # noqa: E402

from bench.signal_client import SignalClient  # noqa: E402
from session_rules.checklists import GROUP_AGREEMENT  # noqa: E402
from sfu.ice import set_loopback_only  # noqa: E402
from tests.support.live import (  # noqa: E402
    ConfideProcess,
    Member,
    agree,
    host_link,
    member_of,
    redeem,
    session_in,
)
from web.bot import ColorTrack, ToneTrack  # noqa: E402
from web.store.models import AuditEvent  # noqa: E402

NAMES = ["Robin", "Wren", "Kit", "Sam", "Ash", "Jo", "Lee", "Max", "Pat", "Sol", "Tam"]
COLORS = ["green", "blue", "red", "yellow"]
MEDIA_FRAMES = 5


class Run:
    def __init__(self, server: ConfideProcess, args: argparse.Namespace) -> None:
        self.server = server
        self.args = args
        self.host: Member | None = None
        self.media: list[Member] = []
        self.clients: list[tuple[SignalClient, str]] = []
        self.expected: dict[str, str] = {}
        self.locked = False
        self.answered = 0
        self.states_lost = 0
        self.store: Any = None
        self.session: Any = None

    async def setup(self) -> None:
        args = self.args
        people = [(f"Real Person {chr(65 + i)}", NAMES[i]) for i in range(args.members)]
        s, store = session_in(self.server, members=people)
        self.session, self.store = s, store
        host = Member("host", host_link(s, self.server), s.clinician.participant_id)
        await host.connect()
        self.host = host
        for i, (_, name) in enumerate(people):
            admit = i < args.members - 1
            if i < args.media:
                m = await member_of(s, name, publish=True, decode_video=False,
                                    video=ColorTrack(COLORS[i % len(COLORS)]),
                                    audio=ToneTrack())
                await agree(m)
                pid = m.participant_id
                self.media.append(m)
            else:
                body = await redeem(s, name)
                client = SignalClient(f"{s.base_url}/room#grant={body['grant']}")
                assert (await client.join())["type"] == "joined"
                _, reply = await client.command(
                    "confirm_checklist", answers=[item.id for item in GROUP_AGREEMENT])
                assert reply["type"] == "ok", reply
                pid = body["participant_id"]
                self.clients.append((client, "admitted" if admit else "lobby"))
            if admit:
                reply = await host.command("admit", f"admit-{pid}", target=pid)
                assert reply["type"] == "ok", reply
        await self._media_flowing(time.monotonic() + 30)

    async def _media_flowing(self, deadline: float) -> float:
        """The time the host has received video from every media member (on its socket now)."""
        assert self.host is not None
        while True:
            bot = self.host.bot
            if bot is not None and all(
                (peer := bot.peers.get(m.participant_id)) is not None
                and peer.video_frames >= MEDIA_FRAMES for m in self.media
            ):
                return time.monotonic()
            if time.monotonic() > deadline:
                raise TimeoutError("media did not come back")
            await asyncio.sleep(0.01)

    async def burst(self) -> None:
        assert self.host is not None
        for i in range(self.args.burst):
            name = "unlock" if self.locked else "lock"
            reply = await self.host.command(name, f"burst-{self.server.starts}-{i}")
            self.answered += 1  # every command is audited, allowed or not
            if reply["type"] == "ok":
                self.locked = not self.locked
            elif reply.get("code") == "no_change":
                # the room came back without an answered command: a lost state
                self.states_lost += 1
                self.locked = not self.locked
            else:
                raise AssertionError(reply)

    async def restart(self, sig: int) -> dict[str, float]:
        assert self.host is not None
        await self.burst()
        if self.args.settle > 0:
            await asyncio.sleep(self.args.settle)
        killed = time.monotonic()
        self.server.kill(sig)
        spawned = time.monotonic()
        self.server.spawn()
        ready_task = asyncio.ensure_future(self.server.ready())
        deadline = time.monotonic() + 120
        for client, _ in self.clients:
            await asyncio.wait_for(client.closed.wait(), 10)
        for i, m in enumerate(self.media):
            # as a page does: fresh camera and microphone tracks (the old ones ended with
            # their connection)
            m.bot_kwargs.update(video=ColorTrack(COLORS[i % len(COLORS)]), audio=ToneTrack())
        backs = await asyncio.gather(
            *(c.come_back(deadline) for c, _ in self.clients),
            *(m.come_back(120) for m in (self.host, *self.media)),
        )
        media = await self._media_flowing(deadline)
        ready = await ready_task
        for client, expected in self.clients:
            assert client.joined is not None
            state = client.joined["participant"]["state"]
            assert state == expected, f"back in {state!r}, expected {expected!r}"
        for m in (self.host, *self.media):
            joined = m.last("joined")
            assert joined is not None and joined["participant"]["state"] == "admitted"
        return {"ready_s": ready - spawned, "back_s": max(backs) - spawned,
                "media_s": media - spawned, "kill_to_back_s": max(backs) - killed,
                "kill_to_media_s": media - killed}

    def audited(self) -> int:
        assert self.host is not None
        actor = self.host.participant_id

        def count(tx: Any) -> int:
            return int(tx.db.scalar(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.actor == actor,
                AuditEvent.action.in_(("command:lock", "command:unlock")))))

        return int(self.store.call(count))

    async def close(self) -> None:
        for client, _ in self.clients:
            await client.close()
        for m in (self.host, *self.media):
            if m is not None:
                await m.close()
        if self.store is not None:
            self.store.dispose()


def _summary(rows: list[dict[str, float]], key: str) -> str:
    values = [r[key] for r in rows]
    return f"p50 {statistics.median(values):6.2f} s  max {max(values):6.2f} s"


async def main_async(args: argparse.Namespace) -> int:
    # the server runs on loopback: the media clients offer loopback candidates only
    set_loopback_only(True)
    sig = signal.SIGKILL if args.signal == "kill" else signal.SIGTERM
    with tempfile.TemporaryDirectory(prefix="confide-bench-restart-") as tmp:
        server = ConfideProcess(Path(tmp) / "data", database_url=args.database_url or "")
        await server.start()
        run = Run(server, args)
        try:
            await run.setup()
            rows = []
            for i in range(args.restarts):
                row = await run.restart(sig)
                rows.append(row)
                print(f"restart {i + 1}: ready {row['ready_s']:5.2f} s  back "
                      f"{row['back_s']:5.2f} s  media {row['media_s']:5.2f} s  "
                      f"kill->media {row['kill_to_media_s']:5.2f} s", flush=True)
            # the last burst's records are written before they are counted
            await run.burst()
            await asyncio.sleep(2.0)
            audited = run.audited()
            print(f"\n{args.restarts} restarts ({args.signal}, {args.settle:g} s after the "
                  f"last answer), host + {args.members} members ({args.media} with media; "
                  f"{'PostgreSQL' if args.database_url else 'SQLite'}):")
            print(f"  new process -> /healthz ready:  {_summary(rows, 'ready_s')}")
            print(f"  new process -> everyone back:   {_summary(rows, 'back_s')}")
            ratios = [r["back_s"] / r["ready_s"] for r in rows]
            print(f"  back / ready:                   p50 {statistics.median(ratios):6.2f}"
                  f"    max {max(ratios):6.2f}")
            print(f"  new process -> media at host:   {_summary(rows, 'media_s')}")
            print(f"  kill -> everyone back:          {_summary(rows, 'kill_to_back_s')}")
            print(f"  kill -> media at host:          {_summary(rows, 'kill_to_media_s')}")
            lost = run.answered - audited
            print(f"  records: {run.answered} commands answered, {audited} audited, "
                  f"lost {lost}; room states lost {run.states_lost}")
            out = Path(__file__).parent / "results"
            out.mkdir(exist_ok=True)
            (out / f"restart_{args.signal}.json").write_text(json.dumps(
                {"signal": args.signal, "members": args.members, "media": args.media,
                 "settle_s": args.settle, "rows": rows, "answered": run.answered,
                 "audited": audited, "states_lost": run.states_lost}, indent=2))
        except BaseException:
            print("server log:\n" + "\n".join(
                line for line in server.log().splitlines()
                if "aioice" not in line and "inference_feedback" not in line)[-6000:],
                file=sys.stderr)
            raise
        finally:
            await run.close()
            server.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--media", type=int, default=0)
    parser.add_argument("--signal", choices=("kill", "term"), default="kill")
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--settle", type=float, default=0.0)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    if not 0 <= args.media < args.members:
        parser.error("--media must leave the last member (in the lobby) without media")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
