"""An HTTP client for one registry, speaking the distribution v2 protocol's transport.

Kernel interfaces: TCP sockets through ``http.client`` (TLS through ``ssl`` with the
system's default trust store). Every socket has a timeout (``MOORAGE_REGISTRY_TIMEOUT``
seconds, default 30), so an unreachable registry is an error, never a hang.

What it does: probes ``/v2/`` once to learn the scheme (HTTPS; plain HTTP only for an
insecure registry, after HTTPS fails) and the auth challenge; answers ``Bearer``
challenges by fetching a token for each scope from the realm (with the user's
credentials as basic auth when it has some) and ``Basic`` challenges directly; follows
redirects (blob downloads go to a CDN), never sending credentials to another host.
Keep-alive connections are kept per thread, so parallel downloads each use their own;
``close()`` (or leaving ``with Registry(...) as reg:``) closes those of every thread.

Registry error bodies (``{"errors":[{"code","message"}]}``) become docker's sentences
(``unauthorized: authentication required``): 401/403 are ``Unauthorized``, 404 is
``NotFound``, connection failures are ``KernelError`` with the socket's errno. Owns
nothing on disk; never logs a credential.
"""

from __future__ import annotations

import base64
import errno
import http.client
import json
import os
import re
import socket
import ssl
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any, BinaryIO

from runtime.errors import InvalidSpec, KernelError, NotFound
from runtime.registry import credentials as stored_credentials
from runtime.registry import endpoints

USER_AGENT = "moorage/1 (distribution v2)"
_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_HOPS = 5
_MAX_SMALL = 16 << 20  # manifests, configs, error bodies, tokens
_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]*))')


class Unauthorized(InvalidSpec):
    """The registry refused the credentials (or the lack of them)."""


def timeout() -> float:
    try:
        return float(os.environ.get("MOORAGE_REGISTRY_TIMEOUT", "30"))
    except ValueError:
        return 30.0


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    url: str

    def json(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.body)
        except ValueError as e:
            raise InvalidSpec(f"the registry answered {self.url} with invalid JSON: {e}") from None
        if not isinstance(doc, dict):
            raise InvalidSpec(f"the registry answered {self.url} with a non-object")
        return doc


def error_text(status: int, body: bytes, reason: str = "") -> str:
    """Docker's rendering of a registry error body: 'code: message' per error."""
    try:
        errors = json.loads(body).get("errors") or []
        parts = [f"{str(e.get('code', '')).lower()}: {e.get('message', '')}" for e in errors]
    except (ValueError, AttributeError):
        parts = []
    return "; ".join(p for p in parts if p.strip(": ")) or f"{status} {reason}".strip()


def raise_for(resp: Response, what: str) -> None:
    text = error_text(resp.status, resp.body)
    if resp.status in (401, 403):
        raise Unauthorized(f"{what}: {text}")
    if resp.status == 404:
        raise NotFound(f"{what}: {text}")
    raise InvalidSpec(f"{what}: the registry answered {text}")


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = {m[0].lower(): m[1] or m[2] for m in _CHALLENGE_PARAM.findall(rest)}
    return scheme.lower(), params


