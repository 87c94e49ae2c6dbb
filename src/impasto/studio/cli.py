"""``impasto serve``: the studio's web page and job API on this machine.

Bound to 127.0.0.1 by default. Any other address (or ``--trust-proxy``) needs a token (``--token`` or
``IMPASTO_TOKEN``), which every request must then carry: scripts in a header, the page as the session
cookie that signing in at ``/login`` sets. The token never travels in a URL.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from impasto.errors import ImpastoError
from impasto.jobs.argtypes import nonneg_float, nonneg_int

EXIT_USAGE = 2
TOKEN_ENV = "IMPASTO_TOKEN"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _positive_int(s: str) -> int:
    v = nonneg_int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {s})")
    return v


def _positive_float(s: str) -> float:
    v = nonneg_float(s)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 (got {s})")
    return v


def default_job_memory_mib(workers: int) -> float:
    """Half of this machine's memory, shared by the jobs that run at once (8 GiB when it cannot be read)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    except (OSError, ValueError, AttributeError):
        total = 16384.0
    return max(1024.0, total / 2 / workers)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="impasto serve", description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=nonneg_int, default=8000, help="port (default: 8000)")
    p.add_argument("--data", default="impasto-studio", help="folder for the job database, uploads, results "
                   "and checkpoints (default: ./impasto-studio)")
    p.add_argument("--token", default=None, help=f"require this token on every request (default: ${TOKEN_ENV}); "
                   "needed for any --host other than localhost")
    p.add_argument("--workers", type=_positive_int, default=1, help="jobs run at once, each in its own process "
                   "(default: 1; on a CPU two jobs only share the cores)")
    p.add_argument("--threads", type=nonneg_int, default=0, help="CPU threads per job (default: 0 = cores / workers)")
    p.add_argument("--weights", default=None, help="VGG weights file used for every job (default: the bundled "
                   "VGG19; any file impasto --weights accepts)")
    p.add_argument("--checkpoint-every", type=nonneg_int, default=20, help="steps between checkpoints: a killed "
                   "server loses at most this many steps of a running job (0: no checkpoints; default: 20)")
    p.add_argument("--preview-seconds", type=nonneg_float, default=2.0, help="seconds between preview images "
                   "(default: 2; the first comes after the first step)")
    p.add_argument("--max-queued", type=_positive_int, default=16, help="queued jobs accepted before new ones get "
                   "429 (default: 16)")
    p.add_argument("--max-upload-mb", type=nonneg_float, default=25.0, help="largest image upload in MiB (default: 25)")
    p.add_argument("--max-size", type=_positive_int, default=2048, help="largest output long side a job may ask "
                   "for (default: 2048; sizes over --max-job-memory whole run in tiles within it, so print sizes such "
                   "as 6000 may be allowed, at hours per job on a CPU: POST /api/cost and the page say what a "
                   "size will cost)")
    p.add_argument("--max-job-memory", type=_positive_float, default=None, metavar="MIB",
                   help="memory budget of one job: each runs with max_memory at most this many MiB (a scale over "
                   "it runs in tiles), and a job that needs more even in the smallest tiles is refused before it "
                   "is queued (default: half this machine's memory divided by --workers)")
    p.add_argument("--trust-proxy", action="store_true",
                   help="behind a reverse proxy on this machine that terminates TLS (Caddy, nginx): trust its "
                   "X-Forwarded-Proto and X-Forwarded-Host (the sign-in cookie is then Secure); needs --token")
    p.add_argument("--no-prestart", action="store_true", help="do not keep a job process started in advance "
                   "(saves its memory; each job then waits for torch to import)")
    return p


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    try:
        import uvicorn
    except ImportError:
        raise ImpastoError("impasto serve needs the web extra: pip install 'impasto[web]'") from None
    from impasto.studio.app import LOOPBACK_HOSTS, Limits, StudioSettings, create_app
    from impasto.studio.manager import PoolSettings

    token = args.token or os.environ.get(TOKEN_ENV) or None
    if args.trust_proxy and not token:
        raise ImpastoError(f"--trust-proxy puts the studio behind a proxy that other machines reach: give --token "
                           f"(or set {TOKEN_ENV}) so only people with it can use it")
    if args.host not in LOOPBACK_HOSTS and not token:
        raise ImpastoError(f"--host {args.host} makes the studio reachable from other machines: give --token "
                           f"(or set {TOKEN_ENV}) so only people with it can use it")
    if token is not None and len(token) < 16:
        raise ImpastoError("the token must be at least 16 characters (e.g. python -c 'import secrets; "
                           "print(secrets.token_urlsafe())')")
    if args.weights is not None:
        from impasto.vgg import load_weights

        load_weights(args.weights)  # a bad file is an error now, not in every job
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.workers)
    settings = StudioSettings(
        data=Path(args.data), host=args.host, token=token,
        pool=PoolSettings(workers=args.workers, threads=threads,
                          weights=str(Path(args.weights).resolve()) if args.weights else None,
                          preview_seconds=args.preview_seconds, checkpoint_every=args.checkpoint_every,
                          max_queued=args.max_queued, prestart=not args.no_prestart),
        limits=Limits(max_upload_bytes=int(args.max_upload_mb * 2**20), max_size=args.max_size,
                      max_job_mib=args.max_job_memory or default_job_memory_mib(args.workers)),
        trust_proxy=args.trust_proxy,
    )
    app = create_app(settings)
    # The data folder and the port are taken before anything is printed, so a second server fails
    # with one line instead of a log of tracebacks.
    app.state.manager.lock()
    sock = _bind(args.host, args.port)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else shown}:{args.port}/"
    # The token is never printed nor put in a URL: the page asks for it once (/login).
    print(f"impasto studio: {url}{'login (sign in with the token)' if token else ''}  (data: "
          f"{settings.data.resolve()}; Ctrl-C stops, running jobs resume on the next start)", flush=True)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=3)
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    return 0 if server.started else EXIT_USAGE


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ImpastoError(f"cannot listen on {host}:{port}: {e.strerror or e} (another server? try --port)") from None
    sock.set_inheritable(True)
    return sock


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
