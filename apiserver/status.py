"""``metav1.Status``: the one error shape every response of the extension API server uses.

kubectl prints ``Error from server (<reason>): <message>`` from these bodies, and client-go maps
``reason``/``code`` to typed errors (apimachinery ``metav1.StatusReason``). Handlers raise ``StatusError``;
the outermost middleware turns it (and aiohttp's own HTTP errors) into a Status response, so no
code path answers with plain text, HTML or a redirect.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def status_body(
    code: int, message: str, *, reason: str | None = None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or REASONS.get(code, ""),
        "code": code,
    }
    if details:
        body["details"] = details
    return body


class StatusError(Exception):
    """An error that becomes a ``metav1.Status`` response with HTTP status ``code``."""

    def __init__(
        self, code: int, message: str, *, reason: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.body = code, status_body(code, message, reason=reason, details=details)

    def response(self) -> web.Response:
        return status_response(self.body)


def status_response(body: dict[str, Any]) -> web.Response:
    return web.Response(status=int(body["code"]), body=orjson.dumps(body), content_type="application/json")


def not_found(resource: str, group: str, name: str) -> StatusError:
    qualified = f"{resource}.{group}" if group else resource
    return StatusError(
        404, f'{qualified} "{name}" not found', details={"name": name, "group": group, "kind": resource}
    )


def path_not_found() -> StatusError:
    return StatusError(404, "the server could not find the requested resource")


def bad_request(message: str) -> StatusError:
    return StatusError(400, message)
