"""Loopback stand-ins for the outside world: an SMTP server, an HTTP server (push service, FCM and
its OAuth token endpoint), an HTTP/2 server (APNs), and a self-signed certificate for the TLS
variants."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, Session
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID
from hypercorn.asyncio import serve
from hypercorn.config import Config

# -- SMTP -------------------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes


class RecordingHandler:
    """Keeps what it accepts; `rcpt_replies` / `data_replies` script refusals, one per attempt."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.rcpt_replies: list[str] = []
        self.data_replies: list[str] = []
        self.attempts = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list) -> str:
        with self.lock:
            self.attempts += 1
            if self.rcpt_replies:
                return self.rcpt_replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session: Session, envelope: Envelope) -> str:
        with self.lock:
            if self.data_replies:
                return self.data_replies.pop(0)
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                          envelope.original_content or envelope.content))
        return "250 Message accepted for delivery"


class LoopbackController(Controller):
    """aiosmtpd's Controller on a port the OS picks (port=0), so parallel tests never collide."""

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def smtp_server(handler: RecordingHandler, **kwargs: object) -> LoopbackController:
    controller = LoopbackController(handler, hostname="127.0.0.1", port=0, **kwargs)
    controller.start()
    return controller


def password_checker(username: str, password: str) -> Callable:
    def check(server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = auth_data.login.decode() == username and auth_data.password.decode() == password
        return AuthResult(success=ok, handled=False)
    return check


# -- TLS --------------------------------------------------------------------------------


@dataclass
class Cert:
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


def self_signed(directory: Path) -> Cert:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return Cert(cert_file, key_file)


# -- HTTP -------------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    http_version: str = "1.1"

    def json(self) -> dict:
        return json.loads(self.body)


Reply = tuple[int, dict, bytes]


@dataclass
class HttpServer:
    """A loopback HTTP server that records every request and answers through `respond`."""

    respond: Callable[[Request], Reply]
    requests: list[Request] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def start(self) -> HttpServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                req = Request(self.command, self.path,
                              {k.lower(): v for k, v in self.headers.items()},
                              self.rfile.read(length))
                outer.requests.append(req)
                try:
                    status, headers, body = outer.respond(req)
                except Exception as exc:  # noqa: BLE001 (a failed check in the stand-in: the test sees it)
                    outer.errors.append(f"{type(exc).__name__}: {exc}")
                    status, headers, body = 500, {}, b"stand-in error"
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET = do_DELETE = _any

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def to(self, prefix: str) -> list[Request]:
        return [r for r in self.requests if r.path.startswith(prefix)]


@dataclass
class Http2Server:
    """Like HttpServer, but HTTP/2 only (hypercorn serving a small ASGI app): over TLS with
    `cert`, offering only h2 by ALPN as Apple does; else cleartext by prior knowledge (h2c)."""

    respond: Callable[[Request], Reply]
    cert: Cert | None = None
    requests: list[Request] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def app(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            await receive()  # startup
            await send({"type": "lifespan.startup.complete"})
            await receive()  # shutdown
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        req = Request(scope["method"], scope["raw_path"].decode(),
                      {k.decode(): v.decode() for k, v in scope["headers"]}, body,
                      scope["http_version"])
        self.requests.append(req)
        try:
            status, headers, content = self.respond(req)
        except Exception as exc:  # noqa: BLE001 (a failed check in the stand-in: the test sees it)
            self.errors.append(f"{type(exc).__name__}: {exc}")
            status, headers, content = 500, {}, b"stand-in error"
        await send({"type": "http.response.start", "status": status,
                    "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]})
        await send({"type": "http.response.body", "body": content})

    def start(self) -> Http2Server:
        # A socket bound here, so the port is known before the server runs; hypercorn owns it.
        sock = socket.create_server(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = Config()
        config.bind = [f"fd://{sock.detach()}"]
        config.graceful_timeout = 0.5
        config.accesslog = config.errorlog = None
        if self.cert is not None:
            config.certfile, config.keyfile = str(self.cert.cert_file), str(self.cert.key_file)
            config.alpn_protocols = ["h2"]
        self.loop = asyncio.new_event_loop()
        self.stopping = asyncio.Event()
        self.thread = threading.Thread(
            target=self.loop.run_until_complete,
            args=(serve(self.app, config, shutdown_trigger=self.stopping.wait),), daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        return f"{'https' if self.cert else 'http'}://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(timeout=5)
        self.loop.close()


def json_reply(status: int, body: dict) -> Reply:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


# -- APNs -------------------------------------------------------------------------------


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def apns_reply(status: int, reason: str) -> Reply:
    """An error as APNs words it: {"reason": …}; a 410 also says when the token went dead."""
    body: dict = {"reason": reason}
    if status == 410:
        body["timestamp"] = 1772442000000
    return json_reply(status, body)


class Apns:
    """APNs' provider API on a loopback HTTP/2 server. Each request's provider JWT must be
    signed ES256 by the private half of `public_key`, name `key_id` and `team_id`, and be under
    an hour old by `clock`, else a 403 as Apple's. Records every request; answers 200 unless
    `scripted` holds replies for the device token (one per request)."""

    def __init__(self, public_key: ec.EllipticCurvePublicKey, key_id: str, team_id: str,
                 clock: Callable[[], dt.datetime], cert: Cert | None = None) -> None:
        self.public_key, self.key_id, self.team_id, self.clock = public_key, key_id, team_id, clock
        self.scripted: dict[str, list[Reply]] = {}
        self.expired: set[str] = set()  # JWTs to call ExpiredProviderToken whatever their age
        self.answered: list[tuple[Request, int]] = []
        self.server = Http2Server(self.respond, cert).start()

    @property
    def url(self) -> str:
        return self.server.url

    def respond(self, req: Request) -> Reply:
        status, headers, body = self.answer(req)
        self.answered.append((req, status))
        return status, headers, body

    def answer(self, req: Request) -> Reply:
        if req.method != "POST" or not req.path.startswith("/3/device/"):
            return apns_reply(404, "BadPath")
        refusal = self.check_token(req.headers.get("authorization", ""))
        if refusal:
            return refusal
        if self.scripted.get(self.device(req)):
            return self.scripted[self.device(req)].pop(0)
        return 200, {"apns-id": req.headers.get("apns-id", "")}, b""

    def check_token(self, authorization: str) -> Reply | None:
        if not authorization.startswith("bearer "):
            return apns_reply(403, "MissingProviderToken")
        jwt = authorization.removeprefix("bearer ")
        try:
            header, claims, signature = jwt.split(".")
            raw = b64url_decode(signature)
            if len(raw) != 64:  # JWS ES256: r||s, not DER
                raise ValueError("signature is not 64 bytes")
            self.public_key.verify(
                encode_dss_signature(int.from_bytes(raw[:32], "big"),
                                     int.from_bytes(raw[32:], "big")),
                f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
            header_fields = json.loads(b64url_decode(header))
            claim_fields = json.loads(b64url_decode(claims))
        except (ValueError, InvalidSignature):
            return apns_reply(403, "InvalidProviderToken")
        if (header_fields != {"alg": "ES256", "kid": self.key_id}
                or set(claim_fields) != {"iss", "iat"} or claim_fields["iss"] != self.team_id
                or not isinstance(claim_fields["iat"], int)):
            return apns_reply(403, "InvalidProviderToken")
        age = self.clock().timestamp() - claim_fields["iat"]
        if jwt in self.expired or age > 3600:
            return apns_reply(403, "ExpiredProviderToken")
        return None

    @staticmethod
    def device(req: Request) -> str:
        return req.path.removeprefix("/3/device/")

    @staticmethod
    def jwt(req: Request) -> str:
        return req.headers["authorization"].removeprefix("bearer ")

    def delivered(self) -> list[Request]:
        """The requests APNs accepted (answered 200), in order."""
        return [r for r, status in self.answered if status == 200]
