"""``GET /events``: server-sent events for every VM created, changing state, or deleted."""

from __future__ import annotations

import asyncio
import json

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from glidex_core.api.schemas import VmResponse
from glidex_core.supervisor import Supervisor, VmEvent

KEEPALIVE_SECONDS = 15.0
QUEUE_LIMIT = 1000  # a client this far behind is cut off rather than grow memory


def event_payload(event: VmEvent, supervisor: Supervisor) -> dict:
    return {
        "type": event.kind,
        "vm": VmResponse.of(event.vm, supervisor.paths).model_dump(),
        "reason": event.reason,
        "at": event.at,
    }


def install_event_stream(app: FastAPI, supervisor: Supervisor) -> None:
    @app.get("/events", response_class=StreamingResponse,
             responses={200: {"content": {"text/event-stream": {}}}})
    async def events(request: Request) -> StreamingResponse:
        """Server-sent events: `created`, `state` (with a reason) and `deleted`."""
        queue: asyncio.Queue[VmEvent | None] = asyncio.Queue(QUEUE_LIMIT)

        def deliver(event: VmEvent) -> None:
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                queue._queue.clear()  # noqa: SLF001 - make room for the end marker only
                queue.put_nowait(None)

        unsubscribe = supervisor.subscribe(deliver)

        async def stream():
            try:
                yield ": connected\n\n"
                while True:
                    try:
                        event = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                    except TimeoutError:
                        yield ": keepalive\n\n"
                        continue
                    if event is None:
                        yield "event: overflow\ndata: {}\n\n"
                        return
                    data = json.dumps(event_payload(event, supervisor))
                    yield f"event: {event.kind}\ndata: {data}\n\n"
            finally:
                unsubscribe()

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})