class Registry:
    """A session with one registry: scheme, auth challenge, tokens and connections."""

    def __init__(
        self, domain: str, auth: tuple[str, str] | None = None, *, use_stored: bool = True
    ) -> None:
        self.endpoint = endpoints.endpoint(domain)
        if auth is None and use_stored:
            auth = stored_credentials.get(self.endpoint.domain)
        self.auth = auth
        self.timeout = timeout()
        self._scheme: str | None = None
        self._challenge: tuple[str, dict[str, str]] | None = None
        self._tokens: dict[tuple[str, ...], str] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        # Every thread's pool, so close() reaches the sockets of finished download threads.
        # Its own lock: the /v2/ probe dials while holding _lock.
        self._pools: list[dict[tuple[str, str], http.client.HTTPConnection]] = []
        self._pools_lock = threading.Lock()

    def close(self) -> None:
        """Close the kept-alive connections of every thread, once no request is in
        flight (the session stays usable: the next request dials again)."""
        with self._pools_lock:
            conns = [conn for pool in self._pools for conn in pool.values()]
            for pool in self._pools:
                pool.clear()
        for conn in conns:
            conn.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport ---------------------------------------------------------------------

    def _pool(self) -> dict[tuple[str, str], http.client.HTTPConnection]:
        """This thread's keep-alive connections, keyed by (scheme, netloc)."""
        pool: dict[tuple[str, str], http.client.HTTPConnection] | None = getattr(
            self._local, "pool", None
        )
        if pool is None:
            pool = self._local.pool = {}
            with self._pools_lock:
                self._pools.append(pool)
        return pool

    def _connect(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        if scheme == "https":
            return http.client.HTTPSConnection(
                netloc,
                timeout=self.timeout,
                blocksize=1 << 16,
                context=ssl.create_default_context(),
            )
        return http.client.HTTPConnection(netloc, timeout=self.timeout, blocksize=1 << 16)

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | BinaryIO | None,
        *,
        fresh: bool,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        parts = urllib.parse.urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        key = (parts.scheme, parts.netloc)
        pool = self._pool()
        for attempt in (0, 1):
            reused = not fresh and key in pool
            conn = pool.pop(key) if reused else self._connect(parts.scheme, parts.netloc)
            try:
                conn.request(method, target, body=body, headers=headers)
                resp = conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                conn.close()
                if reused and attempt == 0 and (body is None or isinstance(body, bytes)):
                    continue  # the server closed an idle keep-alive connection: redial
                raise transport_error(method, url, e, self.timeout) from e
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                raise transport_error(method, url, e, self.timeout) from e
            return conn, resp
        raise AssertionError("unreachable")

    def _exchange(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | BinaryIO | None,
        stream: bool,
    ) -> tuple[http.client.HTTPResponse, Response | None, str]:
        """One request, following redirects; a small body is read, a stream is not."""
        for _ in range(_MAX_HOPS):
            conn, resp = self._send(method, url, headers, body, fresh=stream)
            if resp.status in _REDIRECTS and resp.getheader("Location"):
                resp.read()
                self._release(conn, resp, url)
                target = urllib.parse.urljoin(url, resp.getheader("Location", ""))
                if urllib.parse.urlsplit(target).netloc != urllib.parse.urlsplit(url).netloc:
                    headers = {k: v for k, v in headers.items() if k != "Authorization"}
                url = target
                continue
            if stream and resp.status in (200, 206):
                return resp, None, url
            try:
                data = resp.read(_MAX_SMALL + 1)
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                raise transport_error(method, url, e, self.timeout) from e
            if len(data) > _MAX_SMALL:
                conn.close()
                raise InvalidSpec(f"the registry's answer to {url} is larger than 16 MiB")
            self._release(conn, resp, url)
            return resp, Response(resp.status, resp.headers, data, url), url
        raise InvalidSpec(f"too many redirects from the registry for {url}")

    def _release(
        self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse, url: str
    ) -> None:
        if resp.will_close:
            conn.close()
            return
        parts = urllib.parse.urlsplit(url)
        self._pool()[(parts.scheme, parts.netloc)] = conn

    # --- the /v2/ probe and auth -------------------------------------------------------

    def base_url(self) -> str:
        with self._lock:
            if self._scheme is None:
                self._probe()
        return f"{self._scheme}://{self.endpoint.host}"

    def _probe(self) -> None:
        schemes = ("https", "http") if self.endpoint.insecure else ("https",)
        last: KernelError | None = None
        for scheme in schemes:
            url = f"{scheme}://{self.endpoint.host}/v2/"
            try:
                resp, small, _ = self._exchange("GET", url, {"User-Agent": USER_AGENT}, None, False)
            except KernelError as e:
                last = e
                continue
            assert small is not None
            if small.status == 401:
                self._challenge = _parse_challenge(resp.getheader("WWW-Authenticate", ""))
            elif small.status != 200:
                raise_for(small, f"GET {url}")
            self._scheme = scheme
            return
        assert last is not None
        if not self.endpoint.insecure and last.errno == errno.EPROTO:
            raise KernelError(
                last.operation,
                last.errno,
                "the registry does not speak HTTPS; "
                "if it is yours, list it in MOORAGE_INSECURE_REGISTRIES",
            ) from last
        raise last

    def _authorization(self, scopes: tuple[str, ...]) -> dict[str, str]:
        if self._challenge is None:
            return {}
        kind, params = self._challenge
        if kind == "basic":
            if self.auth is None:
                raise Unauthorized("no basic auth credentials")
            return {"Authorization": "Basic " + _basic(self.auth)}
        if kind != "bearer":
            raise InvalidSpec(f"the registry asks for unsupported {kind!r} authentication")
        with self._lock:
            token = self._tokens.get(scopes)
            if token is None:
                token = self._tokens[scopes] = self._fetch_token(params, scopes)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _fetch_token(self, params: dict[str, str], scopes: tuple[str, ...]) -> str:
        realm = params.get("realm")
        if not realm or urllib.parse.urlsplit(realm).scheme not in ("http", "https"):
            raise InvalidSpec(f"the registry's bearer challenge has no usable realm ({realm!r})")
        query = [("service", params["service"])] if params.get("service") else []
        query += [("scope", s) for s in scopes]
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)
        headers = {"User-Agent": USER_AGENT}
        if self.auth is not None:
            headers["Authorization"] = "Basic " + _basic(self.auth)
        _, resp, _ = self._exchange("GET", url, headers, None, False)
        assert resp is not None
        if resp.status in (401, 403):
            text = error_text(resp.status, resp.body)
            if not text.endswith(str(resp.status)):
                raise Unauthorized(text)
            raise Unauthorized("unauthorized: incorrect username or password")
        if resp.status != 200:
            raise_for(resp, f"get a token from {realm}")
        doc = resp.json()
        token = doc.get("token") or doc.get("access_token")
        if not isinstance(token, str):
            raise InvalidSpec(f"the token server {realm} answered without a token")
        return token

    # --- requests ----------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        scopes: tuple[str, ...] = (),
        headers: dict[str, str] | None = None,
        body: bytes | BinaryIO | None = None,
        stream: bool = False,
    ) -> tuple[http.client.HTTPResponse, Response | None]:
        """Send ``method path`` (a path under the registry, or an absolute URL it gave us).

        Returns the raw response (to stream when ``stream`` and the status is 200/206)
        and, for anything not streamed, a ``Response`` with the body read.
        """
        url = path if "://" in path else self.base_url() + path
        for attempt in (0, 1):
            sent = {"User-Agent": USER_AGENT, **(headers or {}), **self._authorization(scopes)}
            raw, small, _ = self._exchange(method, url, sent, body, stream)
            if small is None or small.status != 401 or attempt == 1:
                return raw, small
            header = raw.getheader("WWW-Authenticate", "")
            if not header or not (body is None or isinstance(body, bytes)):
                return raw, small
            with self._lock:  # the challenge (or the token's scope) changed: start again
                self._challenge = _parse_challenge(header)
                self._tokens.pop(scopes, None)
        raise AssertionError("unreachable")

    def call(
        self,
        method: str,
        path: str,
        *,
        scopes: tuple[str, ...] = (),
        headers: dict[str, str] | None = None,
        body: bytes | BinaryIO | None = None,
        ok: tuple[int, ...] = (200,),
        what: str = "",
    ) -> Response:
        """A request whose answer is small; a status outside ``ok`` raises."""
        _, resp = self.request(method, path, scopes=scopes, headers=headers, body=body)
        assert resp is not None
        if resp.status not in ok:
            raise_for(resp, what or f"{method} {path}")
        return resp

    def check_login(self) -> None:
        """Prove the credentials: the /v2/ probe, then an authenticated /v2/ (or a token)."""
        self.call("GET", "/v2/", what=f"login to {self.endpoint.domain}")


def _basic(auth: tuple[str, str]) -> str:
    return base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()


def transport_error(method: str, url: str, e: BaseException, limit: float) -> KernelError:
    operation = f'{method.title()} "{url}"'
    if isinstance(e, (TimeoutError, socket.timeout)):
        return KernelError(operation, errno.ETIMEDOUT, f"no answer within {limit:g} s")
    if isinstance(e, socket.gaierror):
        host = urllib.parse.urlsplit(url).hostname
        return KernelError(operation, errno.EHOSTUNREACH, f"cannot resolve {host}: {e.strerror}")
    if isinstance(e, ssl.SSLError):
        return KernelError(operation, errno.EPROTO, e.reason or str(e))
    if isinstance(e, OSError) and e.errno:
        return KernelError(operation, e.errno)
    return KernelError(operation, errno.ECONNRESET, str(e) or type(e).__name__)
