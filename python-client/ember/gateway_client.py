"""HTTP client of the Ember gateway's REST API (urllib, no dependencies)."""

from __future__ import annotations

import http.client
import json
import os
import pickle
import socket
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

    def _connection(self) -> "_Connection":
        """This thread's kept-alive connection to the gateway (a job's submit,
        polls and download would otherwise each open a new one)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = _Connection(self.address, self._ssl, timeout=300)
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
            try:
                conn = self._connection()
                status, reason, payload, length, will_close = conn.exchange(
                    method, "/api/v1" + path, data, headers)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._drop_connection()
                if reused and not fresh:
                    continue
                raise
            except BaseException:
                self._drop_connection()
                raise
            if will_close:
                self._drop_connection()
            return status, reason, payload, length
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
                    raise GatewayError(message, status, retried=attempt > 0)
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


# A body up to this size goes out in the same send() as the head: one segment
# and one wakeup of the gateway instead of two (http.client sends them apart).
_JOIN_BODY_BYTES = 64 * 1024
_MAX_LINE = 65536
_MAX_HEADERS = 100


class _Connection:
    """One HTTP/1.1 connection to the gateway, for request(): each request goes
    out in one send, and the answer is read by a parser of the little the
    gateway sends (a status line, headers, a Content-Length, chunked or
    until-close body). Raises what http.client raises for the same failures
    (RemoteDisconnected, IncompleteRead, BadStatusLine, LineTooLong, OSError)."""

    def __init__(self, address: str, context: Optional[ssl.SSLContext], timeout: float) -> None:
        probe = http.client.HTTPConnection(address)   # parses host:port and [v6]:port
        self.host, self.port = probe.host, probe.port
        self.host_header = address
        sock = socket.create_connection((self.host, self.port), timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if context is not None:
                sock = context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.rfile = sock.makefile("rb")

    def close(self) -> None:
        self.rfile.close()
        self.sock.close()

    def exchange(self, method: str, target: str, data: Optional[bytes],
                 headers: dict[str, str]) -> tuple[int, str, bytes, Optional[str], bool]:
        """Sends one request; returns (status, reason, body, Content-Length, will_close)."""
        head = [f"{method} {target} HTTP/1.1\r\nHost: {self.host_header}\r\n"
                "Accept-Encoding: identity\r\n"]
        for key, value in headers.items():
            head.append(f"{key}: {value}\r\n")
        if data is not None or method in ("POST", "PUT", "PATCH"):
            head.append(f"Content-Length: {len(data) if data is not None else 0}\r\n")
        head.append("\r\n")
        raw = "".join(head).encode("latin-1")
        if data and len(data) <= _JOIN_BODY_BYTES:
            self.sock.sendall(raw + data)
        else:
            self.sock.sendall(raw)
            if data:
                self.sock.sendall(data)
        return self._response(method)

    def _line(self) -> bytes:
        line = self.rfile.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise http.client.LineTooLong("header line")
        return line

    def _response(self, method: str) -> tuple[int, str, bytes, Optional[str], bool]:
        head = self._buffered_head()
        if head is None:
            head = self._head_by_lines()
        version, status, reason, fields = head
        connection = fields.get("connection", "").lower()
        will_close = "close" in connection or (version == "HTTP/1.0"
                                               and "keep-alive" not in connection)
        length = fields.get("content-length")
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return status, reason, b"", length, will_close
        if "chunked" in fields.get("transfer-encoding", "").lower():
            return status, reason, self._chunked(), None, will_close
        if length is None:
            return status, reason, self.rfile.read(), None, True
        try:
            want = int(length)
        except ValueError:
            raise http.client.HTTPException(f"bad Content-Length {length!r}") from None
        if want < 0:
            raise http.client.HTTPException(f"bad Content-Length {length!r}")
        payload = self.rfile.read(want)
        if len(payload) < want:
            raise http.client.IncompleteRead(payload, want - len(payload))
        return status, reason, payload, length, will_close

    def _buffered_head(self) -> Optional[tuple[str, int, str, dict[str, str]]]:
        """The status line and headers when the read buffer already holds all of
        them (the gateway's answers come in one segment), parsed as
        _head_by_lines would, without a call per line; None (nothing consumed)
        when they are not all there, or for an interim 1xx answer."""
        buf = self.rfile.peek(1)
        status_end = buf.find(b"\n")
        if status_end < 0:
            return None
        ends = [at for at in (buf.find(b"\n\r\n", status_end), buf.find(b"\n\n", status_end))
                if at >= 0]
        if not ends:
            return None
        end = min(ends)
        consumed = end + (3 if buf[end + 1:end + 2] == b"\r" else 2)
        if consumed > _MAX_LINE:
            return None
        version, status, reason = _status_line(buf[:status_end + 1])
        if 100 <= status < 200 and status != 101:
            return None
        lines = buf[status_end + 1:end].decode("iso-8859-1").split("\n") \
            if end > status_end else []
        if len(lines) > _MAX_HEADERS:
            return None
        fields: dict[str, str] = {}
        for line in lines:                # _header_line's rule, inlined: a call each cost more
            name, sep, value = line.partition(":")
            if sep:
                key = name.strip().lower()
                value = value.strip()
                fields[key] = f"{fields[key]}, {value}" if key in fields else value
        self.rfile.read(consumed)         # from the buffer: no system call
        return version, status, reason, fields

    def _head_by_lines(self) -> tuple[str, int, str, dict[str, str]]:
        while True:
            line = self._line()
            if not line:
                raise http.client.RemoteDisconnected(
                    "Remote end closed connection without response")
            version, status, reason = _status_line(line)
            fields = self._headers()
            if status >= 200 or status == 101:
                return version, status, reason, fields   # 1xx: interim, the real one follows

    def _headers(self) -> dict[str, str]:
        fields: dict[str, str] = {}
        for _ in range(_MAX_HEADERS + 1):
            line = self._line()
            if line in (b"\r\n", b"\n", b""):
                return fields
            _header_line(fields, line.decode("iso-8859-1"))
        raise http.client.HTTPException(f"got more than {_MAX_HEADERS} headers")

    def _chunked(self) -> bytes:
        parts = []
        while True:
            size_line = self._line()
            try:
                size = int(size_line.split(b";", 1)[0], 16)
            except ValueError:
                raise http.client.IncompleteRead(b"".join(parts)) from None
            if size == 0:
                while self._line() not in (b"\r\n", b"\n", b""):
                    pass                # trailers
                return b"".join(parts)
            chunk = self.rfile.read(size)
            if len(chunk) < size:
                raise http.client.IncompleteRead(b"".join(parts) + chunk, size - len(chunk))
            parts.append(chunk)
            self.rfile.read(2)          # the CRLF after the chunk


def _status_line(line: bytes) -> tuple[str, int, str]:
    """(version, status, reason) of a status line (with its line end)."""
    parts = line.decode("iso-8859-1").rstrip("\r\n").split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") \
            or not parts[1].isdigit() or len(parts[1]) != 3:
        raise http.client.BadStatusLine(line.decode("iso-8859-1", "replace"))
    return parts[0], int(parts[1]), parts[2] if len(parts) > 2 else ""


def _header_line(fields: dict[str, str], line: str) -> None:
    """Adds one header line (decoded; its line end may still be on) to fields;
    repeated names are joined with ", ", lines without a colon are ignored."""
    name, sep, value = line.partition(":")
    if sep:
        key = name.strip().lower()
        value = value.strip()
        fields[key] = f"{fields[key]}, {value}" if key in fields else value


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
