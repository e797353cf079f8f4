"""Runs a fixed set of lab queries with psycopg 3 and prints the results as JSON lines.

Used by the integration tests to compare a direct connection with one through unscharf:
text and binary results, server-side parameters, a named cursor, COPY and pipeline mode.
"""
import json
import sys

import psycopg


def rows(cur):
    return [[str(v) for v in r] for r in cur.fetchall()]


def main(url: str) -> None:
    out = []
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT id, label, price, created, tags, doc, flag, blob FROM lab.items WHERE id <= %s ORDER BY id", (5,))
            out.append(rows(cur))
        with conn.cursor(binary=True) as cur:
            cur.execute("SELECT id, label, price, created, tags, flag FROM lab.items WHERE id BETWEEN %s AND %s ORDER BY id", (10, 14))
            out.append(rows(cur))
        with conn.cursor() as cur:
            cur.execute("SELECT label FROM lab.items WHERE id = %s", (7,), prepare=True)
            out.append(rows(cur))
            cur.execute("SELECT label FROM lab.items WHERE id = %s", (8,), prepare=True)
            out.append(rows(cur))
        with conn.transaction():
            with conn.cursor(name="server_side") as cur:
                cur.itersize = 7
                cur.execute("SELECT id FROM lab.items ORDER BY id LIMIT 20")
                out.append([str(r[0]) for r in cur])
        with conn.cursor() as cur:
            with cur.copy("COPY (SELECT id, label FROM lab.items WHERE id <= 3 ORDER BY id) TO STDOUT") as copy:
                out.append([bytes(b).decode() for b in copy])
        with conn.pipeline():
            curs = [conn.execute("SELECT label FROM lab.items WHERE id = %s", (i,)) for i in range(1, 6)]
        out.append([c.fetchone()[0] for c in curs])
        try:
            conn.execute("SELECT 1 FROM lab.items WHERE id = (SELECT id FROM lab.items)")
        except psycopg.Error as e:
            out.append(["error", e.sqlstate])
        out.append(rows(conn.execute("SELECT 'still usable'")))
    for o in out:
        print(json.dumps(o))


if __name__ == "__main__":
    main(sys.argv[1])
