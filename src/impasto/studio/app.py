"""The studio's HTTP API (FastAPI) and the page it serves.

The page uses only this API, so anything the page does a script can do (see :mod:`impasto.studio.client`).
Errors are JSON ``{"detail": "one clear line"}`` with the status that says why: 400 bad input, 401 no
token, 403 cross-origin or wrong host, 404 no such job, 409 wrong state, 411/413 body size, 415 not an
image, 429 queue full, 503 shutting down.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from impasto import Config, ImpastoError, __version__
from impasto.studio.db import FINISHED, Job, Upload
from impasto.studio.manager import JobManager, PoolSettings
from impasto.studio.storage import DataDir, UploadError, new_job_id, sniff_image, valid_job_id
from impasto.tiling.cost import OBSERVED_RATE, RateMeter, RunCost, config_cost, evaluations_per_step, rate_key
from impasto.tiling.memory import MemoryFloorError
from impasto.units import format_bytes, parse_memory
from impasto.vgg import VGGWeights

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
PATH_FIELDS = ("weights", "init_file", "mask")
"""Config fields that name files on the server: a request may not set them (no user string is a path)."""
TOKEN_COOKIE = "impasto_token"
SSE_POLL_SECONDS = 0.25
log = logging.getLogger("impasto.studio")


@dataclass(frozen=True)
class Limits:
    """What one request may ask for. The pixel limit is far below the engine's decompression-bomb guard."""

    max_upload_bytes: int = 25 * 2**20
    max_pixels: int = 50_000_000
    max_styles: int = 8
    max_size: int = 2048
    max_steps: int = 5000
    max_config_bytes: int = 64 * 1024
    max_lbfgs_max_iter: int = 20
    """Inner L-BFGS iterations per step (the presets that follow torch's default use 20)."""
    max_iterations: int = 20_000
    """Steps × inner iterations of a whole job: what its CPU time grows with."""
    max_lbfgs_history: int = 200
    max_lbfgs_history_mib: float = 1024.0
    """A job must set a history budget, at most this (none, unbounded, is refused)."""
    max_style_scale: float = 2.0
    max_job_mib: float = 16384.0
    """Memory budget of one job in MiB (``--max-job-memory``): every job runs with ``max_memory`` at most
    this, so a scale over it runs in tiles (:mod:`impasto.tiling`), and a job whose floor (what its largest
    scale needs even in the smallest tiles) is over it is refused before it is queued."""

    @property
    def job_budget(self) -> int:
        """:attr:`max_job_mib` in bytes."""
        return int(self.max_job_mib * 2**20)


@dataclass(frozen=True)
class StudioSettings:
    data: Path
    host: str = "127.0.0.1"
    token: str | None = None
    trust_proxy: bool = False
    """Behind a reverse proxy on this machine: X-Forwarded-Proto says whether the browser used TLS (the
    cookie is then ``Secure``) and X-Forwarded-Host is the site the browser sees (for the origin check)."""
    pool: PoolSettings = field(default_factory=PoolSettings)
    limits: Limits = field(default_factory=Limits)


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


