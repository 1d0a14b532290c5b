"""Admin endpoints: steer a running simulator from tests, demos and notebooks.

No authentication, and only loopback clients are served (others get 403).

- ``GET /admin/state``: simulated ``today``, ``day``, ``seed``, row counts per entity, faults.
- ``GET /admin/faults``; ``PUT`` replaces them (unset ones off), ``PATCH`` merges into the
  current ones, ``DELETE`` switches all off. Each change restarts the seeded decisions.
  Invalid settings answer 422 naming the field and the problem.
- ``POST /admin/next-day``: body ``evolve.NextDay`` (JSON); moves the district one simulated
  day forward and answers the change summary (409 when the store is served read-only).
- ``GET /admin/credentials`` (without secrets); ``POST /admin/credentials``: add or replace a
  credential (``auth.Credential``), e.g. an inactive, expired or school-restricted one.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
from typing import TYPE_CHECKING, TypeVar

import duckdb
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from passport_pipeline.simulator import store
from passport_pipeline.simulator.auth import Credential
from passport_pipeline.simulator.faults import Faults

if TYPE_CHECKING:
    from passport_pipeline.simulator.server import Simulator


M = TypeVar("M", bound=BaseModel)


def routes() -> list[Route]:
    return [
        Route("/admin/state", _loopback(_state)),
        Route("/admin/faults", _loopback(_faults), methods=["GET", "PUT", "PATCH", "DELETE"]),
        Route("/admin/next-day", _loopback(_next_day), methods=["POST"]),
        Route("/admin/credentials", _loopback(_credentials), methods=["GET", "POST"]),
    ]


class _Invalid(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _loopback(endpoint):
    async def guarded(request: Request) -> JSONResponse:
        try:
            loopback = ipaddress.ip_address(request.client.host).is_loopback if request.client else False
        except ValueError:
            loopback = False
        if not loopback:
            return JSONResponse({"error": "admin endpoints answer loopback clients only"}, 403)
        try:
            return await endpoint(request, request.app.state.simulator)
        except _Invalid as invalid:
            return JSONResponse({"error": invalid.message}, 422)

    return guarded


async def _state(request: Request, simulator: Simulator) -> JSONResponse:
    def read() -> dict:
        with simulator.cursor() as cur:
            meta, counts = store.meta(cur), store.counts(cur)
        return {
            "today": meta.get("today"),
            "now": meta.get("now"),
            "day": int(meta["day"]) if "day" in meta else None,
            "seed": meta.get("seed"),
            "school_year": meta.get("school_year"),
            "counts": counts,
            "faults": simulator.faults.faults.model_dump(),
        }

    return JSONResponse(await run_in_threadpool(read))


async def _faults(request: Request, simulator: Simulator) -> JSONResponse:
    plan = simulator.faults
    if request.method == "PUT":
        plan.replace(_validated(Faults, await _json_object(request)))
    elif request.method == "PATCH":
        plan.replace(_validated(Faults, {**plan.faults.model_dump(), **await _json_object(request)}))
    elif request.method == "DELETE":
        plan.replace(Faults())
    return JSONResponse(plan.faults.model_dump())


async def _next_day(request: Request, simulator: Simulator) -> JSONResponse:
    from passport_pipeline.simulator import evolve  # the generator stack loads only when needed

    change = _validated(evolve.NextDay, await _json_object(request))
    if simulator.settings.read_only:
        return JSONResponse({"error": "this simulator serves its store read-only: start it writable"}, 409)

    def advance() -> dict:
        with simulator.writing, simulator.cursor() as cur:
            try:
                return evolve.next_day(cur, change)
            except ValueError as refused:  # an event that cannot happen in this district
                with contextlib.suppress(duckdb.Error):
                    cur.execute("ROLLBACK")
                raise _Invalid(f"next day refused: {refused}") from None

    return JSONResponse(json.loads(json.dumps(await run_in_threadpool(advance), default=str)))


async def _credentials(request: Request, simulator: Simulator) -> JSONResponse:
    if request.method == "POST":
        credential = _validated(Credential, await _json_object(request))
        simulator.authority.put_credential(credential)
        return JSONResponse(credential.public())
    return JSONResponse([c.public() for c in simulator.authority.credentials()])


async def _json_object(request: Request) -> dict:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError as e:
        raise _Invalid(f"the body is not JSON: {e}") from None
    if not isinstance(body, dict):
        raise _Invalid("the body must be a JSON object")
    return body


def _validated(model: type[M], body: dict) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'body'}: {err['msg']}" for err in e.errors())
        raise _Invalid(f"invalid {model.__name__}: {problems}") from None
