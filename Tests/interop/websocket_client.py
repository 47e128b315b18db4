"""A WebSocket client (the `websockets` library) for the gateway's tunnel tests.

usage: websocket_client.py MODE URL [ARG]
  echo URL COUNT      send COUNT messages (text and binary, 0 to 64 KiB), expect each back in
                      order; prints "echoed COUNT"
  handshakes URL N    N handshakes one after another; prints their statuses, e.g. "101 101 429"
  concurrent URL      opens two tunnels and keeps them open, tries a third, closes one, then tries
                      again until it opens (5 s at most); prints a JSON object of what happened
  idle URL            opens a tunnel and sends nothing; prints "closed after S" once it closes
"""
import asyncio
import json
import os
import sys
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus


async def status_of(url):
    """101 and the open connection, or the refusal's status and None."""
    try:
        return 101, await connect(url, open_timeout=5, max_size=None)
    except InvalidStatus as error:
        return error.response.status_code, None


async def echo(url, count):
    async with connect(url, open_timeout=5, max_size=None) as websocket:
        for index in range(count):
            size = (index * 997) % 65536
            message = os.urandom(size) if index % 2 else ("m%d " % index) * (size // 8)
            await websocket.send(message)
            answer = await asyncio.wait_for(websocket.recv(), 5)
            if answer != message:
                raise SystemExit(f"message {index} came back different")
    print(f"echoed {count}")


async def handshakes(url, count):
    statuses = []
    for _ in range(count):
        status, websocket = await status_of(url)
        statuses.append(str(status))
        if websocket is not None:
            await websocket.close()
    print(" ".join(statuses))


async def concurrent(url):
    first_status, first = await status_of(url)
    second_status, second = await status_of(url)
    third_status, third = await status_of(url)
    # The open tunnels still work while the third is refused.
    for websocket in (first, second):
        if websocket is not None:
            await websocket.send("still here")
            assert await asyncio.wait_for(websocket.recv(), 5) == "still here"
    if first is not None:
        await first.close()
    deadline = time.monotonic() + 5
    after_close = None
    while time.monotonic() < deadline:
        after_close, fourth = await status_of(url)
        if fourth is not None:
            await fourth.close()
            break
        await asyncio.sleep(0.05)
    print(json.dumps({"first": first_status, "second": second_status, "third": third_status, "after_close": after_close}))
    for websocket in (second, third):
        if websocket is not None:
            await websocket.close()


async def idle(url):
    async with connect(url, open_timeout=5, ping_interval=None) as websocket:
        started = time.monotonic()
        try:
            await asyncio.wait_for(websocket.recv(), 20)
        except ConnectionClosed:
            pass
        print(f"closed after {time.monotonic() - started:.2f}")


mode, url = sys.argv[1], sys.argv[2]
if mode == "echo":
    asyncio.run(echo(url, int(sys.argv[3])))
elif mode == "handshakes":
    asyncio.run(handshakes(url, int(sys.argv[3])))
elif mode == "concurrent":
    asyncio.run(concurrent(url))
elif mode == "idle":
    asyncio.run(idle(url))
else:
    raise SystemExit(f"unknown mode {mode}")
