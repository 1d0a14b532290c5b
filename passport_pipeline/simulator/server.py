"""The simulator's HTTP server: a simulated Skyward district on loopback.

Paths served (``{server}`` is ``http://127.0.0.1:<port>``):

- OneRoster 1.1 at ``/ims/oneroster/v1p1/...``; 1.2 at ``/ims/oneroster/rostering/v1p2/...``
  and at Skyward's seen alias ``/ims/oneroster/v1p2/...``; OAuth 2 token ``POST /oauth/token``.
- SMS 2.0 native API under ``/api``: token ``POST /api/token``, data ``/api/v1/...``
  (:mod:`.sms` lists the paths).
- Admin (no auth, loopback clients only) under ``/admin`` (:mod:`.admin`).

Every data request is authenticated (:mod:`.auth`), may misbehave on purpose
(:mod:`.faults`: latency, 429, error bursts, cut-off bodies...), and is answered from the
district store by the API's engine on its own DuckDB cursor in a worker thread, so slow or
waiting requests never hold up others. Every data response, error or not, carries the
simulated clock as its ``Date`` (a client may take it as a delta watermark); uvicorn's own
real-clock ``Date`` is switched off, so token and admin responses have none.
:func:`running_simulator` runs one in a background thread for tests and notebooks;
:func:`serve` runs one in the foreground.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import duckdb
import requests
import uvicorn
from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from passport_pipeline.simulator import admin, oneroster, sms, store
from passport_pipeline.simulator.auth import (
    DEMO_CREDENTIAL, Api, AuthError, Authority, Credential, Token, TokenExpired,
)
from passport_pipeline.simulator.faults import Decision, FaultPlan, Faults, corrupt, with_records
from passport_pipeline.simulator.oneroster import OneRosterRequest, Reply

ONEROSTER_PATHS = {
    "v1p1": "/ims/oneroster/v1p1",
    "v1p2": "/ims/oneroster/rostering/v1p2",
    "v1p2-skyward": "/ims/oneroster/v1p2",
}
"""OneRoster base paths; ``v1p2-skyward`` is where Skyward's 1.2 deployments have been seen."""
SMS_PATH = "/api"
TOKEN_PATH = "/oauth/token"


class SimulatorSettings(BaseModel):
    """How to run a simulator: where, which district, who may connect, and what goes wrong."""

    model_config = ConfigDict(extra="forbid")

    store_path: Path
    """The district store (a DuckDB file made by the generator)."""
    read_only: bool = False
    """Serve without ever writing the store (``/admin/next-day`` then answers 409)."""
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)
    """0 picks a free port."""
    credentials: list[Credential] = Field(default_factory=lambda: [DEMO_CREDENTIAL])
    faults: Faults = Field(default_factory=Faults)
    token_ttl_seconds: int = Field(3600, ge=1)


class Simulator:
    """What a server holds while it runs: the store connection, the authority, the faults."""

    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        known_scopes = {scope for scopes in oneroster.SCOPES.values() for scope in scopes}
        self.authority = Authority(settings.credentials, known_scopes)
        self.faults = FaultPlan(settings.faults)
        self.writing = threading.Lock()
        """Held while the district changes (next day), so changes never interleave."""
        self._con: duckdb.DuckDBPyConnection | None = None

    def open(self) -> None:
        _check_store(self.settings.store_path)
        self._con = store.connect(self.settings.store_path, read_only=self.settings.read_only)

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    @contextlib.contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of its own for one request: cursors may run in parallel threads."""
        if self._con is None:
            raise RuntimeError("the simulator's store is not open (is the app running?)")
        cur = self._con.cursor()
        try:
            yield cur
        finally:
            cur.close()

    def today(self) -> dt.date:
        """The simulated date (store meta ``today``), else today's date in UTC."""
        with self.cursor() as cur:
            today = store.meta(cur).get("today")
        return dt.date.fromisoformat(today) if today else dt.datetime.now(dt.UTC).date()

    def now(self) -> dt.datetime:
        """The simulated clock (store meta ``now``, UTC), else the real time."""
        with self.cursor() as cur:
            now = store.meta(cur).get("now")
        if not now:
            return dt.datetime.now(dt.UTC)
        moment = dt.datetime.fromisoformat(now)
        return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)

    def token_ttl(self) -> int:
        ttl = self.faults.faults.token_ttl_seconds
        return self.settings.token_ttl_seconds if ttl is None else ttl

    def answer(self, handle: Callable[[duckdb.DuckDBPyConnection, Any], Reply], request: Any) -> Reply:
        with self.cursor() as cur:
            return handle(cur, request)


