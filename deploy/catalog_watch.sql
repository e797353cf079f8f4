-- unscharf: notify the proxy the moment the schema changes, so that it never judges a statement by
-- a catalog older than the server's (a table created or dropped in a schema early in search_path
-- changes what a name means). Run once in the database unscharf serves, as a superuser: event
-- triggers need one. Without it, unscharf sees DDL done outside it only on its periodic refresh
-- (every 60 s). `unscharf check --live` says whether it is installed.
CREATE SCHEMA IF NOT EXISTS unscharf_watch;
REVOKE ALL ON SCHEMA unscharf_watch FROM PUBLIC;
CREATE OR REPLACE FUNCTION unscharf_watch.catalog_changed() RETURNS event_trigger
    LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_catalog.pg_notify('unscharf_catalog', ''); END $$;
DROP EVENT TRIGGER IF EXISTS unscharf_catalog_changed;
CREATE EVENT TRIGGER unscharf_catalog_changed ON ddl_command_end
    EXECUTE FUNCTION unscharf_watch.catalog_changed();
