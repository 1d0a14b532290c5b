"""A scripted HTTP server for the source clients' tests, and helpers to script it.

:class:`StubServer` runs a stdlib ``http.server`` on 127.0.0.1 in a thread; each path is
answered by a handler ``(Request) -> (status, headers, body)``, and every request is recorded.
The token endpoint is built in (``/token``): it issues ``token-1``, ``token-2``... so tests
can see refreshes. :func:`paged` serves a list of records the way OneRoster servers page them,
with the quirks tests switch on. The ``stub`` fixture (conftest) runs one per test.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from passport_pipeline.sources.settings import ClientSettings

SECRET = "s3cr3t-value-never-shown"
SCOPE_CORE = "https://purl.imsglobal.org/spec/or/v1p1/scope/roster-core.readonly"
SCOPE_ROSTER = "https://purl.imsglobal.org/spec/or/v1p1/scope/roster.readonly"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str]

    @property
    def token(self) -> str | None:
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        return value if scheme == "Bearer" else None


Reply = tuple[int, dict[str, str], object]
Handler = Callable[[Request], Reply]


@dataclass
class StubServer:
    url: str = ""
    routes: dict[str, Handler] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    token_path: str = "/token"
    token_scope: str | None = SCOPE_CORE
    token_expires_in: int = 3600
    tokens_issued: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def data(self, path: str) -> list[Request]:
        """The requests made to ``path``."""
        return [r for r in self.requests if r.path == path]

    def settings(self, **overrides) -> ClientSettings:
        values = dict(base_url=self.url, token_url=f"{self.url}/token", base_path="/or", client_id="client-x",
                      client_secret=SECRET, scopes=(SCOPE_CORE,), page_size=3, max_retries=3,
                      secret_env="SKYWARD_SECRET", client_id_env="SKYWARD_CLIENT_ID")
        return ClientSettings(**{**values, **overrides})

    def answer(self, request: Request) -> Reply:
        if request.path == self.token_path:
            with self.lock:
                self.tokens_issued += 1
                token = f"token-{self.tokens_issued}"
            body = {"access_token": token, "token_type": "bearer", "expires_in": self.token_expires_in}
            if self.token_scope is not None:
                body["scope"] = self.token_scope
            return 200, {}, body
        handler = self.routes.get(request.path)
        if handler is None:
            return 404, {}, {"error": f"no route {request.path}"}
        return handler(request)


def _encode(body: object) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


@contextlib.contextmanager
def serving() -> Iterator[StubServer]:
    """Run a :class:`StubServer` on a free loopback port until the block ends."""
    server_state = StubServer()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            request = Request(self.command, parts.path, dict(parse_qsl(parts.query, keep_blank_values=True)),
                              dict(self.headers), dict(parse_qsl(raw)))
            with server_state.lock:
                server_state.requests.append(request)
                server_state.in_flight += 1
                server_state.max_in_flight = max(server_state.max_in_flight, server_state.in_flight)
            try:
                status, headers, body = server_state.answer(request)
            finally:
                with server_state.lock:
                    server_state.in_flight -= 1
            data = _encode(body)
            self.send_response_only(status)
            for name, value in {"Content-Type": "application/json", "Date": self.date_time_string(),
                                **headers}.items():
                if value is not None:  # a route drops a default header (``Date``) by setting it to None
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    server_state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield server_state
    finally:
        httpd.shutdown()
        httpd.server_close()


def people(n: int, prefix: str = "u") -> list[dict]:
    return [{"sourcedId": f"{prefix}{i:03d}", "status": "active", "role": "student"} for i in range(n)]


def paged(records: list[dict], *, wrapper: str = "users", clamp: int | None = None, total: str | None = "X-Total-Count",
          link: bool = True, overlap: int = 0) -> Handler:
    """OneRoster-style offset paging over ``records`` with optional quirks."""

    def handler(request: Request) -> Reply:
        limit = int(request.query.get("limit", 100))
        offset = int(request.query.get("offset", 0))
        if clamp:
            limit = min(limit, clamp)
        start = max(offset - overlap, 0) if offset else 0
        headers = {}
        if total:
            headers[total] = str(len(records))
        if link:
            rels = ['<http://x/?offset=0>; rel="first"']
            if offset + limit < len(records):
                rels.append(f'<http://x/?offset={offset + limit}>; rel="next"')
            headers["Link"] = ", ".join(rels)
        return 200, headers, {wrapper: records[start:start + limit]}

    return handler


def scripted(handler: Handler, replies: dict[int, Reply]) -> Handler:
    """``handler``, except that the n-th request (0-based) gets ``replies[n]``."""
    count = iter(range(10**9))

    def answer(request: Request) -> Reply:
        n = next(count)
        return replies[n] if n in replies else handler(request)

    return answer


class Sleeps(list):
    """An injectable ``sleep`` that records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
