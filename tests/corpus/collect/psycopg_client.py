"""psycopg 3: what the driver sends for ordinary application use."""
import psycopg
from psycopg.types import TypeInfo
from psycopg.types.composite import CompositeInfo, register_composite
from psycopg.types.range import RangeInfo

from common import DB, HOST, PASSWORD, PORT, USER, step

C = "psycopg"
step(C, "connect")
conn = psycopg.connect(host=HOST, port=PORT, user=USER, password=PASSWORD, dbname=DB,
                       application_name=C)

step(C, "execute with %s parameter (implicit BEGIN)")
cur = conn.cursor()
cur.execute("SELECT customer_no, name FROM stadtwerke.customers WHERE phone = %s",
            ("+49 30 1234567",))
cur.fetchall()

step(C, "executemany insert")
cur.executemany(
    "INSERT INTO stadtwerke.tickets (customer_no, subject, note) VALUES (%s, %s, %s)",
    [(1001, "Rückruf", "psycopg 1"), (1002, "Rückruf", "psycopg 2"), (1003, "Rückruf", None)])
step(C, "commit")
conn.commit()

step(C, "executemany insert with returning")
cur.executemany(
    "INSERT INTO stadtwerke.tickets (customer_no, subject) VALUES (%s, %s) RETURNING ticket_id",
    [(1004, "Rückruf"), (1005, "Rückruf")], returning=True)
conn.commit()

step(C, "server-side cursor")
with conn.cursor(name="c") as scur:
    scur.itersize = 2
    scur.execute("SELECT reading_id, read_on, cubic_m, estimated FROM stadtwerke.meter_readings "
                 "WHERE customer_no = %s ORDER BY read_on", (1001,))
    scur.fetchmany(1)
    scur.fetchall()
conn.commit()

step(C, "copy read")
with cur.copy("COPY (SELECT customer_no, name FROM stadtwerke.customers) TO STDOUT") as cp:
    for _row in cp.rows():
        pass
step(C, "copy read with parameter")
with cur.copy("COPY (SELECT customer_no, name FROM stadtwerke.customers WHERE city = %s) TO STDOUT",
              ("Berlin",)) as cp:
    for _row in cp:
        pass
conn.commit()

step(C, "conn.execute SELECT 1")
conn.execute("SELECT 1").fetchone()

step(C, "rollback")
conn.execute("INSERT INTO stadtwerke.tickets (customer_no, subject) VALUES (%s, %s)",
             (1001, "verworfen"))
conn.rollback()

step(C, "TypeInfo.fetch")
TypeInfo.fetch(conn, "numeric")
TypeInfo.fetch(conn, "hstore")  # not installed: returns None, but the query is sent
step(C, "RangeInfo.fetch")
RangeInfo.fetch(conn, "daterange")
step(C, "CompositeInfo.fetch + register_composite")
info = CompositeInfo.fetch(conn, "stadtwerke.customers")
register_composite(info, conn)
step(C, "select composite row")
conn.execute("SELECT c FROM stadtwerke.customers c WHERE c.customer_no = %s", (1001,)).fetchone()
conn.commit()

step(C, "prepare=True")
for no in (1001, 1002):
    conn.execute("SELECT name, city FROM stadtwerke.customers WHERE customer_no = %s", (no,),
                 prepare=True).fetchone()
step(C, "auto-prepare after prepare_threshold executions")
for no in range(1001, 1008):
    conn.execute("SELECT read_on, cubic_m FROM stadtwerke.meter_readings WHERE customer_no = %s",
                 (no,)).fetchall()
conn.commit()

step(C, "binary result")
conn.cursor(binary=True).execute(
    "SELECT birth_date, iban FROM stadtwerke.customers WHERE customer_no = %s", (1003,)).fetchone()
conn.commit()

step(C, "ClientCursor (client-side binding)")
ccur = psycopg.ClientCursor(conn)
ccur.execute("SELECT name FROM stadtwerke.customers WHERE city = %s AND birth_date < %s",
             ("Köln", "1960-01-01"))
ccur.fetchall()
conn.commit()

step(C, "autocommit + transaction() with nested savepoint")
conn.autocommit = True
with conn.transaction():
    conn.execute("UPDATE stadtwerke.tickets SET status = %s WHERE note = %s", ("closed", "psycopg 1"))
    try:
        with conn.transaction():
            conn.execute("UPDATE stadtwerke.tickets SET status = %s WHERE note = %s",
                         ("closed", "psycopg 2"))
            raise RuntimeError("roll back to savepoint")
    except RuntimeError:
        pass

step(C, "pipeline")
with conn.pipeline():
    conn.execute("SELECT count(*) FROM stadtwerke.tickets WHERE customer_no = %s", (1001,))
    conn.execute("SELECT count(*) FROM stadtwerke.meter_readings WHERE estimated = %s", (True,))

step(C, "stream (single-row mode)")
with conn.cursor() as scur:
    for _r in scur.stream("SELECT postcode, city FROM public.postcodes WHERE city <> %s",
                                   ("Berlin",)):
        pass

step(C, "close")
conn.close()
