"""HTTP client of the Ember gateway's REST API (urllib, no dependencies)."""

from __future__ import annotations

import http.client
import json
import os
import pickle
import ssl
import struct
import threading
import time
import urllib.error
import urllib.request
from typing import IO, Any, Iterator, Optional

from ember.errors import GatewayError

_RETRIES = 8


def secret_from_environment(conf: Any = None) -> Optional[str]:
    """The cluster's shared secret as a driver finds it.

    ``EMBER_AUTH_SECRET``, else the first line of the file ``EMBER_AUTH_SECRET_FILE``
    names, else the SparkConf key ``spark.authenticate.secret``; None when none is set.
    """
    secret = os.environ.get("EMBER_AUTH_SECRET")
    path = os.environ.get("EMBER_AUTH_SECRET_FILE")
    if not secret and path:
        try:
            with open(path, encoding="ascii") as fh:
                secret = fh.readline().strip()
        except (OSError, UnicodeDecodeError) as err:
            raise GatewayError(f"cannot read the secret file {path} "
                               f"(EMBER_AUTH_SECRET_FILE): {err}") from None
    if not secret and conf is not None:
        secret = conf.get("spark.authenticate.secret")
    return secret or None


def ca_from_environment(conf: Any = None) -> Optional[str]:
    """The CA file a driver trusts for an HTTPS gateway: ``EMBER_TLS_CA``, else
    the SparkConf key ``spark.ember.tls.ca``; None for plain HTTP."""
    ca = os.environ.get("EMBER_TLS_CA") or (conf.get("spark.ember.tls.ca") if conf else None)
    return ca or None


