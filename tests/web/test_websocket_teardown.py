"""A closed websocket's consumer ends: nothing is left polling Redis behind it.

Every consumer listens on the real Redis channel layer (channels_redis, redis-py's
asyncio client). When the page goes away, Channels cancels that listener; if the
cancellation is lost (redis-py wraps writes in asyncio.wait_for when a socket timeout is
set, and Python 3.11's wait_for can swallow a cancel that lands as the write completes),
the listener loops on BZPOPMIN for ever: one Redis connection and a wake-up every five
seconds per page ever closed, and a test's event loop that never closes. The window is
a few microseconds wide, so this closes many sockets at varied moments of the listener's
start-up.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from tests.web.test_streams import socket_to

pytestmark = pytest.mark.usefixtures("transactional_db", "redis_server")

SOCKETS = 400


def test_every_closed_websocket_ends_its_consumer() -> None:
    chance = random.Random(20261123)  # fixed: a failure replays the same moments

    async def open_and_close() -> bool:
        # Refused by the Origin check: the quickest consumer, all of its time spent
        # starting the channel-layer listener that the disconnect then cancels.
        ws = socket_to("/ws/jobs/1/", None, origin=b"http://evil.example")
        connected, _ = await ws.connect()
        assert not connected
        await asyncio.sleep(chance.random() * 0.02)
        await ws.send_input({"type": "websocket.disconnect", "code": 1001})
        try:
            await asyncio.wait_for(asyncio.shield(ws.future), 10)
        except TimeoutError:
            ws.future.cancel()
            return False
        return True

    async def scenario() -> int:
        lingering = 0
        for _ in range(SOCKETS):
            lingering += not await open_and_close()
            if lingering:
                break
        return lingering

    loop = asyncio.new_event_loop()
    lingering = loop.run_until_complete(scenario())
    # Closing the loop would wait for ever on a lingering consumer: only a clean one is.
    assert lingering == 0, "a closed websocket's consumer kept running after the close"
    loop.close()
