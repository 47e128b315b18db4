"""A WebSocket upstream (the `websockets` library): every message is sent back as it came.

usage: websocket_upstream.py
prints "listening on 127.0.0.1:PORT"; then serves until killed.
"""
import asyncio

from websockets.asyncio.server import serve


async def echo(websocket):
    async for message in websocket:
        await websocket.send(message)


async def main():
    async with serve(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening on 127.0.0.1:{port}", flush=True)
        await asyncio.get_running_loop().create_future()


asyncio.run(main())
