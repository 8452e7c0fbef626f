"""The batch endpoint (/batch/calendar/v3): multipart/mixed in, multipart/mixed out.

Each part is an application/http request; it is dispatched in-process through the same
Dispatcher as a direct call. Outer headers (other than Content-*) apply to every inner request
unless the part overrides them, as Google documents. Responses keep the parts' order and echo
each Content-ID as "response-<id>", which is what google-api-python-client matches on.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import parse_qs, urlsplit

from . import errors
from .api import ApiRequest, ApiResponse, Dispatcher, reason_phrase
from .errors import ApiError

_BOUNDARY = re.compile(r'boundary=(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def _split_head(blob: bytes) -> tuple[list[str], bytes]:
    """Header lines and body of a MIME part or an HTTP message (CRLF or bare LF)."""
    match = _HEADER_END.search(blob)
    if match is None:
        head, body = blob, b""
    else:
        head, body = blob[: match.start()], blob[match.end():]
    return head.decode("utf-8", "replace").splitlines(), body


def _headers(lines: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            out[name.strip().lower()] = value.strip()
    return out


def _parts(body: bytes, content_type: str) -> list[bytes]:
    match = _BOUNDARY.search(content_type)
    if not content_type.lower().startswith("multipart/mixed") or match is None:
        raise errors.bad_request("Batch requests must be multipart/mixed with a boundary.",
                                 "badRequest")
    delimiter = b"--" + (match.group(1) or match.group(2)).encode()
    pieces = body.split(delimiter)
    parts = []
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            break
        parts.append(piece.removeprefix(b"\r\n").removeprefix(b"\n"))
    return parts


class BatchEndpoint:
    def __init__(self, dispatcher: Dispatcher, max_parts: int) -> None:
        self.dispatcher = dispatcher
        self.max_parts = max_parts

    def handle(self, body: bytes, outer_headers: dict[str, str], base_url: str
               ) -> tuple[int, dict[str, str], bytes]:
        try:
            parts = _parts(body, outer_headers.get("content-type", ""))
            if not parts:
                raise errors.bad_request("The batch request contains no parts.", "badRequest")
            if len(parts) > self.max_parts:
                raise errors.bad_request(
                    f"A batch request cannot contain more than {self.max_parts} calls.",
                    "badRequest")
        except ApiError as exc:
            response = ApiResponse.error(exc)
            return response.status, response.headers, response.body
        inherited = {k: v for k, v in outer_headers.items()
                     if not k.startswith("content-") and k not in ("host", "transfer-encoding")}
        boundary = f"batch_{secrets.token_urlsafe(12)}"
        chunks = []
        for part in parts:
            part_lines, http_message = _split_head(part)
            content_id = _headers(part_lines).get("content-id")
            response = self._dispatch(http_message, inherited, base_url)
            chunks.append(self._render_part(boundary, content_id, response))
        chunks.append(f"--{boundary}--\r\n".encode())
        return 200, {"Content-Type": f"multipart/mixed; boundary={boundary}"}, b"".join(chunks)

    def _dispatch(self, http_message: bytes, inherited: dict[str, str], base_url: str
                  ) -> ApiResponse:
        lines, body = _split_head(http_message)
        request_line = lines[0].split() if lines else []
        if len(request_line) < 2:
            return ApiResponse.error(errors.bad_request("Malformed batch part.", "badRequest"))
        target = urlsplit(request_line[1])
        headers = {**inherited, **_headers(lines[1:])}
        if "content-length" in headers:
            body = body[: int(headers["content-length"] or 0)]
        else:
            body = body.rstrip(b"\r\n")
        method = request_line[0].upper()
        if method == "POST" and "x-http-method-override" in headers:
            method = headers["x-http-method-override"].upper()
        request = ApiRequest(method=method, path=target.path,
                             params=parse_qs(target.query, keep_blank_values=True),
                             headers=headers, body=body, base_url=base_url)
        return self.dispatcher.handle(request, in_batch=True)

    @staticmethod
    def _render_part(boundary: str, content_id: str | None, response: ApiResponse) -> bytes:
        head = [f"--{boundary}", "Content-Type: application/http"]
        if content_id:
            inner = content_id[1:-1] if content_id.startswith("<") else content_id
            head.append(f"Content-ID: <response-{inner}>")
        head += ["", f"HTTP/1.1 {response.status} {reason_phrase(response.status)}"]
        head += [f"{name}: {value}" for name, value in response.headers.items()]
        head += [f"Content-Length: {len(response.body)}", "", ""]
        return "\r\n".join(head).encode() + response.body + b"\r\n"