def build_app(settings: SimulatorSettings) -> Starlette:
    """The simulator as an ASGI app; its lifespan opens and closes the store."""
    simulator = Simulator(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        simulator.open()
        try:
            yield
        finally:
            simulator.close()

    routes = [
        Route(TOKEN_PATH, _oauth_token, methods=["POST"]),
        Route(f"{SMS_PATH}/token", _sms_token, methods=["POST"]),
        *[
            Route(f"{base}/{{path:path}}", functools.partial(_data, api="oneroster", base=base, version=name[:4]))
            for name, base in ONEROSTER_PATHS.items()
        ],
        Route(f"{SMS_PATH}/{{path:path}}", functools.partial(_data, api="sms", base=SMS_PATH)),
        *admin.routes(),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.simulator = simulator
    return app


async def _oauth_token(request: Request) -> Response:
    return await _token(request, Authority.client_credentials_grant, include_scope=True)


async def _sms_token(request: Request) -> Response:
    return await _token(request, Authority.password_grant, include_scope=False)


async def _token(request: Request, grant: Callable[..., Token], include_scope: bool) -> Response:
    simulator: Simulator = request.app.state.simulator
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
    today = await run_in_threadpool(simulator.today)
    ttl = simulator.token_ttl()
    try:
        token = grant(simulator.authority, request.headers.get("authorization"), form, today, ttl)
    except AuthError as refusal:
        headers = {"WWW-Authenticate": 'Basic realm="simulator"'} if refusal.status == 401 else None
        body = refusal.body()
        if simulator.faults.faults.echo_credentials:
            body["error_description"] += _echo(request, form=await request.body())
        return JSONResponse(body, refusal.status, headers)
    body = {"access_token": token.access_token, "token_type": "bearer", "expires_in": ttl}
    if include_scope:
        body["scope"] = " ".join(sorted(token.scopes))
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


async def _data(request: Request, api: Api, base: str, version: str | None = None) -> Response:
    """One data request, dated by the simulated clock as it was when the request came in.

    The clock is read before the answer, so a response never claims a time later than the
    data it carries (a next day landing meanwhile is re-read by a delta from this ``Date``)."""
    simulator: Simulator = request.app.state.simulator
    now = await run_in_threadpool(simulator.now)
    reply = await _data_reply(request, simulator, api, base, version)
    return _respond(reply, {"Date": format_datetime(now, usegmt=True)})


async def _data_reply(request: Request, simulator: Simulator, api: Api, base: str, version: str | None) -> Reply:
    """Faults first (as a gateway would), then the token, then the engine."""
    faults = simulator.faults.faults
    decision = simulator.faults.decide()
    echo = _echo(request) if faults.echo_credentials else ""
    if decision.latency_seconds:
        await asyncio.sleep(decision.latency_seconds)
    if decision.status is not None:
        return _fault_reply(api, decision, faults.plain_errors, echo)
    try:
        token = simulator.authority.verify(request.headers.get("authorization"), api)
    except AuthError as refusal:
        denied = "Authorization has been denied for this request." if api == "sms" else refusal.description
        reply = _error(api, 401, denied + echo, faults.plain_errors)
        return Reply(401, reply.body, {**reply.headers, "WWW-Authenticate": "Bearer"})
    except TokenExpired:
        return _error(api, faults.expired_token_status, "Token has expired" + echo, faults.plain_errors)
    path = request.path_params["path"]
    endpoint = path.rstrip("/").rsplit("/", 1)[-1]
    asked = dict(
        path=path, query=dict(request.query_params), base_url=f"{request.url.scheme}://{request.url.netloc}{base}",
        visible_schools=token.visible_schools, clamp_limit=faults.clamp_limit, overlap_rows=faults.overlap_rows,
        empty=endpoint in faults.empty_endpoints, plain_errors=faults.plain_errors,
    )
    if api == "sms":
        handle, engine_request = sms.handle, sms.NativeRequest(**asked)
    else:
        handle, engine_request = oneroster.handle, OneRosterRequest(
            version=version, granted_scopes=token.scopes, non_spec_wrappers=faults.non_spec_wrappers,
            nested_not_found=faults.nested_not_found, nested_as_schools=faults.nested_as_schools,
            nested_students_from_enrollments=faults.nested_students_from_enrollments,
            short_rows=faults.short_rows if endpoint in faults.short_endpoints else None, **asked,
        )
    reply = await run_in_threadpool(simulator.answer, handle, engine_request)
    hostile = faults.hostile_records.get(endpoint)
    first_page = request.query_params.get("offset", "0") == "0" and "paging.cursor" not in request.query_params
    if hostile and reply.status == 200 and first_page:
        reply = Reply(200, with_records(reply.body, hostile), reply.headers)
    if decision.bad_json and reply.status == 200:
        return Reply(200, corrupt(reply.body), reply.headers)
    return reply


_CODE_MINOR = {401: "unauthorisedrequest", 403: "forbidden", 429: "server_busy", 503: "server_busy"}


def _error(api: Api, status: int, message: str, plain: bool) -> Reply:
    """An error in the API's own shape (imsx for OneRoster, ``{"Message"}`` for SMS)."""
    if api == "sms":
        return sms.error_reply(status, message, plain)
    return oneroster.error_reply(status, _CODE_MINOR.get(status, "internal_server_error"), message, plain)


_GATEWAY_PAGE = "<html><head><title>{0}</title></head><body><center><h1>{0}</h1></center></body></html>"


def _fault_reply(api: Api, decision: Decision, plain: bool, echo: str = "") -> Reply:
    """A failure a busy server or its gateway sends: 429 with Retry-After, 5xx, proxy pages;
    ``echo`` (see :func:`_echo`) follows its words."""
    status = decision.status
    if status == 429:
        reply = _error(api, 429, "Too many requests: slow down and retry after the Retry-After delay" + echo, plain)
        return Reply(429, reply.body, {**reply.headers, "Retry-After": str(decision.retry_after_seconds)})
    if status in (502, 504):
        title = {502: "502 Bad Gateway", 504: "504 Gateway Time-out"}[status]
        return Reply(status, _GATEWAY_PAGE.format(title + echo).encode(), {"Content-Type": "text/html"})
    message = "The service is temporarily unavailable" if status == 503 else "An error has occurred."
    return _error(api, status, message + echo, plain)


def _echo(request: Request, form: bytes | None = None) -> str:
    """The request's credentials as an error repeats them (fault ``echo_credentials``): its
    ``Authorization`` header and, for a token request, its form body as sent."""
    said = f" (request Authorization: {request.headers.get('authorization', '')}"
    if form is not None:
        said += f"; body: {form.decode('utf-8', 'replace')}"
    return said + ")"


def _respond(reply: Reply, extra_headers: Mapping[str, str] | None = None) -> Response:
    return Response(reply.body, reply.status, {**reply.headers, **(extra_headers or {})})


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def _server(settings: SimulatorSettings, embedded: bool) -> uvicorn.Server:
    config = uvicorn.Config(
        build_app(settings), log_level="warning", access_log=False, lifespan="on", date_header=False,
        timeout_graceful_shutdown=5, **({"log_config": None} if embedded else {}),
    )
    return uvicorn.Server(config)


def _base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@dataclass(frozen=True)
class RunningSimulator:
    """A running simulator: where its APIs live, and helpers that call its admin endpoints."""

    base_url: str
    """``http://127.0.0.1:<port>``"""

    def oneroster_url(self, version: str = "v1p1") -> str:
        """OneRoster base URL for ``v1p1``, ``v1p2`` or ``v1p2-skyward`` (Skyward's 1.2 path)."""
        return self.base_url + ONEROSTER_PATHS[version]

    @property
    def token_url(self) -> str:
        return self.base_url + TOKEN_PATH

    @property
    def sms_url(self) -> str:
        return self.base_url + SMS_PATH

    @property
    def sms_token_url(self) -> str:
        return f"{self.base_url}{SMS_PATH}/token"

    @property
    def admin_url(self) -> str:
        return self.base_url + "/admin"

    def state(self) -> dict:
        return self._admin("GET", "state")

    def set_faults(self, **faults: Any) -> dict:
        """Replace the faults with exactly these (others off); counters restart."""
        return self._admin("PUT", "faults", faults)

    def clear_faults(self) -> dict:
        return self._admin("DELETE", "faults")

    def next_day(self, **change: Any) -> dict:
        """Move the district one simulated day forward (body: ``evolve.NextDay``)."""
        return self._admin("POST", "next-day", change)

    def put_credential(self, **credential: Any) -> dict:
        """Add or replace a credential (fields of :class:`auth.Credential`)."""
        return self._admin("POST", "credentials", credential)

    def _admin(self, method: str, path: str, body: dict | None = None) -> dict:
        response = requests.request(method, f"{self.admin_url}/{path}", json=body, timeout=300)
        if not response.ok:
            raise RuntimeError(f"{method} /admin/{path} answered {response.status_code}: {response.text}")
        return response.json()


def serve(settings: SimulatorSettings) -> None:
    """Serve in the foreground until Ctrl-C or SIGTERM, after printing where to connect."""
    _check_store(settings.store_path)
    sock = _bind(settings.host, settings.port)
    urls = RunningSimulator(_base_url(sock))
    print(f"Skyward simulator serving {settings.store_path}" + (" (read-only)" if settings.read_only else ""))
    for label, url in [
        ("OneRoster 1.1", urls.oneroster_url("v1p1")),
        ("OneRoster 1.2", f"{urls.oneroster_url('v1p2')}  (also {urls.oneroster_url('v1p2-skyward')})"),
        ("token URL", urls.token_url),
        ("SMS 2.0 API", f"{urls.sms_url}  (token {urls.sms_token_url})"),
        ("admin", urls.admin_url),
    ]:
        print(f"  {label:<14} {url}")
    for credential in settings.credentials:
        shown = credential.secret if credential == DEMO_CREDENTIAL else "(as configured)"
        print(f"  client id      {credential.client_id}   secret {shown}")
    faults = settings.faults.model_dump(exclude_defaults=True)
    if faults:
        print("  faults         " + ", ".join(f"{name}={value}" for name, value in faults.items()))
    print("Press Ctrl-C to stop.", flush=True)
    _server(settings, embedded=False).run(sockets=[sock])


@contextlib.contextmanager
def running_simulator(
    store_path: str | Path,
    *,
    faults: Faults | Mapping[str, Any] | None = None,
    credentials: list[Credential] | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    token_ttl_seconds: int = 3600,
    read_only: bool = False,
) -> Iterator[RunningSimulator]:
    """Run a simulator on ``host`` (a free port by default) in a background thread.

    Leaving the block stops the server, waits for it and closes the store."""
    settings = SimulatorSettings(
        store_path=Path(store_path), host=host, port=port, read_only=read_only,
        faults=faults if isinstance(faults, Faults) else Faults.model_validate(faults or {}),
        credentials=credentials if credentials is not None else [DEMO_CREDENTIAL],
        token_ttl_seconds=token_ttl_seconds,
    )
    _check_store(settings.store_path)
    sock = _bind(host, port)
    server = _server(settings, embedded=True)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="skyward-simulator", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the simulator did not start on {_base_url(sock)} (see the log above)")
            time.sleep(0.01)
        yield RunningSimulator(_base_url(sock))
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def _check_store(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"no district store at {path}: generate one first")
