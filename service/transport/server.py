"""The grpc.aio server: interceptors, options, the registered services, health, reflection, listening.

What the services run on (pool, handlers, workers) is composed by service/bootstrap.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from service.config import Settings, StartupError
from service.handlers.auth import Keys
from service.transport.auth import AuthInterceptor
from service.transport.errors import ErrorMappingInterceptor
from service.transport.guard import GuardServices
from service.transport.interceptors import Call, WrappingInterceptor, chained
from service.transport.observe import CallObserver
from service.transport.policy import INVOICE_SERVICE, PUSH_SERVICE, write_paths
from service.transport.push_servicer import PushOperationServicer
from service.transport.reflection import enable_reflection
from service.transport.servicers import InvoiceServicer
from service.transport.tracing import server_tracing
from service.transport.wire import add_service

SERVICE_NAMES = (INVOICE_SERVICE.full_name, PUSH_SERVICE.full_name)


def new_server(settings: Settings, keys: Keys, observer: CallObserver | None) -> grpc.aio.Server:
    """The server with its interceptors, outermost first: tracing (it sees the final status code), the
    observer (inside tracing, so its span is current), the served-by trailer, the error map (it maps
    whatever auth or the handler raises), authentication."""
    interceptors = chained(
        [
            *(server_tracing() if settings.tracing else []),
            *([observer] if observer is not None else []),
            *([ServedByInterceptor()] if settings.reuse_port else []),
            ErrorMappingInterceptor(),
            *([AuthInterceptor(keys, write_paths(INVOICE_SERVICE))] if settings.auth_required else []),
        ]
    )
    return grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            ("grpc.so_reuseport", 1 if settings.reuse_port else 0),
            # Streams beyond this wait in the client (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS): one connection
            # cannot pile up stalled streams and their buffers.
            ("grpc.max_concurrent_streams", settings.max_streams_per_connection),
            *connection_options(settings),
        ],
    )


def register(
    server: grpc.aio.Server, invoices: InvoiceServicer, push: PushOperationServicer, services: GuardServices
) -> health.aio.HealthServicer:
    """Both services behind the guard, health and reflection; the health servicer to drive."""
    add_service(server, INVOICE_SERVICE, invoices, services)
    add_service(server, PUSH_SERVICE, push, services)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    enable_reflection((*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name), server)
    return health_servicer


def listen(server: grpc.aio.Server, settings: Settings) -> int:
    """Plaintext by default; TLS with a certificate and key; mutual TLS with a client CA too."""
    try:
        port = _bind(server, settings)
    except RuntimeError as exc:  # grpc's "Failed to bind": in use, or not an address of this machine
        raise StartupError(
            f"LISTEN_ADDR={settings.listen_addr!r}: cannot listen there (the port is in use, or the address is "
            "not one of this machine's)"
        ) from exc
    if port == 0:
        raise SystemExit(f"cannot listen on {settings.listen_addr}")
    return port


def _bind(server: grpc.aio.Server, settings: Settings) -> int:
    if not settings.tls_cert_file:
        return server.add_insecure_port(settings.listen_addr)
    cert = Path(settings.tls_cert_file).read_bytes()
    key = Path(settings.tls_key_file).read_bytes()
    client_ca = Path(settings.tls_client_ca_file).read_bytes() if settings.tls_client_ca_file else None
    credentials = grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )
    return server.add_secure_port(settings.listen_addr, credentials)


def connection_options(settings: Settings) -> list[tuple[str, int]]:
    """Keepalive (dead peers are found, idle client pings allowed) and a connection age, after which a
    client reconnects, so load spreads over replicas that joined a load balancer after it connected."""
    options = [
        ("grpc.keepalive_time_ms", settings.keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", settings.keepalive_timeout_ms),
        ("grpc.http2.min_ping_interval_without_data_ms", settings.min_ping_interval_ms),
        ("grpc.keepalive_permit_without_calls", int(settings.keepalive_permit_without_calls)),
        ("grpc.http2.max_pings_without_data", 0),  # the server's own keepalive pings on idle connections
    ]
    if settings.max_connection_age_ms:
        grace = settings.max_connection_age_grace_ms or 2**31 - 1
        options += [("grpc.max_connection_age_ms", settings.max_connection_age_ms)]
        options += [("grpc.max_connection_age_grace_ms", grace)]
    return options


class ServedByInterceptor(WrappingInterceptor):
    """With several serving processes, unary answers carry `x-served-by-pid`, to see who answered."""

    kinds = frozenset({"unary_unary"})

    def __init__(self) -> None:
        self.trailer = (("x-served-by-pid", str(os.getpid())),)

    async def enter(self, call: Call) -> None:
        call.context.set_trailing_metadata(self.trailer)
