"""The `confide` command."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from pathlib import Path

from confidentiality.profiles import Profile

from .settings import Settings, SettingsError, load_settings


def _serve(args: argparse.Namespace) -> int:
    import ssl

    from aiohttp import web

    from .app import create_app
    from .ops.logs import AccessLogger, configure_logging

    # whatever the service writes (database, its journal, kept records) is its own alone
    os.umask(0o077)
    try:
        settings = load_settings(
            args.data_dir, host=args.host, port=args.port, dev=args.dev or args.demo,
            ice_loopback=args.ice_loopback if args.ice_loopback is not None else None,
            tls_cert=Path(args.tls_cert) if args.tls_cert else None,
            tls_key=Path(args.tls_key) if args.tls_key else None,
        )
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.ice_loopback is None:
        # a server bound to loopback can only be reached on loopback
        settings.ice_loopback = args.host in ("127.0.0.1", "localhost", "::1")
    configure_logging(settings.log_format)
    context = None
    if settings.tls_cert is not None and settings.tls_key is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(settings.tls_cert, settings.tls_key)
        except (OSError, ssl.SSLError) as exc:
            print(f"error: cannot use the TLS certificate and key: {exc}", file=sys.stderr)
            return 2
    if args.demo:
        _print_demo(settings)
    app = create_app(settings)
    print(f"Confide listening on {settings.base_url}", flush=True)
    web.run_app(
        app, host=args.host, port=args.port, print=None, ssl_context=context,
        access_log_class=AccessLogger, access_log=logging.getLogger("confide.access"),
    )
    return 0


def _print_demo(settings: Settings) -> None:
    from .control.admin_cli import seed_demo

    info = seed_demo(settings)
    if info is None:
        print("Data dir already has accounts: the demo logins were printed on its first start.",
              flush=True)
        return
    lines = [
        "",
        "Confide demo — shown once, keep it if you need it:",
        f"  clinician login: {info.login_url}",
        f"    username {info.clinician_username}  password {info.clinician_password}",
        f"  clinical safety officer: username {info.cso_username}  password {info.cso_password}",
        "  service users' invite links (one each, single use):",
        *[f"    {name}: {link}" for name, link in info.invite_links.items()],
        "",
    ]
    print("\n".join(lines), flush=True)


def _join_link(args: argparse.Namespace) -> int:
    from sfu.grants import Permissions, mint_grant

    settings = load_settings(args.data_dir)
    grant = mint_grant(
        settings.grant_secret,
        room=args.room,
        display_name=args.name,
        role=args.role,
        profile=args.profile,
        permissions=Permissions(),
        ttl_s=args.ttl,
    )
    base = (args.base_url or settings.base_url).rstrip("/")
    print(f"{base}/room#grant={grant}")
    return 0


def _bot(args: argparse.Namespace) -> int:
    from .bot import run_bot

    return asyncio.run(
        run_bot(
            args.link,
            video=args.video,
            pattern=args.pattern,
            seconds=args.seconds,
            json_output=args.json,
            ice_loopback=args.ice_loopback,
        )
    )


def _nodes(args: argparse.Namespace) -> int:
    from .cluster import nodes_cmd

    url = os.environ.get("CONFIDE_REDIS_URL", "").strip()
    if not url:
        print("error: CONFIDE_REDIS_URL is not set (this service runs as one node)",
              file=sys.stderr)
        return 2
    if getattr(args, "nodes_command", None) == "drain":
        return asyncio.run(nodes_cmd.drain(url, args.node_id))
    return asyncio.run(nodes_cmd.list_nodes(url, as_json=args.json))


def _hazards(args: argparse.Namespace) -> int:
    from . import hazards_cmd

    record = Path(args.record) if getattr(args, "record", None) else None
    if args.hazards_command == "record":
        return hazards_cmd.record(
            [Path(j) for j in args.junit], out=Path(args.out) if args.out else None,
            repo_root=Path(args.repo_root).resolve(), commit=args.commit,
        )
    path = Path(args.path) if getattr(args, "path", None) else None
    if args.hazards_command == "check":
        return hazards_cmd.check(path, record=record)
    return hazards_cmd.evidence(path, record=record)


def _create_user(args: argparse.Namespace) -> int:
    from .control.admin_cli import create_user

    settings = load_settings(args.data_dir)
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\n")
    from web.store.errors import StoreError

    try:
        create_user(settings, args.role, args.username, password)
    except StoreError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(f"created {args.role} {args.username}")
    return 0


def _read_password() -> str | None:
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("passwords differ", file=sys.stderr)
            return None
        return password
    return sys.stdin.readline().rstrip("\n")


def _admin(args: argparse.Namespace) -> int:
    from web.store.errors import StoreError

    from .control import admin_cli

    settings = load_settings(args.data_dir)
    try:
        if args.admin_command == "rotate-data-key":
            print(admin_cli.rotate_data_key(settings, batch_size=args.batch_size))
        elif args.admin_command == "backup":
            print(admin_cli.backup(settings, Path(args.out)))
        elif args.admin_command == "restore":
            print(admin_cli.restore(settings, Path(args.path)))
        elif args.admin_command in ("disable-user", "enable-user"):
            admin_cli.set_disabled(settings, args.username, args.admin_command == "disable-user")
            print(f"{args.admin_command.split('-')[0]}d {args.username}")
        elif args.admin_command == "reset-password":
            password = _read_password()
            if password is None:
                return 2
            admin_cli.reset_password(settings, args.username, password)
            print(f"password reset for {args.username}; their sessions have ended")
    except StoreError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="confide", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--data-dir", default=None)
    serve.add_argument("--dev", action="store_true", help="allow ad-hoc rooms and CLI join links")
    serve.add_argument("--demo", action="store_true",
                       help="on an empty data dir, create demo accounts, a group and a session")
    serve.add_argument("--ice-loopback", dest="ice_loopback", action="store_true", default=None,
                       help="offer 127.0.0.1 ICE candidates only (default when bound to loopback)")
    serve.add_argument("--no-ice-loopback", dest="ice_loopback", action="store_false")
    serve.add_argument("--tls-cert", default=None,
                       help="serve HTTPS with this PEM certificate (chain) (CONFIDE_TLS_CERT)")
    serve.add_argument("--tls-key", default=None,
                       help="the certificate's PEM private key (CONFIDE_TLS_KEY)")
    serve.set_defaults(func=_serve)

    link = sub.add_parser("join-link", help="print a join link for a dev server")
    link.add_argument("--room", required=True)
    link.add_argument("--name", required=True, help="display name (a pseudonym)")
    link.add_argument("--role", choices=("host", "participant"), default="participant")
    link.add_argument("--profile", choices=[p.value for p in Profile], default="none")
    link.add_argument("--base-url", default=None)
    link.add_argument("--data-dir", default=None)
    link.add_argument("--ttl", type=float, default=3600.0, help="seconds the link is valid")
    link.set_defaults(func=_join_link)

    bot = sub.add_parser("bot", help="a headless participant that reports what it receives")
    bot.add_argument("--link", required=True)
    src = bot.add_mutually_exclusive_group()
    src.add_argument("--video", default=None, help="a .y4m file to publish")
    src.add_argument("--pattern", choices=("colors",), default=None)
    bot.add_argument("--seconds", type=float, default=10.0)
    bot.add_argument("--json", action="store_true", help="print the report as JSON")
    bot.add_argument("--no-ice-loopback", dest="ice_loopback", action="store_false", default=True)
    bot.set_defaults(func=_bot)

    nodes = sub.add_parser("nodes", help="the media nodes sharing this service's Redis")
    nodes.add_argument("--json", action="store_true")
    nodes.set_defaults(func=_nodes)
    nsub = nodes.add_subparsers(dest="nodes_command")
    drain = nsub.add_parser("drain", help="move a node's rooms to the others, then stop it")
    drain.add_argument("node_id")

    hazards = sub.add_parser("hazards", help="the clinical safety hazard log")
    hsub = hazards.add_subparsers(dest="hazards_command", required=True)
    check = hsub.add_parser(
        "check", help="validate hazard_log.md (ratings, acceptances, cited tests exist)"
    )
    check.add_argument("path", nargs="?")
    check.add_argument("--record", default=None, help="the evidence record to check against")
    ev = hsub.add_parser("evidence", help="each cited test's outcome in the evidence record")
    ev.add_argument("path", nargs="?")
    ev.add_argument("--record", default=None, help="the evidence record (default: shipped)")
    rec = hsub.add_parser("record", help="make the evidence record from a JUnit XML report (CI)")
    rec.add_argument("junit", nargs="+", help="one report per part of the suite's run")
    rec.add_argument("--out", default=None, help="default: the package's shipped record")
    rec.add_argument("--repo-root", default=".", help="the checkout the tests ran in")
    rec.add_argument("--commit", default=None, help="default: the checkout's git commit")
    hazards.set_defaults(func=_hazards)

    admin = sub.add_parser("admin", help="administration")
    asub = admin.add_subparsers(dest="admin_command", required=True)
    cu = asub.add_parser("create-user", help="create an account (password from prompt or stdin)")
    cu.add_argument("--role", choices=("admin", "clinician", "cso"), required=True)
    cu.add_argument("--username", required=True)
    cu.add_argument("--data-dir", default=None)
    cu.set_defaults(func=_create_user)
    rot = asub.add_parser(
        "rotate-data-key",
        help="re-encrypt every encrypted value (names, contacts, measures, locations, feedback) "
             "under a new data key (resumable)",
    )
    rot.add_argument("--batch-size", type=int, default=100)
    bak = asub.add_parser("backup", help="write a consistent backup of the database")
    bak.add_argument("--out", required=True, help="the backup file (gzip'd JSON lines)")
    res = asub.add_parser("restore", help="load a backup into the configured empty database")
    res.add_argument("path")
    for name, what in (("disable-user", "disable an account (a leaver)"),
                       ("enable-user", "enable a disabled account"),
                       ("reset-password", "set a new password (from prompt or stdin)")):
        cmd = asub.add_parser(name, help=what)
        cmd.add_argument("--username", required=True)
    for cmd in (rot, bak, res, *(asub.choices[n] for n in
                                 ("disable-user", "enable-user", "reset-password"))):
        cmd.add_argument("--data-dir", default=None)
        cmd.set_defaults(func=_admin)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
