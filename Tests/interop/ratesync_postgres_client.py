"""Acquires from rate-sync's Postgres engine the way a Python service would, for the interop
tests. The limiter is built directly (rate-sync's config loader refuses sliding_window on
Postgres, which its engine implements), named as rate-sync's clone_limiter names it:
"<limiter>:<identifier>".

usage: ratesync_postgres_client.py URL LIMITER IDENTIFIER ATTEMPTS KEY=VALUE...
  keys: rate_per_second, limit, window_seconds, max_concurrent (numbers); release=1 gives each
  acquired slot back at once.
prints the number of attempts admitted.
"""
import asyncio
import os
import sys
import tempfile

# rate-sync reads ./rate-sync.toml when imported: import it from an empty directory (removed
# when the script exits).
scratch = tempfile.TemporaryDirectory()
os.chdir(scratch.name)

from ratesync.engines.postgres import PostgresRateLimiter  # noqa: E402


async def main() -> None:
    url, limiter_id, identifier, attempts = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    options = dict(argument.split("=", 1) for argument in sys.argv[5:])
    release = options.pop("release", "0") == "1"
    numbers = {key: (float(value) if key == "rate_per_second" else int(value)) for key, value in options.items()}
    limiter = PostgresRateLimiter(connection_url=url, group_id=f"{limiter_id}:{identifier}", fail_closed=True, **numbers)
    await limiter.initialize()
    admitted = 0
    for _ in range(attempts):
        if await limiter.try_acquire(timeout=0):
            admitted += 1
            if release:
                await limiter.release()
    await limiter.disconnect()
    print(admitted)


asyncio.run(main())
