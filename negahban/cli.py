"""The ``negahban`` command line (a composition root: it may import every package)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from monitor import __version__
from monitor.errors import NegahbanError
from monitor.settings import Settings, load_settings

__all__ = ["main"]

EXIT_INVALID = 2  # the input (settings, file, arguments) is wrong
EXIT_FAILED = 1  # the input is fine but something it needs is out of reach


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="negahban", description="Negahban: round-the-clock monitoring, incidents, "
                                "ticket desk and ledger. Settings come from NEGAHBAN_* environment variables.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    s = sub.add_parser("serve", help="run the service (probes, incidents, desk, web)",
                       description="Apply migrations, optionally apply an inventory, then run until SIGTERM.")
    s.add_argument("--inventory", type=Path, help="apply this inventory file at start")
    s.add_argument("--listen", help="HOST:PORT to listen on (default from NEGAHBAN_LISTEN_HOST/PORT)")
    db = sub.add_parser("db", help="database maintenance", description="Database maintenance.")
    dbs = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    dbs.add_parser("upgrade", help="apply all migrations", description="Apply all Alembic migrations.")
    inv = sub.add_parser("inventory", help="inventory as code", description="Inventory as code (YAML).")
    invs = inv.add_subparsers(dest="inv_command", required=True, metavar="ACTION")
    ap = invs.add_parser("apply", help="validate and apply a YAML file in one transaction",
                         description="Validate FILE completely, then apply it in one transaction. "
                         "Errors name file, line, path and reason; nothing is applied if anything is invalid.")
    ap.add_argument("file", type=Path)
    ap.add_argument("--prune", action="store_true", help="also delete what the file does not name")
    ap.add_argument("--check", action="store_true", help="validate only; write nothing")
    ap.add_argument("--allow-empty", action="store_true",
                    help="accept a file that names nothing (with --prune: remove the whole inventory)")
    ex = invs.add_parser("export", help="write the stored inventory as YAML",
                         description="Write the stored inventory as YAML that 'inventory apply' accepts.")
    ex.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")
    sub.add_parser("check-config", help="validate settings and exit",
                   description="Validate NEGAHBAN_* settings (and the inventory file if one is set).")
    sub.add_parser("version", help="print the version", description="Print the version.")
    u = sub.add_parser("user", help="accounts", description="Create users and API tokens.")
    us = u.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    ua = us.add_parser("add", help="create a user", description="Create a user. Say how it signs in: "
                       "--password-stdin (a password read from standard input) or --no-password (an account "
                       "that uses API tokens only and cannot log in to the web).")
    ua.add_argument("username")
    ua.add_argument("--role", required=True, choices=["admin", "noc", "technician", "finance", "customer"])
    ua.add_argument("--customer", help="the customer's name (required for role customer)")
    pw = ua.add_mutually_exclusive_group(required=True)
    pw.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    pw.add_argument("--no-password", action="store_true", help="token-only account: no web login")
    ut = us.add_parser("token", help="issue an API token for a user (printed once)",
                       description="Issue an API token for USERNAME; it is printed once and stored hashed.")
    ut.add_argument("username")
    ut.add_argument("--name", default="cli")
    hb = sub.add_parser("heartbeat", help="heartbeat (push) monitors", description="Heartbeat monitors.")
    hbs = hb.add_subparsers(dest="hb_command", required=True, metavar="ACTION")
    ht = hbs.add_parser("token", help="issue a new ping token for a heartbeat monitor (printed once)",
                        description="Issue a new ping token for MONITOR and print its ping URL; the old token "
                        "stops working. Only its SHA-256 is stored, so this is the one time it is shown.")
    ht.add_argument("monitor")
    ht.add_argument("--base-url", default="", help="the service's public address, e.g. https://noc.example.com")
    lo = sub.add_parser("location", help="probe locations", description="Probe locations (see negahban agent).")
    los = lo.add_subparsers(dest="loc_command", required=True, metavar="ACTION")
    lt = los.add_parser("token", help="issue a new token for a location's agents (printed once)",
                        description="Issue a new token for LOCATION (declared under locations: in the inventory); "
                        "the old one stops working. Only its SHA-256 is stored, so this is the one time it is shown.")
    lt.add_argument("location")
    ag = sub.add_parser("agent", help="run a probe agent for one location",
                        description="Probe what the central service assigns to this agent's location and push the "
                        "results. Needs no database: results wait in the --buffer file while the central service "
                        "is out of reach (at least --retention-hours) and are sent oldest first.")
    ag.add_argument("--central", required=True, help="the central service's address, e.g. https://noc.example.com")
    ag.add_argument("--token-file", required=True, type=Path, help="a file holding the location's token")
    ag.add_argument("--buffer", required=True, type=Path, help="the agent's SQLite buffer file (created if absent)")
    ag.add_argument("--id", default=None, help="this agent's id (default: host name and start time, kept in "
                    "the buffer)")
    ag.add_argument("--icmp", default="auto", choices=["auto", "privileged", "unprivileged", "off"])
    ag.add_argument("--retention-hours", type=float, default=24.0)
    ag.add_argument("--send-every", type=float, default=1.0, help="seconds between sends")
    ag.add_argument("--refresh-every", type=float, default=30.0, help="seconds between assignment fetches")
    ag.add_argument("--canary-every", type=float, default=10.0, help="seconds between canary checks")
    ag.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"],
                    help="the event loop (uvloop: less CPU per check, as NEGAHBAN_EVENT_LOOP for serve)")
    im = sub.add_parser("import", help="read another monitor's configuration into an inventory YAML",
                        description="Write an inventory YAML for review (standard output or -o FILE); nothing "
                        "is applied. What cannot be mapped is listed, with the reason, on standard error and as "
                        "comments at the top of the file.")
    ims = im.add_subparsers(dest="import_from", required=True, metavar="SOURCE")
    for name, help_, files in (
            ("uptime-kuma", "an Uptime Kuma JSON backup (Settings -> Backup -> Export)", ["backup"]),
            ("gatus", "a Gatus config.yaml (endpoints)", ["config"]),
            ("blackbox", "blackbox_exporter's blackbox.yml and the prometheus.yml jobs that use it",
             ["blackbox_yml", "prometheus_yml"])):
        one = ims.add_parser(name, help=help_, description=f"Import {help_}.")
        for f in files:
            one.add_argument(f, type=Path)
        one.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")
    return p


def _import(args) -> int:
    from negahban.importers import IMPORTERS, render

    files = [args.blackbox_yml, args.prometheus_yml] if args.import_from == "blackbox" else \
        [args.backup if args.import_from == "uptime-kuma" else args.config]
    imp = IMPORTERS[args.import_from](*files)
    text = render(imp)
    for line in imp.skipped:
        print(f"negahban: import: not imported: {line}", file=sys.stderr)
    for line in imp.notes:
        print(f"negahban: import: note: {line}", file=sys.stderr)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(f"negahban: import: {len(imp.monitors)} monitors written to {args.output} "
              f"({len(imp.skipped)} not imported)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


async def _with_db(settings: Settings, fn):
    from monitor.db import make_engine, make_sessionmaker, upgrade

    engine = make_engine(settings.database_url)
    try:
        await upgrade(engine)
        return await fn(make_sessionmaker(engine))
    finally:
        await engine.dispose()


async def _inventory_apply(settings: Settings, args) -> int:
    from monitor.clock import SystemClock
    from monitor.inventory import apply_inventory, load_inventory, require_entries

    inv, specs = load_inventory(args.file)
    if not args.allow_empty:
        require_entries(inv, str(args.file))
    if args.check:
        print(f"{args.file}: valid ({len(inv.monitors)} monitors)")
        return 0
    counts = await _with_db(settings, lambda sm: apply_inventory(sm, inv, specs, SystemClock().now(),
                                                                 prune=args.prune, file=str(args.file)))
    tokens = counts.pop("new_ping_tokens", {})
    print(f"{args.file}: applied " + " ".join(f"{k}={v}" for k, v in counts.items()))
    for name, token in tokens.items():
        print(f"heartbeat {name}: ping URL /hb/{token} (shown once; only its SHA-256 is stored)")
    return 0


async def _heartbeat_token(settings: Settings, args) -> int:
    from sqlalchemy import select

    from monitor.clock import SystemClock
    from monitor.errors import InvalidInput
    from monitor.heartbeat_service import issue_ping_token
    from monitor.models import Monitor
    from probes import PUSH_KINDS

    async def run(sm):
        async with sm.begin() as s:
            row = (await s.execute(select(Monitor).where(Monitor.name == args.monitor))).scalar_one_or_none()
            if row is None:
                raise InvalidInput("monitor", f"unknown monitor {args.monitor!r}")
            if row.kind not in PUSH_KINDS:
                raise InvalidInput("monitor", f"{args.monitor!r} is a {row.kind} monitor; only heartbeat "
                                   "monitors are pinged")
            return await issue_ping_token(s, row.id, SystemClock().now())

    token = await _with_db(settings, run)
    print(f"{args.base_url.rstrip('/')}/hb/{token}")
    return 0


async def _location_token(settings: Settings, args) -> int:
    from monitor.agents import issue_location_token
    from monitor.clock import SystemClock

    async def run(sm):
        async with sm.begin() as s:
            return await issue_location_token(s, args.location, SystemClock().now())

    print(await _with_db(settings, run))
    return 0


def _agent(args) -> int:
    from monitor.errors import InvalidInput
    from monitor.logs import setup_logging
    from negahban.agent import run_agent

    setup_logging("INFO")
    try:
        token = args.token_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InvalidInput("--token-file", f"{args.token_file}: {exc.strerror or exc}") from None
    if not token:
        raise InvalidInput("--token-file", f"{args.token_file} is empty")
    return run_agent(args, token)


async def _inventory_export(settings: Settings, args) -> int:
    from monitor.inventory import export_inventory

    text = await _with_db(settings, export_inventory)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _password(args) -> str | None:
    from monitor.errors import InvalidInput

    if args.no_password:
        return None
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise InvalidInput("--password-stdin", "no password on standard input (use --no-password for a "
                           "token-only account)")
    return password


async def _user(settings: Settings, args) -> int:
    from sqlalchemy import select

    from monitor.accounts import User, create_user, issue_token
    from monitor.clock import SystemClock
    from monitor.errors import InvalidInput
    from monitor.models import Customer

    async def run(sm):
        async with sm.begin() as s:
            if args.user_command == "add":
                cid = None
                if args.customer:
                    cid = (await s.execute(select(Customer.id).where(Customer.name == args.customer))).scalar()
                    if cid is None:
                        raise InvalidInput("--customer", f"unknown customer {args.customer!r}")
                user = await create_user(s, args.username, args.role, password=_password(args), customer_id=cid)
                kind = "token-only, no web login" if args.no_password else "password set"
                return f"user {user.username} created (id {user.id}, {kind})"
            user = (await s.execute(select(User).where(User.username == args.username))).scalar_one_or_none()
            if user is None:
                raise InvalidInput("username", f"unknown user {args.username!r}")
            return await issue_token(s, user.id, args.name, SystemClock().now())

    print(await _with_db(settings, run))
    return 0


def _run(args, settings: Settings) -> int:
    from monitor.logs import setup_logging

    setup_logging(settings.log_level, settings.log_format)
    if args.command == "serve":
        from negahban.service import run_loop, serve

        run_loop(serve(settings), settings.event_loop)
        return 0
    if args.command == "db":
        from monitor.db import make_engine, upgrade

        async def up():
            engine = make_engine(settings.database_url)
            await upgrade(engine)
            await engine.dispose()

        asyncio.run(up())
        print("database is at the newest revision")
        return 0
    if args.command == "inventory":
        fn = _inventory_apply if args.inv_command == "apply" else _inventory_export
        return asyncio.run(fn(settings, args))
    if args.command == "user":
        return asyncio.run(_user(settings, args))
    if args.command == "heartbeat":
        return asyncio.run(_heartbeat_token(settings, args))
    if args.command == "location":
        return asyncio.run(_location_token(settings, args))
    if args.command == "check-config":
        from negahban.service import configured_channels, configured_escalation

        configured_channels(settings)
        configured_escalation(settings)
        if settings.inventory_file:
            from monitor.inventory import load_inventory

            load_inventory(settings.inventory_file)
        print("configuration is valid")
        return 0
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(f"negahban {__version__}")
        return 0
    try:
        if args.command == "import":  # reads files only: no settings, no database
            return _import(args)
        if args.command == "agent":  # probes only: no settings, no database of the service
            return _agent(args)
        overrides = {}
        if getattr(args, "inventory", None):
            overrides["inventory_file"] = args.inventory
        if getattr(args, "listen", None):
            host, _, port = args.listen.rpartition(":")
            overrides.update(listen_host=host or "127.0.0.1", listen_port=port)
        settings = load_settings(**overrides)
        return _run(args, settings)
    except NegahbanError as exc:
        for line in str(exc).splitlines():
            print(f"negahban: error: {line}", file=sys.stderr)
        return EXIT_INVALID
    except (SQLAlchemyError, OSError) as exc:
        # The database or a file is out of reach: one line naming it, not a traceback.
        print(f"negahban: error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else exc!r}",
              file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
