"""gRPC's own log of a write racing a client's cancel is not an error of the service; other gRPC errors
stay errors."""

from __future__ import annotations

import logging

from service.logs import CancelledWriteFilter


def _record(message: str, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("grpc._cython.cygrpc", level, "server.pyx", 1, message, ("/svc/M",), None)


def test_a_write_to_a_cancelled_call_is_debug_not_error():
    record = _record("ExecuteBatchError raised in core by servicer method [%s]")
    shown = CancelledWriteFilter().filter(record)
    assert record.levelno == logging.DEBUG and shown == logging.getLogger().isEnabledFor(logging.DEBUG)


def test_other_grpc_errors_stay_errors():
    record = _record("Unexpected [%s] raised by servicer method [%s]")
    assert CancelledWriteFilter().filter(record) and record.levelno == logging.ERROR
