"""Logs as one JSON object a line on stdout (journald keeps them); secrets are masked."""

from __future__ import annotations

import json
import logging
import re
import sys

from syncd.settings import LogSettings

# Bearer tokens, OAuth codes/tokens and passwords in URLs or messages never reach the log.
SECRET = re.compile(
    r"(?i)(bearer\s+|(?:access_token|refresh_token|code|client_secret|password|token)[\"']?\s*[=:]\s*[\"']?)"
    r"[^\s&\"',}]+"
)
STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def redact(text: str) -> str:
    return SECRET.sub(lambda m: m.group(1) + "***", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        out.update({k: redact(str(v)) for k, v in vars(record).items() if k not in STANDARD})
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup(settings: LogSettings) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if settings.json_format
                         else PlainFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
    for noisy in ("uvicorn.access", "httpx", "googleapiclient.discovery_cache"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
