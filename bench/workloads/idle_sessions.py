"""Hold many idle sessions open for bench/workloads/idle.sh.

Opens --count sessions (at most --parallel connecting at once, so the run is quick without a
thundering herd), writes "ok N failed F seconds S" and the first distinct errors to --ready,
then keeps them open and idle until the file --release exists, and closes them.
"""

import argparse
import asyncio
import os
import sys
import time

import psycopg


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--parallel", type=int, default=50)
    ap.add_argument("--ready", required=True)
    ap.add_argument("--release", required=True)
    ap.add_argument("--max-hold", type=float, default=600, help="seconds; never outlive a dead driver")
    a = ap.parse_args()

    dsn = f"host=127.0.0.1 port={a.port} user=bench dbname=crm sslmode=disable connect_timeout=30"
    gate = asyncio.Semaphore(a.parallel)
    conns, errors = [], []

    async def open_one() -> None:
        async with gate:
            try:
                # connect() returns after ReadyForQuery, i.e. once startup has completed.
                conns.append(await psycopg.AsyncConnection.connect(dsn, autocommit=True))
            except Exception as e:  # every failure is counted and reported, none is fatal
                errors.append(f"{type(e).__name__}: {e}".strip())

    t0 = time.monotonic()
    await asyncio.gather(*(open_one() for _ in range(a.count)))
    took = time.monotonic() - t0

    distinct = list(dict.fromkeys(e.replace("\n", " ") for e in errors))[:5]
    tmp = a.ready + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"ok {len(conns)} failed {len(errors)} seconds {took:.2f}\n")
        f.writelines(e + "\n" for e in distinct)
    os.replace(tmp, a.ready)  # the driver polls for the file: it must appear complete

    deadline = time.monotonic() + a.max_hold
    while not os.path.exists(a.release) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