SECURITY_HEADERS = (
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
"""On every response: the page may not be framed (no clickjacking), content types are not sniffed."""
TOKEN_HEADER = "x-impasto-token"
OPEN_PATHS = ("/login",)
"""Served without the token: the sign-in page (a form that posts the token once)."""


def session_value(token: str) -> str:
    """The cookie's value: derived from the token, so the cookie jar never holds the token itself."""
    return hmac.new(token.encode(), b"impasto studio session v1", "sha256").hexdigest()


class Guard:
    """ASGI middleware: host and origin checks, the token, and the request body size, before any route.

    * On a loopback address only loopback ``Host`` headers are served (a DNS-rebinding page cannot
      reach the API through a name of its own).
    * A state-changing request whose ``Origin`` is another site is refused (no cross-site job posts);
      ``Origin: null`` (a sandboxed iframe, a ``data:`` page) is another site too.
    * With a token, every request needs it: ``Authorization: Bearer T`` or ``X-Impasto-Token: T`` from
      scripts, or the session cookie that signing in at ``/login`` sets for the page (images and
      EventSource cannot send headers). The token never travels in a URL.
    * Every response says it may not be framed (``frame-ancestors 'none'``, ``X-Frame-Options: DENY``).
    """

    def __init__(self, app: ASGIApp, settings: StudioSettings) -> None:
        self.app = app
        self.settings = settings
        lim = settings.limits
        self.max_body = (lim.max_styles + 1) * lim.max_upload_bytes + lim.max_config_bytes + 65536

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = self._check(scope, headers)
        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _check(self, scope: Scope, headers: dict[str, str]) -> Response | None:
        host = headers.get("host", "")
        hostname = _hostname(host)
        if self.settings.host in LOOPBACK_HOSTS and hostname not in LOOPBACK_HOSTS:
            return _error(403, f"this server answers only to localhost (Host: {host[:100]!r} refused)")
        method = scope["method"]
        origin = headers.get("origin")
        if method not in ("GET", "HEAD", "OPTIONS") and origin is not None:
            site = host
            if self.settings.trust_proxy and headers.get("x-forwarded-host"):
                site = headers["x-forwarded-host"].split(",")[0].strip()
            # "null" is what a sandboxed iframe or a data: page sends: never this site.
            if origin.strip().lower() == "null" or _hostport(origin) != site.lower():
                return _error(403, "cross-origin request refused")
        token = self.settings.token
        if token is not None:
            path = scope["path"]
            if path in OPEN_PATHS:
                return None
            if not self._authorised(headers, token):
                if path == "/" and method in ("GET", "HEAD"):
                    return RedirectResponse("/login", status_code=303)
                return _error(401, "this server needs its token: send Authorization: Bearer TOKEN (or "
                              "X-Impasto-Token), or sign in at /login")
        if method in ("POST", "PUT", "PATCH"):
            length = headers.get("content-length")
            if length is None:
                if "chunked" in headers.get("transfer-encoding", ""):
                    return _error(411, "send a Content-Length (chunked uploads are not accepted)")
            elif not length.isdigit():
                return _error(400, "bad Content-Length")
            elif int(length) > self.max_body:
                return _error(413, f"request body of {int(length):,} bytes is over the {self.max_body:,}-byte limit")
        return None

    @staticmethod
    def _authorised(headers: dict[str, str], token: str) -> bool:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return hmac.compare_digest(auth[7:].strip().encode(), token.encode())
        if TOKEN_HEADER in headers:
            return hmac.compare_digest(headers[TOKEN_HEADER].strip().encode(), token.encode())
        for part in headers.get("cookie", "").split(";"):
            k, _, v = part.strip().partition("=")
            if k == TOKEN_COOKIE:
                return hmac.compare_digest(v.encode(), session_value(token).encode())
        return False


def request_is_tls(request: Request, settings: StudioSettings) -> bool:
    """Whether the browser reached us over TLS: directly, or through a trusted proxy that says so."""
    if request.url.scheme == "https":
        return True
    if settings.trust_proxy:
        proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        return proto == "https"
    return False


def _hostname(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _hostport(origin: str) -> str:
    return origin.split("://", 1)[-1].rstrip("/").lower()


def _swagger_dir() -> Path | None:
    try:
        import swagger_ui_bundle
    except ImportError:
        return None
    return Path(swagger_ui_bundle.swagger_ui_path)


def _static_dir() -> Path:
    return Path(str(files("impasto.studio") / "static"))


def parse_config(raw: str | None, preset: str | None, n_styles: int, content_hw: tuple[int, int],
                 limits: Limits, style_hws: Sequence[tuple[int, int]] = (),
                 network: VGGWeights | None = None) -> Config:
    """The run's Config: a preset (or the defaults) with the request's fields on top, checked and priced
    (see :func:`price_config`)."""
    return price_config(raw, preset, n_styles, content_hw, limits, style_hws, network)[0]


def price_config(raw: str | None, preset: str | None, n_styles: int, content_hw: tuple[int, int],
                 limits: Limits, style_hws: Sequence[tuple[int, int]] = (),
                 network: VGGWeights | None = None, rates: RateMeter | None = None) -> tuple[Config, RunCost]:
    """The run's Config (a preset or the defaults with the request's fields on top, checked, its
    ``max_memory`` set to the per-job budget) and what it will cost (:func:`check_costs`). ``network``:
    the jobs' network, weights or structure (:func:`~impasto.vgg.structure_of`; default the VGG19's
    architecture: nothing is loaded). ``rates``: the server's observed step rates (time from them where
    there are some for this network, else from the committed rate)."""
    from impasto.jobs.resolve import for_preset_run, resolve

    user: dict[str, Any] = {}
    if raw:
        if len(raw) > limits.max_config_bytes:
            raise ImpastoError(f"config is over {limits.max_config_bytes:,} bytes")
        try:
            parsed = json.loads(raw)
        except ValueError as e:
            raise ImpastoError(f"config is not valid JSON ({e})") from None
        if not isinstance(parsed, dict):
            raise ImpastoError("config must be a JSON object of Config fields, e.g. {\"size\": 256}")
        user = parsed
    for name in PATH_FIELDS:
        if user.get(name) is not None:
            raise ImpastoError(f"config field {name!r} names a file on the server, which the studio does not accept")
    if user.get("init") == "file":
        raise ImpastoError("init 'file' reads a file on the server, which the studio does not accept")
    cfg = for_preset_run(resolve(user, preset=preset or None), preset or None, allow_vgg19=True)
    if cfg.size is None or cfg.size > limits.max_size:
        raise ImpastoError(f"size must be at most {limits.max_size} on this server (got {cfg.size})")
    if cfg.style_blend_weights is not None and len(cfg.style_blend_weights) != n_styles:
        raise ImpastoError(f"{len(cfg.style_blend_weights)} style weights given for {n_styles} style images")
    steps = total_steps(cfg, content_hw)
    if steps > limits.max_steps:
        raise ImpastoError(f"{steps} steps in all is over this server's limit of {limits.max_steps}")
    from impasto.engine import resolve_device

    device = resolve_device(cfg.device)
    cfg = with_job_budget(cfg, limits)
    name = "cpu" if device.type == "cpu" else str(device)
    observed = rates.rate(rate_key(cfg, name)) if rates is not None else None
    rate = observed * evaluations_per_step(cfg) if observed is not None else None
    cost = check_costs(cfg, content_hw, style_hws, steps, limits, network, name, rate)
    return cfg, cost


def with_job_budget(cfg: Config, limits: Limits) -> Config:
    """``cfg`` with ``max_memory`` the server's per-job budget, or the request's own size where that is
    smaller (``auto``, ``none`` and larger sizes become the budget: a job never plans for more)."""
    budget = limits.job_budget
    asked = cfg.max_memory
    if asked is not None and asked.strip().lower() != "auto" and parse_memory(asked) <= budget:
        return cfg
    return cfg.replace(max_memory=f"{budget // 2**20}MiB" if budget % 2**20 == 0 else f"{budget}B")


def check_costs(cfg: Config, content_hw: tuple[int, int], style_hws: Sequence[tuple[int, int]], steps: int,
                limits: Limits, network: VGGWeights | None = None, device: str = "cpu",
                rate: float | None = None) -> RunCost:
    """Refuse a job whose CPU time or memory is beyond this server's limits, before it is queued; return
    what it will cost.

    Pixels and outer steps are not the whole cost: every L-BFGS step may run ``lbfgs_max_iter`` inner
    iterations, the history holds ``lbfgs_history`` image-sized pairs, and the style images are
    ``style_scale`` times the output's size. Each is capped. Memory is the engine's own model
    (:func:`impasto.tiling.cost.config_cost`: the network's structure and the images' sizes, no weights
    loaded) under ``cfg.max_memory`` (:func:`with_job_budget`): a scale over it is planned in tiles, and a
    job whose largest scale needs more than the budget even in the smallest tiles is refused. Not in that
    model: a style image's own forward pass at ``style_scale`` (hence the cap on it)."""
    if cfg.lbfgs_max_iter > limits.max_lbfgs_max_iter:
        raise ImpastoError(f"lbfgs_max_iter {cfg.lbfgs_max_iter} is over this server's limit of "
                           f"{limits.max_lbfgs_max_iter} inner iterations per step")
    iterations = steps * (cfg.lbfgs_max_iter if cfg.optimizer == "lbfgs" else 1)
    if iterations > limits.max_iterations:
        raise ImpastoError(f"{steps} steps × {cfg.lbfgs_max_iter} inner iterations = {iterations:,} is over this "
                           f"server's limit of {limits.max_iterations:,} iterations per job")
    if cfg.lbfgs_history > limits.max_lbfgs_history:
        raise ImpastoError(f"lbfgs_history {cfg.lbfgs_history} is over this server's limit of "
                           f"{limits.max_lbfgs_history} pairs")
    if cfg.lbfgs_history_mib is None or cfg.lbfgs_history_mib > limits.max_lbfgs_history_mib:
        raise ImpastoError(f"lbfgs_history_mib must be at most {limits.max_lbfgs_history_mib:g} on this server "
                           f"(got {cfg.lbfgs_history_mib})")
    if cfg.style_scale > limits.max_style_scale:
        raise ImpastoError(f"style_scale {cfg.style_scale:g} is over this server's limit of {limits.max_style_scale:g}")
    if cfg.devices:
        raise ImpastoError("devices starts tile workers (processes, Ray actors) outside the job's process and memory "
                           "budget, which the studio does not accept; tiles run in the job's own process")
    budget = parse_memory(cfg.max_memory) if cfg.max_memory is not None else limits.job_budget
    try:
        return config_cost(cfg, content_hw, style_hws, budget=budget, device=device, weights=network, rate=rate,
                           rate_source=OBSERVED_RATE if rate is not None else None)
    except MemoryFloorError as e:
        if budget < limits.job_budget:  # the request's own max_memory: the engine's line says to raise it
            raise
        h, w = e.size
        raise ImpastoError(
            f"a {w}x{h} picture needs at least {format_bytes(e.need)} of memory even in tiles (runtime and "
            f"input images, pixels, optimiser vectors, content targets, one L-BFGS pair, the smallest tile), over "
            f"this server's budget of {format_bytes(budget)} per job (--max-job-memory); ask for a smaller "
            "size") from None


def total_steps(cfg: Config, content_hw: tuple[int, int]) -> int:
    """Steps of the whole run, as the engine will plan it (raises ImpastoError for a bad scale_steps)."""
    return sum(n for _, n in cfg.schedule(*content_hw))


def create_app(settings: StudioSettings) -> FastAPI:
    data = DataDir(settings.data)
    manager = JobManager(data, settings.pool)
    limits = settings.limits

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        manager.start()
        try:
            yield
        finally:
            await asyncio.get_running_loop().run_in_executor(None, manager.stop)

    # /docs is Swagger UI from the swagger-ui-bundle wheel, served here: FastAPI's default loads it from a CDN.
    app = FastAPI(title="impasto studio", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Neural style transfer jobs: submit, watch, fetch. The page at / uses only this API.")
    app.state.manager = manager
    app.state.settings = settings
    network: list[VGGWeights] = []

    def job_network() -> VGGWeights:
        """The jobs' network as structure only, for pricing: the server's --weights file read once for its
        shapes, else the bundled VGG19's architecture (nothing is read; the web process holds no weights)."""
        if not network:
            from impasto.vgg import load_weights, structure_of

            w = settings.pool.weights
            network.append(structure_of(load_weights(w)) if w else structure_of("vgg19"))
        return network[0]

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        if errs:
            e = errs[0]
            where = ".".join(str(x) for x in e.get("loc", ())[1:]) or "request"
            msg = "missing" if e.get("type") == "missing" else str(e.get("msg", "invalid"))
            return _error(400, f"{where}: {msg}")
        return _error(400, "bad request")

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        # The client learns nothing of the internals (paths, SQL, library messages); the server's log
        # has the traceback, with an id the client can quote.
        ref = secrets.token_hex(4)
        log.error("internal error %s on %s %s", ref, request.method, request.url.path, exc_info=exc)
        return _error(500, f"internal error (reference {ref}; the server's log has the details)")

    def get_job(job_id: str) -> Job:
        job = manager.db.get(job_id) if valid_job_id(job_id) else None
        if job is None:
            raise HTTPException(404, f"no job {job_id[:40]!r}")
        return manager.live(job)

    # -- the page ---------------------------------------------------------------------------------
    static = _static_dir()

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(static / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/login", include_in_schema=False)
    def login_page() -> Response:
        return _login_html(settings.token is not None)

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        """Sign in: the token, posted once from the form, becomes an HttpOnly, SameSite=Strict session
        cookie (``Secure`` when the browser came over TLS). The token is never put in a URL."""
        if settings.token is None:
            return RedirectResponse("/", status_code=303)
        form = await request.form()
        given = form.get("token")
        if not isinstance(given, str) or not hmac.compare_digest(given.strip().encode(), settings.token.encode()):
            return _login_html(True, error="that is not this server's token", status=401)
        r = RedirectResponse("/", status_code=303)
        r.set_cookie(TOKEN_COOKIE, session_value(settings.token), httponly=True, samesite="strict", path="/",
                     secure=request_is_tls(request, settings))
        return r

    app.mount("/static", StaticFiles(directory=static), name="static")

    swagger = _swagger_dir()
    if swagger is not None:
        app.mount("/docs-static", StaticFiles(directory=swagger), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        if swagger is None:
            return JSONResponse({"detail": "the API docs page needs swagger-ui-bundle (pip install 'impasto[web]'); "
                                 "the schema is at /openapi.json"}, status_code=404)
        return get_swagger_ui_html(openapi_url="/openapi.json", title="impasto studio API",
                                   swagger_js_url="/docs-static/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-static/swagger-ui.css",
                                   swagger_favicon_url="/docs-static/favicon-32x32.png")

    # -- reference data -------------------------------------------------------------------------
    @app.get("/api/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "version": __version__, "queued": manager.db.count("queued"),
                "running": manager.db.count("running"), "max_queued": settings.pool.max_queued}

    @app.get("/api/presets")
    def presets() -> dict[str, Any]:
        """The default configuration and each preset's (what the page's preset menu offers)."""
        from impasto.presets import PRESETS, preset_config

        out = []
        for name, p in PRESETS.items():
            out.append({"name": name, "description": p.summary,
                        "config": preset_config(name, allow_vgg19=True).to_dict()})
        return {"default": Config().to_dict(), "presets": out, "limits": limits.__dict__}

    @app.get("/api/config/schema")
    def config_schema() -> dict[str, Any]:
        """JSON schema of the ``config`` field of ``POST /api/jobs`` (every Config field, its type and help)."""
        return Config.json_schema()

    @app.post("/api/inspect")
    async def inspect(image: Annotated[UploadFile, File()]) -> dict[str, Any]:
        """The settings an impasto output carries (the page's "drop an output to reuse its settings")."""
        import tempfile

        from impasto.io import read_metadata

        blob = await image.read(limits.max_upload_bytes + 1)
        try:
            sn = sniff_image(blob, max_bytes=limits.max_upload_bytes, max_pixels=limits.max_pixels, what="the image")
        except UploadError as e:
            raise HTTPException(e.status, str(e)) from None
        # read_metadata reads files: a private temporary one, named by us, removed at once.
        with tempfile.TemporaryDirectory(dir=data.root) as tmp:
            path = Path(tmp) / f"image.{sn.ext}"
            path.write_bytes(blob)
            try:
                meta = read_metadata(path)
            except ImpastoError:
                meta = None
        if meta is None or not isinstance(meta.get("config"), dict):
            raise HTTPException(422, "this image carries no impasto settings")
        return {"config": meta["config"], "metadata": {k: v for k, v in meta.items() if k != "loss_history"}}

    # -- jobs -----------------------------------------------------------------------------------
    async def read_images(content: UploadFile, style: Sequence[UploadFile]) -> list[tuple[bytes, Any, str]]:
        """The uploads' bytes, sniffed (format, size) within the limits, and display names."""
        if len(style) > limits.max_styles:
            raise HTTPException(400, f"{len(style)} style images; at most {limits.max_styles}")
        uploads = []
        for i, f in enumerate([content, *style]):
            what = "the content image" if i == 0 else f"style image {i}"
            blob = await f.read(limits.max_upload_bytes + 1)
            try:
                sn = sniff_image(blob, max_bytes=limits.max_upload_bytes, max_pixels=limits.max_pixels, what=what)
            except UploadError as e:
                raise HTTPException(e.status, str(e)) from None
            uploads.append((blob, sn, _display_name(f.filename, i)))
        return uploads

    @app.post("/api/cost")
    async def cost(
        config: Annotated[str | None, Form(description="JSON object of Config fields (partial), as for a job")] = None,
        preset: Annotated[str | None, Form(description="a preset name as the base configuration")] = None,
        content_size: Annotated[str | None, Form(description="the photo's WIDTHxHEIGHT in pixels (instead of "
                                                 "uploading it)")] = None,
        style_size: Annotated[list[str] | None, Form(description="each painting's WIDTHxHEIGHT (repeat the "
                                                     "field; instead of uploading them)")] = None,
        content: Annotated[UploadFile | None, File(description="the photo, as for a job")] = None,
        style: Annotated[list[UploadFile] | None, File(description="the paintings, as for a job")] = None,
    ) -> dict[str, Any]:
        """What a job of these settings would cost, before it is submitted, checked as ``POST /api/jobs``
        checks it (the same 400s): per scale its size, steps, modelled peak memory run whole and as it will
        run under this server's per-job budget, tiles, L-BFGS pairs and seconds per step; then the peak and
        the estimated seconds. Memory is the engine's model (:mod:`impasto.tiling.memory`), time a measured
        step rate scaled by pixels (:mod:`impasto.tiling.cost`), so both are estimates. Give the images'
        sizes (``content_size``, ``style_size``) or the images themselves."""
        if content is not None:
            uploads = await read_images(content, style or [])
            hws = [(u[1].height, u[1].width) for u in uploads]
        elif content_size is not None:
            sizes = [content_size, *(style_size or [])]
            if len(sizes) - 1 > limits.max_styles:
                raise HTTPException(400, f"{len(sizes) - 1} style images; at most {limits.max_styles}")
            hws = [_parse_size(x, limits) for x in sizes]
        else:
            raise HTTPException(400, "give content_size (WIDTHxHEIGHT) and style_size, or the content and style images")
        n_styles = len(hws) - 1
        if n_styles < 1:
            raise HTTPException(400, "style: at least one style image (or style_size) is needed")
        try:
            cfg, run = price_config(config, preset, n_styles, hws[0], limits, hws[1:], job_network(), manager.rates)
        except ImpastoError as e:
            raise HTTPException(400, str(e)) from None
        return {**run.to_dict(), "total_steps": sum(s.steps for s in run.scales), "max_memory": cfg.max_memory,
                "lines": run.lines()}

    @app.post("/api/jobs", status_code=201)
    async def submit(
        content: Annotated[UploadFile, File(description="the photo")],
        style: Annotated[list[UploadFile], File(description="one or more paintings (repeat the field)")],
        config: Annotated[str | None, Form(description="JSON object of Config fields (partial)")] = None,
        preset: Annotated[str | None, Form(description="a preset name as the base configuration")] = None,
        draft: Annotated[str | None, Form(description="id of the quick draft of these settings posted just "
                                          "before (the page shows the two as one card)")] = None,
    ) -> JSONResponse:
        if manager.stopping:
            raise HTTPException(503, "the server is shutting down; try again shortly")
        uploads = await read_images(content, style)
        try:
            cfg, _ = price_config(config, preset, len(style), (uploads[0][1].height, uploads[0][1].width), limits,
                                  [(u[1].height, u[1].width) for u in uploads[1:]], job_network())
        except ImpastoError as e:
            raise HTTPException(400, str(e)) from None
        if draft is not None and (not valid_job_id(draft) or manager.db.get(draft) is None):
            raise HTTPException(400, f"draft: no job {draft[:40]!r}")
        stored = []
        for blob, sn, name in uploads:
            data.store_upload(blob, sn)
            stored.append(Upload(sha256=sn.sha256, ext=sn.ext, name=name))
        job = Job(id=new_job_id(), state="queued", created=time.time(), config=cfg.to_dict(),
                  content=stored[0], styles=tuple(stored[1:]),
                  total_steps=total_steps(cfg, (uploads[0][1].height, uploads[0][1].width)), draft=draft)
        if not manager.submit(job):
            raise HTTPException(429, f"the queue is full ({settings.pool.max_queued} jobs waiting); try again later",
                                headers={"Retry-After": "30"})
        return JSONResponse(job.to_api(), status_code=201, headers={"Location": f"/api/jobs/{job.id}"})

    @app.get("/api/jobs")
    def list_jobs(state: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """Jobs, newest first (``state`` filters, e.g. ``done``; comma-separated for several)."""
        states = tuple(s for s in (state or "").split(",") if s)
        if any(s not in ("queued", "running", *FINISHED) for s in states):
            raise HTTPException(400, "state must be queued, running, done, failed or cancelled")
        found = manager.db.list_jobs(states=states or None, limit=max(1, min(limit, 1000)))
        return [manager.live(j).to_api() for j in found]

    @app.get("/api/jobs/{job_id}")
    def job_detail(job_id: str) -> dict[str, Any]:
        return get_job(job_id).to_api()

    @app.get("/api/jobs/{job_id}/events")
    async def events(job_id: str, request: Request) -> StreamingResponse:
        """Server-Sent Events: the job's state, each progress step, previews, checkpoints; ``end`` last.

        Reconnecting with ``Last-Event-ID`` continues after that event; a new stream replays the events
        this server has kept (the last few thousand), so a page opened mid-run can draw the loss curve.
        """
        job = get_job(job_id)
        log = manager.log(job.id)
        try:
            seq = int(request.headers.get("last-event-id", "0"))
        except ValueError:
            seq = 0

        async def stream() -> AsyncIterator[str]:
            nonlocal seq
            yield "retry: 2000\n\n"
            yield _sse("job", manager.live(job).to_api())
            while True:
                for n, kind, payload in log.since(seq):
                    seq = n
                    yield _sse(kind, payload, n)
                current = manager.db.get(job.id)
                if current is None:
                    yield _sse("end", {"id": job.id, "state": "deleted"})
                    return
                if current.state in FINISHED:
                    for n, kind, payload in log.since(seq):
                        seq = n
                        yield _sse(kind, payload, n)
                    yield _sse("end", current.to_api())
                    return
                if await request.is_disconnected():
                    return
                await asyncio.sleep(SSE_POLL_SECONDS)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.get("/api/jobs/{job_id}/preview", response_class=Response,
             responses={200: {"content": {"image/png": {}}}})
    def preview(job_id: str) -> Response:
        job = get_job(job_id)
        path = data.preview_path(job.id)
        try:
            blob = path.read_bytes()
        except OSError:
            raise HTTPException(404, "no preview yet") from None
        return Response(blob, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.get("/api/jobs/{job_id}/result", response_class=Response,
             responses={200: {"content": {"image/png": {}}}})
    def result(job_id: str, download: bool = False) -> Response:
        job = get_job(job_id)
        if job.state != "done":
            raise HTTPException(409, f"job {job.id} is {job.state}; the result exists once it is done")
        path = data.result_path(job.id)
        if not path.is_file():
            raise HTTPException(404, "the result file is missing from the data folder")
        headers = {"Content-Disposition": f'attachment; filename="impasto-{job.id[:8]}.png"'} if download else {}
        return FileResponse(path, media_type="image/png", headers=headers)

    @app.get("/api/jobs/{job_id}/inputs/{which}", response_class=Response)
    def inputs(job_id: str, which: str) -> FileResponse:
        """The job's uploaded images: ``content`` or ``style0``, ``style1``... (for before/after, reuse)."""
        job = get_job(job_id)
        if which == "content":
            up = job.content
        elif which.startswith("style") and which[5:].isdigit() and int(which[5:]) < len(job.styles):
            up = job.styles[int(which[5:])]
        else:
            raise HTTPException(404, "no such input (content, style0, style1, ...)")
        path = data.upload_path(up.sha256, up.ext)
        if not path.is_file():
            raise HTTPException(404, "the input is missing from the data folder")
        return FileResponse(path, media_type=_MEDIA.get(up.ext, "application/octet-stream"))

    @app.post("/api/jobs/{job_id}/cancel")
    def cancel(job_id: str) -> dict[str, Any]:
        job = get_job(job_id)
        state = manager.cancel(job.id)
        if state is None:
            raise HTTPException(409, f"job {job.id} has already finished ({get_job(job.id).state})")
        return {**get_job(job.id).to_api(), "cancel": state}

    @app.delete("/api/jobs/{job_id}")
    def delete(job_id: str) -> dict[str, Any]:
        job = get_job(job_id)
        manager.delete(job.id)
        return {"id": job.id, "deleted": True}

    app.add_middleware(Guard, settings=settings)
    return app


def _login_html(needed: bool, error: str = "", status: int = 200) -> Response:
    note = f'<p class="error" role="alert">{error}</p>' if error else ""
    body = ("<p>This studio needs no sign-in: <a href=\"/\">open it</a>.</p>" if not needed else
            '<form method="post" action="/login"><label>Token <input type="password" name="token" '
            'id="token" autocomplete="current-password" required autofocus></label> '
            '<button type="submit">Sign in</button></form>' + note +
            "<p class=\"muted\">The token is the one <code>impasto serve --token</code> was started with.</p>")
    html = ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>impasto studio: sign in</title>'
            '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
            '<link rel="stylesheet" href="/static/style.css"></head><body><header><h1>impasto <span>studio</span>'
            f'</h1></header><main class="login"><section class="panel"><h2>Sign in</h2>{body}</section></main>'
            "</body></html>")
    return Response(html, status_code=status, media_type="text/html", headers={"Cache-Control": "no-store"})


_MEDIA = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp", "tif": "image/tiff",
          "bmp": "image/bmp", "gif": "image/gif"}


def _parse_size(text: str, limits: Limits) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` as (height, width), within the upload pixel limit."""
    w, sep, h = text.strip().lower().partition("x")
    if not (sep and w.isdigit() and h.isdigit() and len(w) <= 6 and len(h) <= 6 and int(w) > 0 and int(h) > 0):
        raise HTTPException(400, f"an image size is WIDTHxHEIGHT in pixels, e.g. 640x480 (got {text[:40]!r})")
    if int(w) * int(h) > limits.max_pixels:
        raise HTTPException(400, f"an image of {w}x{h} is over this server's limit of {limits.max_pixels:,} pixels")
    return int(h), int(w)


def _display_name(name: str | None, i: int) -> str:
    """The name the user gave, as display text only (never a path): last component, printable, short."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable())[:120]
    return base or ("content" if i == 0 else f"style{i}")


def _sse(kind: str, payload: dict[str, Any], seq: int | None = None) -> str:
    body = json.dumps(payload, allow_nan=False, default=_json_default)
    head = f"id: {seq}\n" if seq is not None else ""
    return f"{head}event: {kind}\ndata: {body}\n\n"


def _json_default(o: object) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return str(o)


__all__ = ["Limits", "StudioSettings", "check_costs", "create_app", "parse_config", "price_config", "with_job_budget"]