class GatewayClient:
    """Talks JSON to one gateway; retries idempotent requests with backoff.

    Parameters
    ----------
    address : str
        ``host:port`` of the gateway.
    secret : str, optional
        The cluster's shared secret, sent as ``Authorization: Bearer`` on every request.
    ca_file : str, optional
        Speak HTTPS and trust this PEM CA file (plain HTTP without it).
    """

    def __init__(self, address: str, secret: Optional[str] = None,
                 ca_file: Optional[str] = None) -> None:
        self.address = address
        self.scheme = "https" if ca_file else "http"
        self.base = f"{self.scheme}://{address}/api/v1"
        self._headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        self._local = threading.local()
        self._ssl = None
        if ca_file:
            try:
                self._ssl = ssl.create_default_context(cafile=ca_file)
            except (OSError, ssl.SSLError) as err:
                raise GatewayError(f"cannot use the TLS CA file {ca_file}: {err}") from None

    def _urlopen(self, req: urllib.request.Request, timeout: float) -> Any:
        for key, value in self._headers.items():
            req.add_unredirected_header(key, value)
        return urllib.request.urlopen(req, timeout=timeout, context=self._ssl)

    def _connection(self) -> http.client.HTTPConnection:
        """This thread's kept-alive connection to the gateway (a job's submit,
        polls and download would otherwise each open a new one)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._ssl is not None:
                conn = http.client.HTTPSConnection(self.address, timeout=300,
                                                   context=self._ssl)
            else:
                conn = http.client.HTTPConnection(self.address, timeout=300)
            self._local.conn = conn
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _exchange(self, method: str, path: str, data: Optional[bytes],
                  headers: dict[str, str]) -> tuple[int, str, bytes, Optional[str]]:
        """One request on the kept-alive connection: (status, reason, body,
        Content-Length). A connection the gateway closed while it sat idle is
        replaced once: the request never reached the gateway."""
        for fresh in (False, True):
            reused = getattr(self._local, "conn", None) is not None
            conn = self._connection()
            try:
                conn.request(method, "/api/v1" + path, body=data, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._drop_connection()
                if reused and not fresh:
                    continue
                raise
            except BaseException:
                self._drop_connection()
                raise
            if resp.will_close:
                self._drop_connection()
            return resp.status, resp.reason, payload, resp.headers.get("Content-Length")
        raise AssertionError("unreachable")

    def request(self, method: str, path: str, body: Any = None, raw: bool = False,
                retry: Optional[bool] = None, raw_body: Optional[bytes] = None) -> Any:
        """Sends one request (body as JSON, or raw_body as bytes); returns the
        decoded JSON (or bytes when raw)."""
        data = raw_body if raw_body is not None else (
            None if body is None else json.dumps(body).encode())
        retry = method == "GET" if retry is None else retry
        headers = dict(self._headers)
        if data is not None:
            headers["Content-Type"] = ("application/octet-stream" if raw_body is not None
                                       else "application/json")
        delay = 0.05
        for attempt in range(_RETRIES if retry else 1):
            try:
                status, reason, payload, length = self._exchange(method, path, data, headers)
                _check_length(payload, length)
                if status >= 400:
                    message = _error_body_text(payload, status, reason)
                    if status in (502, 503) and retry and attempt + 1 < _RETRIES:
                        time.sleep(delay)
                        delay = min(delay * 2, 2.0)
                        continue
                    raise GatewayError(message, status)
                return payload if raw else json.loads(payload or b"null")
            except http.client.IncompleteRead as err:
                # The gateway streams result blocks; one that breaks mid-way ends
                # the connection short of Content-Length.
                if retry and attempt + 1 < _RETRIES:
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                got = len(err.partial)
                want = got + err.expected if isinstance(err.expected, int) else "more"
                raise GatewayError(f"the gateway's answer to {method} {path} broke off after "
                                   f"{got} of {want} bytes") from None
            except (OSError, http.client.HTTPException) as err:
                if retry and attempt + 1 < _RETRIES:
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                raise GatewayError(f"gateway {self.address} is unreachable: {err}") from None
        raise AssertionError("unreachable")

    def stream_frames(self, path: str) -> Iterator[Any]:
        """Records of a result block, decoded frame by frame as the gateway streams it.

        Opening is retried like any GET; a body that breaks off raises GatewayError.
        """
        with self._open(path) as resp:
            try:
                while True:
                    header = resp.read(4)
                    if not header:
                        # http.client's read(n) answers b"" when the connection
                        # closes early, even short of the Content-Length (the
                        # gateway closes it when a block manager fails mid-answer).
                        if resp.length:
                            raise GatewayError(f"the gateway's answer to GET {path} broke off "
                                               f"{resp.length} bytes short")
                        return
                    (length,) = struct.unpack(">i", _exactly(header, 4, path))
                    yield from pickle.loads(_exactly(resp.read(length), length, path))
            except http.client.IncompleteRead as err:
                raise GatewayError(f"the gateway's answer to GET {path} broke off "
                                   f"{err.expected} bytes short") from None

    def _open(self, path: str) -> IO[bytes]:
        delay = 0.05
        for attempt in range(_RETRIES):
            try:
                return self._urlopen(urllib.request.Request(self.base + path), timeout=300)
            except urllib.error.HTTPError as err:
                message = _error_text(err)
                if err.code not in (502, 503) or attempt + 1 == _RETRIES:
                    raise GatewayError(message, err.code) from None
            except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
                if attempt + 1 == _RETRIES:
                    raise GatewayError(f"gateway {self.address} is unreachable: {err}") from None
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")


def _exactly(data: bytes, want: int, path: str) -> bytes:
    if len(data) < want:
        raise GatewayError(f"the gateway's answer to GET {path} broke off inside a frame "
                           f"({len(data)} of {want} bytes)")
    return data


def _check_length(payload: bytes, content_length: Optional[str]) -> None:
    """Raises IncompleteRead when the body is shorter than announced."""
    if content_length is not None and content_length.isdigit() \
            and len(payload) < int(content_length):
        raise http.client.IncompleteRead(payload, int(content_length) - len(payload))


def _error_body_text(payload: bytes, status: int, reason: str) -> str:
    """The sentence of a JSON error body, else the status line."""
    try:
        body = json.loads(payload or b"{}")
        return str(body.get("error") or body)
    except (ValueError, AttributeError):
        return f"HTTP {status} {reason}"


def _error_text(err: urllib.error.HTTPError) -> str:
    try:
        payload = err.read()
    except AttributeError:
        payload = b""
    return _error_body_text(payload, err.code, err.reason)
