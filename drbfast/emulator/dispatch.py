"""The request pipeline shared by WebSocket and HTTP: parse, middleware (fault hooks),
credits, authentication, scopes, then the handler with an explicit context.

:func:`dispatch` reads only its :class:`Environment` (the exchange, the configuration,
the hub, the per-IP credits, the monitor and the middleware), never a server or a
connection. Nothing here raises: every outcome is a reply (or a deliberate no-reply),
so no input can close a socket with 1011.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..ratelimit import CreditBucket
from .accounts import IpCredits
from .config import EmulatorConfig
from .context import Context, Hub, Session
from .errors import RpcError
from .exchange import Exchange
from .monitor import Monitor
from .rpc import HANDLERS, METHODS, NO_RESPONSE, Method

__all__ = ["Environment", "INVALID_JSON", "Outcome", "RequestHook", "Verdict", "dispatch", "error_outcome",
           "normalize_method", "parse_request"]

#: PROTOCOL.md 3.2: text that is not JSON -> 11050 bad_request "invalid json", no id.
INVALID_JSON = RpcError(11050, "bad_request", "invalid json")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):  # 1e400 overflows to inf: refuse, not echo
        raise ValueError("number out of range")
    return value


def parse_request(payload: bytes | str) -> Any:
    """Strict JSON: NaN/Infinity/overflowing numbers and runaway nesting raise ValueError."""
    try:
        return json.loads(payload, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError as exc:
        raise ValueError("nested too deeply") from exc


def normalize_method(method: str) -> str:
    """``/public/auth`` and ``/api/v2/public/auth`` name ``public/auth``: the docs title
    methods with a leading slash and call the heartbeat answer ``/api/v2/public/test``
    (PROTOCOL.md 1.3); production's answer to such names is not documented."""
    if method.startswith("/"):
        method = method[1:]
        if method.startswith("api/v2/"):
            method = method[7:]
    return method


@dataclass
class Outcome:
    """What to answer: ``body`` (None: no reply at all), actions to run after it, and
    whether the session must then be closed (code, reason) or dropped."""

    body: dict[str, Any] | None
    after: list[Callable[[], Any]] = field(default_factory=list)
    close: tuple[int, str] | None = None
    drop: bool = False
    #: an RpcError reply: HTTP maps it to a status code
    error: RpcError | None = None


def _envelope(msg: dict[str, Any], result: Any = None, error: RpcError | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0"}
    if "id" in msg:
        body["id"] = msg["id"]
    if error is not None:
        body["error"] = error.as_error()
    else:
        body["result"] = result
    return body


def error_outcome(msg: dict[str, Any], error: RpcError, **kw: Any) -> Outcome:
    return Outcome(_envelope(msg, error=error), error=error, **kw)


#: A middleware's answer instead of the handler's: the request in, the outcome out.
Verdict = Callable[[dict[str, Any]], Outcome]
#: Request middleware: sees (session, method) before anything else; a verdict answers
#: instead of the pipeline, None lets the request through.
RequestHook = Callable[[Any, str], "Verdict | None"]


@dataclass
class Environment:
    """Everything a request may touch, by name."""

    exchange: Exchange
    config: EmulatorConfig
    #: subscriptions and publication (handlers get it as ``ctx.hub``)
    hub: Hub
    #: the credit pools of unauthenticated callers, per IP
    ip_credits: IpCredits
    monitor: Monitor
    #: middleware, in order (fault injection, the gateway's allowlist); WebSocket only
    hooks: list[RequestHook] = field(default_factory=list)


def dispatch(env: Environment, session: Session, msg: Any, *, http: bool, ip: str) -> Outcome:
    """Run one parsed request for ``session``."""
    if not isinstance(msg, dict):
        return Outcome({"jsonrpc": "2.0", "error": INVALID_JSON.as_error()}, error=INVALID_JSON)
    method = msg.get("method")
    if not isinstance(method, str):
        return error_outcome(msg, RpcError(-32601, "Method not found"))
    method = normalize_method(method)
    params = msg.get("params")
    if params is None:
        params = {}  # absent and null both mean "no params" (JSON-RPC 2.0 section 4)
    cfg = env.config
    exchange = env.exchange

    # Middleware: fault hooks see the request first.
    if not http:
        for hook in env.hooks:
            verdict = hook(session, method)
            if verdict is not None:
                return verdict(msg)

    # HANDLERS is the live registry (tests swap a handler to inject a reply); METHODS
    # says how each is charged and guarded. A handler added without a spec is public,
    # or needs any valid token when its name is private/*.
    handler = HANDLERS.get(method)
    spec = METHODS.get(method) if handler is not None else None
    if handler is not None and spec is None:
        spec = Method(handler, scope=("account", "none") if method.startswith("private/") else None)
    # Resolve who is asking before charging: credits are per sub-account.
    token = session.token
    if isinstance(params, dict) and isinstance(params.get("access_token"), str):
        found = exchange.token(params["access_token"], time.time(), session.id)
        if found is not None and (session.client_id is None or found.client_id == session.client_id):
            token = found
    elif token is not None and (token.expires_at <= time.time() or token.access_token not in exchange.tokens):
        token = None
    buckets: dict[str, CreditBucket] = (exchange.accounts[token.client_id].credits if token is not None
                                        else env.ip_credits(ip))
    pool = spec.pool if spec is not None else "non_matching"
    cost = {"non_matching": cfg.credit_cost, "matching": cfg.matching_cost, "subscribe": cfg.subscribe_cost}[pool]
    if buckets[pool].try_acquire(cost) > 0:
        # PROTOCOL.md 9: 10028 and the session is terminated.
        env.monitor.event("session %d: %s over the %s credit limit: 10028, closing", session.id, method, pool)
        return error_outcome(msg, RpcError(10028, "too_many_requests"),
                             close=(cfg.rate_limit_close_code, "too_many_requests"))
    if spec is None:
        return error_outcome(msg, RpcError(-32601, "Method not found"))
    if not isinstance(params, dict):
        return error_outcome(msg, RpcError(-32602, "Invalid params", {"reason": "must be an object", "param": "params"}))
    if http and spec.ws_only and spec.pool != "subscribe":
        return error_outcome(msg, RpcError(10030, "must_be_websocket_request"))
    if spec.private:
        if token is None:
            return error_outcome(msg, RpcError(13009, "unauthorized", {"reason": "invalid_token", "param": "access_token"}))
        if session.client_id is None:
            session.on_authenticated(token)
        assert spec.scope is not None
        area, level = spec.scope
        if level != "none" and not token.allows(area, level):
            return error_outcome(msg, RpcError(13403, "scope_exceeded", {"reason": f"{area}:{level} required",
                                                                         "param": "access_token"}))
    ctx = Context(exchange, cfg, session, env.hub, http=http)
    try:
        result = handler(ctx, params)  # type: ignore[misc]
    except RpcError as exc:
        return error_outcome(msg, exc, after=ctx.after)
    except Exception:  # a handler bug must never close the socket with 1011
        env.monitor.bug("session %d: handler of %s failed", session.id, method)
        return error_outcome(msg, RpcError(11094, "internal_server_error"), after=ctx.after)
    if result is NO_RESPONSE:
        return Outcome(None, after=ctx.after)
    return Outcome(_envelope(msg, result), after=ctx.after)
