"""`python -m service.healthcheck`: exit 0 when the local server reports SERVING (container HEALTHCHECK)."""

from __future__ import annotations

import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main() -> int:
    host, _, port = os.environ.get("LISTEN_ADDR", "127.0.0.1:50051").rpartition(":")
    target = f"{'127.0.0.1' if host in ('0.0.0.0', '[::]', '') else host}:{port}"
    try:
        with grpc.insecure_channel(target) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
    except grpc.RpcError as err:
        print(f"unhealthy: {err.code().name}", file=sys.stderr)
        return 1
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main())
