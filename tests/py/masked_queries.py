"""Runs billing_hotline queries with psycopg 3 (text and binary) and prints everything it receives,
rows, errors and notices, so the test can check that no protected sample value ever arrives."""
import sys

import psycopg


def main(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.add_notice_handler(lambda d: print("NOTICE", d.message_primary, d.message_detail))
        for binary in (False, True):
            with conn.cursor(binary=binary) as cur:
                cur.execute("SELECT * FROM stadtwerke.customers ORDER BY customer_no")
                print([d.name for d in cur.description])
                for r in cur.fetchall():
                    print(r)
                cur.execute("SELECT name, phone, email, iban FROM stadtwerke.customers WHERE customer_no = %s", (1001,))
                print(cur.fetchall())
                cur.execute("SELECT name FROM stadtwerke.customers WHERE phone = %s", ("+49 30 1234567",))
                print(cur.fetchall())
        for bad in [
            "SELECT lower(iban) FROM stadtwerke.customers",
            "SELECT name FROM stadtwerke.customers WHERE phone LIKE '+49%'",
            "SELECT birth_date FROM stadtwerke.customers",
            "SELECT c FROM stadtwerke.customers c",
        ]:
            try:
                conn.execute(bad)
                print("UNEXPECTED SUCCESS", bad)
            except psycopg.Error as e:
                print("ERROR", e.sqlstate, e.diag.message_primary)
        with conn.transaction():
            with conn.cursor(name="c") as cur:
                cur.execute("SELECT customer_no, phone, iban FROM stadtwerke.customers ORDER BY customer_no")
                for r in cur:
                    print("CURSOR", r)
        with conn.cursor() as cur:
            with cur.copy("COPY stadtwerke.customers (customer_no, phone, email, iban) TO STDOUT") as copy:
                for row in copy:
                    print("COPY", bytes(row).decode())
        # A data exception: its message would echo the value; rule 11 withholds it.
        try:
            conn.execute("SELECT name::int FROM stadtwerke.customers")
        except psycopg.Error as e:
            print("ERROR", e.sqlstate, e.diag.message_primary, e.diag.message_detail)


if __name__ == "__main__":
    main(sys.argv[1])
