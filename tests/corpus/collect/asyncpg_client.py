"""asyncpg: connection setup, type introspection, prepared statements, cursors, COPY, pool reset."""
import asyncio
import datetime
import io
from decimal import Decimal

import asyncpg

from common import DB, HOST, PASSWORD, PORT, USER, step

C = "asyncpg"
KW = dict(host=HOST, port=PORT, user=USER, password=PASSWORD, database=DB,
          server_settings={"application_name": C})


async def main():
    step(C, "connect")
    conn = await asyncpg.connect(**KW)

    step(C, "fetch with $n on text/int/date/numeric/bool")
    await conn.fetch("SELECT customer_no, name FROM stadtwerke.customers WHERE phone = $1",
                     "+49 30 1234567")
    await conn.fetch("SELECT * FROM stadtwerke.meter_readings WHERE customer_no = $1 "
                     "AND read_on >= $2 AND cubic_m > $3 AND estimated = $4",
                     1001, datetime.date(2026, 1, 1), Decimal("50.00"), False)
    step(C, "fetchrow / fetchval")
    await conn.fetchrow("SELECT name, birth_date FROM stadtwerke.customers WHERE customer_no = $1", 1002)
    await conn.fetchval("SELECT count(*) FROM stadtwerke.tickets WHERE status = $1", "open")

    step(C, "composite row (type introspection)")
    await conn.fetchrow("SELECT c FROM stadtwerke.customers c WHERE c.customer_no = $1", 1001)
    step(C, "array of composite / text[] (type introspection)")
    await conn.fetchval("SELECT array_agg(p) FROM public.postcodes p WHERE p.city = ANY($1::text[])",
                        ["Berlin", "Köln"])

    step(C, "set_type_codec (type lookup by name)")
    await conn.set_type_codec("numeric", encoder=str, decoder=str, schema="pg_catalog",
                              format="text")
    await conn.fetchval("SELECT cubic_m FROM stadtwerke.meter_readings WHERE reading_id = $1", 1)
    await conn.set_type_codec("postcodes", schema="public", encoder=tuple, decoder=tuple,
                              format="tuple")
    await conn.fetchval("SELECT p FROM public.postcodes p WHERE p.postcode = $1", "10115")

    step(C, "prepared statement")
    stmt = await conn.prepare("SELECT name, city FROM stadtwerke.customers WHERE customer_no = $1")
    await stmt.fetchrow(1001)
    await stmt.fetchrow(1003)

    step(C, "execute without arguments (simple protocol)")
    await conn.execute("UPDATE stadtwerke.tickets SET status = 'open' WHERE ticket_id = 0")
    step(C, "execute with arguments")
    await conn.execute("UPDATE stadtwerke.tickets SET status = $1 WHERE ticket_id = $2", "open", 0)

    step(C, "cursor inside transaction")
    async with conn.transaction():
        async for _rec in conn.cursor("SELECT reading_id, read_on FROM stadtwerke.meter_readings "
                                      "WHERE customer_no > $1", 1000, prefetch=2):
            pass
        cur = await conn.cursor("SELECT postcode, city FROM public.postcodes ORDER BY postcode")
        await cur.fetch(2)
        await cur.forward(1)
        await cur.fetchrow()

    step(C, "transaction with isolation and nested savepoint")
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        try:
            async with conn.transaction():
                await conn.fetchval("SELECT 1 / $1", 0)
        except asyncpg.DivisionByZeroError:
            pass

    step(C, "copy_from_query")
    await conn.copy_from_query("SELECT customer_no, name FROM stadtwerke.customers",
                               output=io.BytesIO(), format="csv")
    step(C, "copy_from_query with arguments")
    await conn.copy_from_query("SELECT customer_no, name FROM stadtwerke.customers "
                               "WHERE city = $1 AND customer_no > $2",
                               "Berlin", 1000, output=io.BytesIO())
    step(C, "copy_records_to_table")
    await conn.copy_records_to_table("tickets", schema_name="stadtwerke",
                                     columns=["customer_no", "subject", "note"],
                                     records=[(1001, "Kopie", "asyncpg copy")])

    step(C, "executemany")
    await conn.executemany(
        "INSERT INTO stadtwerke.tickets (customer_no, subject, note) VALUES ($1, $2, $3)",
        [(1001, "Rückruf", "asyncpg 1"), (1002, "Rückruf", "asyncpg 2")])

    step(C, "close")
    await conn.close()

    step(C, "pool: connect, acquire")
    pool = await asyncpg.create_pool(min_size=1, max_size=1, **KW)
    async with pool.acquire() as pconn:
        await pconn.fetchval("SELECT name FROM stadtwerke.customers WHERE customer_no = $1", 1004)
        step(C, "pool: release (connection reset)")
    step(C, "pool: close")
    await pool.close()


asyncio.run(main())
