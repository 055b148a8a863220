"""Structured (JSON) logs."""

from __future__ import annotations

import atexit
import copy
import json
import logging
import logging.handlers
import queue
import sys
from datetime import UTC, datetime

from opentelemetry import trace


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)  # structured lines (the access log) pass extra={"fields": {...}}
        if isinstance(fields, dict):
            entry.update(fields)
        context = trace.get_current_span().get_span_context()
        if context.is_valid:  # lets logs and traces be joined
            entry["trace_id"] = f"{context.trace_id:032x}"
            entry["span_id"] = f"{context.span_id:016x}"
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class _Formatted(logging.handlers.QueueHandler):
    """Formats in the logging thread (where the trace context is), so only the finished line is queued."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        line = copy.copy(record)
        line.msg, line.args, line.exc_info, line.exc_text = self.format(record), None, None, None
        return line


_listener: logging.handlers.QueueListener | None = None


def configure(level: str) -> None:
    """JSON lines on stderr, written by a thread: a slow reader of stderr (a full pipe, a stalled log
    shipper) never stalls the event loop, whatever the access log's volume."""
    global _listener
    if _listener is not None:
        _listener.stop()
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    writer = logging.StreamHandler(sys.stderr)
    writer.setFormatter(logging.Formatter("%(message)s"))
    _listener = logging.handlers.QueueListener(lines, writer)
    _listener.start()
    atexit.register(_listener.stop)  # the last lines are written before the process exits
    handler = _Formatted(lines)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


class CancelledWriteFilter(logging.Filter):
    """A client that stops reading a stream is ordinary, but two libraries log it at ERROR; such records go
    down to DEBUG. gRPC logs ExecuteBatchError when a stream's next message meets a call the client has just
    cancelled, before gRPC itself has noticed the cancellation (its own check is racy). gRPC then leaves the
    stream's generator to the garbage collector, which closes it in another task: OpenTelemetry's server
    interceptor logs "Failed to detach context" there (opentelemetry-python-contrib#2357); its span has ended."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and _cancelled_write(record):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            record.exc_info = record.exc_text = None
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


def _cancelled_write(record: logging.LogRecord) -> bool:
    message = str(record.msg)
    if message.startswith("ExecuteBatchError raised in core"):
        return True
    error = record.exc_info[1] if record.exc_info else None
    return message == "Failed to detach context" and "created in a different Context" in str(error)


def quiet_cancelled_writes() -> None:
    """Installs CancelledWriteFilter on gRPC's server logger and OpenTelemetry's context logger once."""
    for name in ("grpc._cython.cygrpc", "opentelemetry.context"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, CancelledWriteFilter) for f in logger.filters):
            logger.addFilter(CancelledWriteFilter())
