"""extract.py SERVER_LOG MARKERS > driver_queries.jsonl

Turns a PostgreSQL stderr log (log_statement=all, log_line_prefix='%m [%p] app=%a user=%u ',
log_timezone=UTC) into one JSON object per statement. `LOG:  statement:` lines are the simple
protocol, `LOG:  execute <name>:` (and `execute fetch from <stmt>/<portal>:`) the extended one.
Continuation lines (tab-prefixed) are joined back; DETAIL/ERROR/STATEMENT entries are dropped.

log_statement never logs an empty query string, nor a Parse that is not followed by an
Execute. When the log also has `duration:` lines (log_min_duration_statement=0), those give
the SQL of such messages (`duration: .. ms  parse <name>: ...`, `statement: ` with an empty
string, ...); they are added, marked in "what", unless the same protocol+SQL was also logged
by log_statement for that client.

The step name ("what") comes from the client's markers file. Exact duplicates (same protocol
and SQL) are dropped per client, keeping the first. Errors seen are reported on stderr.
"""
import datetime
import json
import re
import sys
from bisect import bisect_right

CLIENTS = ["psql", "psycopg", "sqlalchemy-psycopg2", "sqlalchemy-psycopg", "sqlalchemy-asyncpg",
           "asyncpg", "node-pg", "pgjdbc"]
HEAD = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) UTC \[(\d+)\] app=(\S*) user=(\S*) "
                  r"([A-Z]+):  (.*)$", re.S)
EXEC = re.compile(r"^execute (fetch from )?(\S+?): (.*)$", re.S)
DURATION = re.compile(r"^duration: [0-9.]+ ms(?:  (?:(statement)|(parse|bind|execute) "
                      r"(?:fetch from )?\S*?): ?(.*))?$", re.S)
DURATION_NOTE = {"parse": "Parse message only", "bind": "Bind message only",
                 "execute": "Execute, not logged by log_statement",
                 "statement": "simple query, not logged by log_statement"}


def entries(path):
    with open(path, encoding="utf-8", newline="") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    cur = None
    for line in lines:
        if line.startswith("\t") and cur is not None:
            cur[-1] += "\n" + line[1:]
            continue
        m = HEAD.match(line)
        if m:
            if cur:
                yield cur
            cur = list(m.groups())
        elif cur is not None:  # stray line without prefix (should not happen)
            cur[-1] += "\n" + line
    if cur:
        yield cur


def load_markers(path):
    marks = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            t, client, what = line.rstrip("\n").split("\t", 2)
            marks.setdefault(client, []).append((float(t), what))
    for v in marks.values():
        v.sort()
    return marks


def main(log, markers):
    marks = load_markers(markers)
    seen = {c: set() for c in CLIENTS}
    found = []  # (ts, app, protocol, sql, note, primary)
    for ts, pid, app, user, level, msg in entries(log):
        if app not in seen:
            continue
        if level != "LOG":
            if level in ("ERROR", "FATAL", "WARNING"):
                print(f"{app} [{pid}] {level}: {msg}", file=sys.stderr)
            continue
        if msg.startswith("duration: "):
            m = DURATION.match(msg)
            if not m:
                print(f"{app}: unhandled duration LOG: {msg[:120]}", file=sys.stderr)
            elif m.group(1) or m.group(2):
                kind = m.group(1) or m.group(2)
                protocol = "simple" if kind == "statement" else "extended"
                found.append((ts, app, protocol, m.group(3), DURATION_NOTE[kind], False))
            continue
        if msg.startswith("statement: "):
            protocol, sql, note = "simple", msg[len("statement: "):], ""
        else:
            m = EXEC.match(msg)
            if not m:
                print(f"{app}: unhandled LOG: {msg[:120]}", file=sys.stderr)
                continue
            protocol, sql = "extended", m.group(3)
            note = "portal fetch continuation" if m.group(1) else ""
        found.append((ts, app, protocol, sql, note, True))
        seen[app].add((protocol, sql))

    out = []
    emitted = {c: set() for c in CLIENTS}
    for ts, app, protocol, sql, note, primary in found:
        key = (protocol, sql)
        if key in emitted[app] or (not primary and key in seen[app]):
            continue
        emitted[app].add(key)
        t = datetime.datetime.strptime(ts, "%Y-%m-%d %H:%M:%S.%f").replace(
            tzinfo=datetime.timezone.utc).timestamp()
        ms = marks.get(app, [])
        i = bisect_right([x[0] for x in ms], t + 0.0005)
        what = ms[i - 1][1] if i else "connect"
        if note:
            what += f" ({note})"
        out.append({"client": app, "what": what, "protocol": protocol, "sql": sql})
    for rec in out:
        print(json.dumps(rec, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
