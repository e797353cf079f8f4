-- unscharf: notify the proxy the moment the schema changes, so that it never judges a statement by
-- a catalog older than the server's (a table created or dropped in a schema early in search_path
-- changes what a name means). Run once in the database unscharf serves, as a superuser: event
-- triggers need one. Without it, unscharf sees DDL done outside it only on its periodic refresh
-- (every 60 s). `unscharf check --live` says whether it is installed.
--
-- It also fences migrations. A statement that waits on a migration's locks is analyzed by
-- Postgres once the migration commits, under the new definitions, while unscharf judged it by the
-- old ones (red-team round 148). So a transaction that ran DDL asks every unscharf, as it commits
-- and before it releases its locks, to stop forwarding statements: each holds the shared advisory
-- lock (1970172771, 1) while it forwards, and this trigger cancels the holder's wait statement and
-- takes the lock exclusively. unscharf then forwards nothing, cancels its sessions' statements that
-- run or wait for locks (they would go on under the new definitions), and holds the answers to statements
-- forwarded before until the migration has ended and it has read the catalog again; it passes
-- them on if that changed nothing they mean, else ends their sessions; and it takes the shared
-- lock back. A migration waits at most 10 s for that and is rolled back if an
-- unscharf does not answer (waiting behind another migration that holds the fence does not count).
CREATE SCHEMA IF NOT EXISTS unscharf_watch;
REVOKE ALL ON SCHEMA unscharf_watch FROM PUBLIC;
CREATE TABLE IF NOT EXISTS unscharf_watch.fence_requests (at timestamptz NOT NULL DEFAULT now());
REVOKE ALL ON unscharf_watch.fence_requests FROM PUBLIC;

CREATE OR REPLACE FUNCTION unscharf_watch.fence_at_commit() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    db oid := (SELECT oid FROM pg_database WHERE datname = current_database());
    saved text := current_setting('lock_timeout');
    attempts int := 0;
BEGIN
    DELETE FROM unscharf_watch.fence_requests;
    IF EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND database = db AND classid = 1970172771
               AND objid = 1 AND objsubid = 2 AND pid = pg_backend_pid() AND mode = 'ExclusiveLock' AND granted) THEN
        RETURN NULL;
    END IF;
    -- Queued, not tried: an unscharf that let go and asks again waits behind this request. A
    -- cancel that finds the connection between two statements, or one whose lock was granted just
    -- after it (back-to-back migrations), is lost; the next attempt repeats it, 200 ms later
    -- (round 158 measured lost cancels costing 1 s at each of about a tenth of commits). Only
    -- attempts that find no other migration holding the fence count toward the 10 s: one queued
    -- behind another waits for it as it would for any lock (round 165: it was rolled back).
    LOOP
        PERFORM pg_cancel_backend(l.pid) FROM pg_locks l
            WHERE l.locktype = 'advisory' AND l.database = db AND l.classid = 1970172771 AND l.objid = 1
              AND l.objsubid = 2 AND l.mode = 'ShareLock' AND l.granted AND l.pid <> pg_backend_pid();
        BEGIN
            PERFORM set_config('lock_timeout', '200ms', true);
            PERFORM pg_advisory_xact_lock(1970172771, 1);
            PERFORM set_config('lock_timeout', saved, true);
            RETURN NULL;
        EXCEPTION WHEN lock_not_available THEN
            NULL;
        END;
        -- Unless that migration waits for this one (a lock of this transaction's DDL, at any
        -- remove): Postgres cannot see the cycle through these short attempts, so after 10 s this
        -- one is rolled back and frees it.
        IF NOT EXISTS (
            WITH RECURSIVE h AS (
                SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.database = db
                  AND l.classid = 1970172771 AND l.objid = 1 AND l.objsubid = 2
                  AND l.mode = 'ExclusiveLock' AND l.granted AND l.pid <> pg_backend_pid()),
            b(pid) AS (SELECT pid FROM h UNION SELECT unnest(pg_blocking_pids(b.pid)) FROM b)
            SELECT 1 FROM h WHERE NOT EXISTS (SELECT 1 FROM b WHERE b.pid = pg_backend_pid())) THEN
            attempts := attempts + 1;
            EXIT WHEN attempts >= 50;
        END IF;
    END LOOP;
    RAISE EXCEPTION 'unscharf did not stop forwarding statements within 10 s, so this migration is rolled back'
        USING HINT = 'Check the unscharf instances connected to this database, or disable the trigger unscharf_fence_at_commit.';
END $$;
DROP TRIGGER IF EXISTS unscharf_fence_at_commit ON unscharf_watch.fence_requests;
CREATE CONSTRAINT TRIGGER unscharf_fence_at_commit AFTER INSERT ON unscharf_watch.fence_requests
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION unscharf_watch.fence_at_commit();

CREATE OR REPLACE FUNCTION unscharf_watch.catalog_changed() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    PERFORM pg_catalog.pg_notify('unscharf_catalog', '');
    -- A temporary table is seen by its own session only, and its DDL may run in an agent's
    -- session (a helper's scratch table): that commit would end the agent's own session.
    IF NOT EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands())
       OR EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands() c
                  WHERE c.schema_name IS NULL OR c.schema_name !~ '^pg_temp(_[0-9]+)?$') THEN
        INSERT INTO unscharf_watch.fence_requests DEFAULT VALUES;
    END IF;
END $$;
DROP EVENT TRIGGER IF EXISTS unscharf_catalog_changed;
CREATE EVENT TRIGGER unscharf_catalog_changed ON ddl_command_end
    EXECUTE FUNCTION unscharf_watch.catalog_changed();
-- Also under session_replication_role = replica, which silences ordinary triggers.
ALTER EVENT TRIGGER unscharf_catalog_changed ENABLE ALWAYS;
ALTER TABLE unscharf_watch.fence_requests ENABLE ALWAYS TRIGGER unscharf_fence_at_commit;
