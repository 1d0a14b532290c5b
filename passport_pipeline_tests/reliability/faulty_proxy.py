"""A fault-injecting HTTP proxy on loopback: what a network does that a server cannot.

The simulator misbehaves as a server does (statuses, bodies, latency), but always finishes what
it sends. Between it and a client, networks and gateways also break transfers off. This proxy
forwards every request to the simulator and breaks data answers on a schedule — every
``every``-th data request (token requests always pass), or every one when ``every`` is 1:

- ``drop``: the connection is closed without an answer (a gateway restarting, a reset);
- ``stall``: the request is held without an answer for ``stall_seconds``, longer than the
  client's read timeout, then dropped (a hung upstream);
- ``truncated_chunks``: the answer starts as a chunked transfer and the connection closes
  before its last chunk (a proxy killed mid-transfer);
- ``short_body``: the answer declares its full ``Content-Length`` and the connection closes
  halfway through the body.

Gateways' 502/504 HTML pages are left to the simulator, which sends them (``burst_status``).
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

BREAKS = ("drop", "stall", "truncated_chunks", "short_body")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer", "upgrade"}


@dataclass
class FaultyProxy:
    """What the proxy does (``fault`` one of :data:`BREAKS`) and what it did."""

    upstream: str
    fault: str
    every: int = 5
    stall_seconds: float = 3.0
    url: str = ""
    data_requests: int = 0
    broken: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def breaks_next(self, path: str) -> bool:
        """Whether to break the answer to this request (counted when it is a data request)."""
        if path.startswith("/admin") or path.split("?")[0].endswith("/token"):
            return False
        with self.lock:
            self.data_requests += 1
            breaks = self.data_requests % self.every == 0
            self.broken += breaks
            return breaks


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients pool connections, and chunked answers
    proxy: FaultyProxy

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def log_message(self, format, *args) -> None:
        pass

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        breaks = self.proxy.breaks_next(self.path)
        if breaks and self.proxy.fault in ("drop", "stall"):
            if self.proxy.fault == "stall":
                time.sleep(self.proxy.stall_seconds)
            self.close_connection = True
            return
        status, headers, content = self._ask_upstream(body)
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        if breaks and self.proxy.fault == "truncated_chunks":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            half = content[: len(content) // 2]
            self.wfile.write(f"{len(half):x}\r\n".encode() + half + b"\r\n")
            self.close_connection = True
            return
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content[: len(content) // 2] if breaks else content)
        self.close_connection = breaks

    def _ask_upstream(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        target = urlsplit(self.proxy.upstream)
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        try:
            upstream.request(self.command, self.path, body=body or None, headers=dict(self.headers))
            response = upstream.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            upstream.close()


@contextlib.contextmanager
def faulty_proxy(upstream: str, fault: str, every: int = 5, stall_seconds: float = 3.0) -> Iterator[FaultyProxy]:
    """Run a :class:`FaultyProxy` in front of ``upstream`` on a free loopback port."""
    assert fault in BREAKS, fault
    proxy = FaultyProxy(upstream, fault, every, stall_seconds)
    handler = type("Handler", (_Handler,), {"proxy": proxy})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="faulty-proxy", daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
