"""A billing_hotline agent's day with asyncpg, which prepares every statement, reads every result in
binary and introspects types with its own catalog queries. Prints what it receives, rows, errors and
notices, so the test can check the workflow works and that no protected sample value arrives."""
import asyncio
import sys

import asyncpg


async def main(host: str, port: int) -> None:
    conn = await asyncpg.connect(host=host, port=port, user="agent_wasser", password="wasser",
                                 database="crm", ssl=False)
    conn.add_log_listener(lambda _c, m: print("NOTICE", m.message))
    row = await conn.fetchrow(
        "SELECT customer_no, name, phone, email, iban FROM stadtwerke.customers WHERE customer_no = $1", 1001)
    print("BY_NO", dict(row))
    print("BY_PHONE", await conn.fetchval(
        "SELECT name FROM stadtwerke.customers WHERE phone = $1", "+49 30 1234567"))
    for r in await conn.fetch("SELECT * FROM stadtwerke.customers ORDER BY customer_no"):
        print("ALL", dict(r))
    # Rolled back, so the shared test cluster's tickets stay as other tests expect them.
    tr = conn.transaction()
    await tr.start()
    if True:
        ticket = await conn.fetchval(
            "INSERT INTO stadtwerke.tickets (customer_no, subject, note) VALUES ($1, $2, $3) RETURNING ticket_id",
            1001, "Abschlag", "Kundin ruft an")
        await conn.execute("UPDATE stadtwerke.tickets SET status = $1 WHERE ticket_id = $2", "closed", ticket)
        print("TICKET", await conn.fetchval("SELECT status FROM stadtwerke.tickets WHERE ticket_id = $1", ticket))
        # asyncpg's cursors are portals read in batches (Execute with a row limit).
        async for r in conn.cursor("SELECT customer_no, phone, iban FROM stadtwerke.customers ORDER BY 1",
                                   prefetch=1):
            print("CURSOR", dict(r))
    await tr.rollback()
    stmt = await conn.prepare("SELECT m.read_on, m.cubic_m FROM stadtwerke.meter_readings m "
                              "WHERE m.customer_no = $1 ORDER BY m.read_on")
    print("READINGS", len(await stmt.fetch(1001)), [a.name for a in stmt.get_attributes()])
    for bad in ["SELECT lower(iban) FROM stadtwerke.customers",
                "SELECT birth_date FROM stadtwerke.customers"]:
        try:
            await conn.fetch(bad)
            print("UNEXPECTED SUCCESS", bad)
        except asyncpg.PostgresError as e:
            print("ERROR", e.sqlstate, e.message)
    print("PING", await conn.fetchval("SELECT 1"))
    await conn.close()
    print("DONE")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
