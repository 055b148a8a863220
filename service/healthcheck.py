"""`python -m service.healthcheck`: exit 0 when the local server reports SERVING (container HEALTHCHECK).

It reads the service's own settings, so it speaks TLS (and mutual TLS) exactly when the server does, and
reports unhealthy while the server is NOT_SERVING (draining, or PostgreSQL unreachable)."""

from __future__ import annotations

import sys
from pathlib import Path

import grpc
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.config import ConfigError, Settings


def _target(listen_addr: str) -> str:
    if listen_addr.startswith("unix:"):
        return listen_addr
    host, _, port = listen_addr.rpartition(":")
    return f"{'127.0.0.1' if host in ('0.0.0.0', '[::]', '::', '') else host}:{port}"


def _certificate_name(pem: bytes) -> str:
    """The first DNS or IP name of the leaf certificate (what the client must verify), else its CN."""
    cert = x509.load_pem_x509_certificate(pem)
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = names.get_values_for_type(x509.DNSName)
        ips = names.get_values_for_type(x509.IPAddress)
        if dns:
            return str(dns[0])
        if ips:
            return str(ips[0])
    except x509.ExtensionNotFound:
        pass
    common = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(common[0].value) if common else "localhost"


def channel(settings: Settings) -> grpc.Channel:
    target = _target(settings.listen_addr)
    if not settings.tls_cert_file:
        return grpc.insecure_channel(target)
    served = Path(settings.tls_cert_file).read_bytes()
    roots = Path(settings.healthcheck_ca_file).read_bytes() if settings.healthcheck_ca_file else served
    key = cert = None
    if settings.tls_client_ca_file:
        cert = Path(settings.healthcheck_cert_file or settings.tls_cert_file).read_bytes()
        key = Path(settings.healthcheck_key_file or settings.tls_key_file).read_bytes()
    credentials = grpc.ssl_channel_credentials(root_certificates=roots, private_key=key, certificate_chain=cert)
    name = settings.healthcheck_server_name or _certificate_name(served)
    return grpc.secure_channel(target, credentials, options=[("grpc.ssl_target_name_override", name)])


def main() -> int:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        with channel(settings) as ch:
            reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=3)
    except grpc.RpcError as err:
        print(f"unhealthy: {err.code().name} {err.details() or ''}".rstrip(), file=sys.stderr)
        return 1
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        print(f"unhealthy: {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
