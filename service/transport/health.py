"""grpc.health.v1 status that follows the database: NOT_SERVING while PostgreSQL does not answer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from grpc_health.v1 import health, health_pb2

log = logging.getLogger(__name__)
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class DatabaseHealth:
    """Probes the database every `interval` seconds and sets every service name's status from it."""

    def __init__(
        self,
        servicer: health.aio.HealthServicer,
        names: Sequence[str],
        ping: Callable[[float], Awaitable[bool]],
        interval: float = 1.0,
    ) -> None:
        self.servicer = servicer
        self.names = tuple(names)
        self.ping = ping
        self.interval = interval
        self.serving: bool | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._probe()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self._probe()
            except Exception:  # a probe must never end the monitor
                log.exception("health probe failed")

    async def _probe(self) -> None:
        up = await self.ping(self.interval * 2)
        if up == self.serving:
            return
        before, self.serving = self.serving, up
        if not up:
            log.warning("database unreachable: health is NOT_SERVING")
        elif before is not None:
            log.info("database reachable again: health is SERVING")
        for name in self.names:
            await self.servicer.set(name, SERVING if up else NOT_SERVING)
