"""``python -m pymigjob daemon --listen HOST:PORT --state-dir DIR``.

Recovers first (libvirt serves no API before its domains are reconnected),
then serves.  Prints one JSON line on stdout once it listens -- its URL
(the real port when PORT is 0) and what recovery did -- for whoever started
it.  SIGTERM or Ctrl-C stop it; its QEMUs keep running, as libvirt's do
across a daemon restart.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import signal
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Optional, Sequence

__all__ = ["main", "parse_listen"]

log = logging.getLogger("pymigjob.daemon")


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, not {text!r}")
    return host.strip("[]"), int(port)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pymigjob daemon",
                                description="The reference daemon: domains on real QEMU, "
                                "JSON over HTTP, peer-to-peer migration.")
    p.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 8100),
                   help="HOST:PORT to serve on (default 127.0.0.1:8100; port 0 picks one)")
    p.add_argument("--state-dir", type=Path, required=True,
                   help="job records, domain definitions, QEMU sockets and logs")
    p.add_argument("--token-file", type=Path,
                   help="the shared secret of daemon-to-daemon calls (without it, this "
                   "daemon neither accepts nor sends migrations)")
    p.add_argument("--migration-address", help="where incoming QEMU migration streams "
                   "listen (default: the --listen host)")
    p.add_argument("--job-wait-timeout", type=float, default=30.0,
                   help="seconds a job waits before failing (default 30)")
    p.add_argument("--park-timeout", type=float, default=None,
                   help="destroy an incoming migration parked this long (default: never; "
                   "the migration session's end does it)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow --listen on a non-loopback address")
    p.add_argument("--allow-peer", action="append", default=[], metavar="HOST",
                   help="a non-loopback host migrations may go to (repeatable)")
    p.add_argument("--naive", action="store_true",
                   help="migrate under one sync job held throughout (the baseline the job "
                   "model is measured against)")
    p.add_argument("--no-records", action="store_true",
                   help="keep no job records, so nothing is recovered after a crash (only "
                   "for measuring what the durable records cost)")
    p.add_argument("--log-level", default="WARNING")
    return p


async def serve(args: argparse.Namespace, stop: Optional[asyncio.Event] = None) -> None:
    from aiohttp import web

    from pymigjob.qemu import Host

    from .app import make_app
    from .metrics import Metrics

    listen_host, port = args.listen
    token = args.token_file.read_text().strip() if args.token_file else None
    if args.token_file and not token:
        raise SystemExit(f"{args.token_file} is empty")
    metrics = Metrics()
    host = Host(args.state_dir, job_wait_timeout=args.job_wait_timeout,
                park_timeout=args.park_timeout,
                migration_address=args.migration_address or listen_host, observer=metrics,
                durable=not args.no_records)
    recovered = await host.open()
    app = make_app(host, metrics, token=token, naive=args.naive, peers=args.allow_peer)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, listen_host, port)
    await site.start()
    bound = runner.addresses[0]
    url = f"http://{listen_host}:{bound[1]}"
    print(json.dumps({"listening": url, "recovered": [asdict(r) for r in recovered]}),
          flush=True)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await host.close()


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if not _is_loopback(args.listen[0]) and not args.allow_remote:
        print(f"python -m pymigjob daemon: {args.listen[0]} is not a loopback address; "
              "pass --allow-remote to serve on it", file=sys.stderr)
        return 2
    try:
        from pymigjob.qemu import find_qemu
        import aiohttp  # noqa: F401
        import prometheus_client  # noqa: F401
    except ImportError as e:
        print(f"python -m pymigjob daemon needs the qemu extra ({e.name} is missing): "
              "pip install 'pymigjob[qemu]'", file=sys.stderr)
        return 2
    if find_qemu() is None:
        print("python -m pymigjob daemon: qemu-system-x86_64 not found "
              "(apt-get install qemu-system-x86)", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(args))
    return 0
