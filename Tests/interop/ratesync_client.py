"""Acquires from a rate-sync limiter the way a Python service would, for the interop tests.

usage: ratesync_client.py CONFIG LIMITER IDENTIFIER ATTEMPTS [release]
prints the number of attempts admitted ("release" gives each acquired max_concurrent slot back at
once; without it, the slots stay taken when the process ends).
"""
import asyncio
import os
import sys

# rate-sync loads its configuration when imported (RATE_SYNC_CONFIG first, then ./rate-sync.toml):
# point it at the test's file before the import, whatever the working directory holds.
os.environ["RATE_SYNC_CONFIG"] = sys.argv[1]

from ratesync.registry import get_or_clone_limiter  # noqa: E402


async def main() -> None:
    limiter_id, identifier, attempts = sys.argv[2], sys.argv[3], int(sys.argv[4])
    release = sys.argv[5:] == ["release"]
    limiter = await get_or_clone_limiter(limiter_id, identifier)
    admitted = 0
    for _ in range(attempts):
        if await limiter.try_acquire(timeout=0):
            admitted += 1
            if release:
                await limiter.release()
    print(admitted)


asyncio.run(main())
