//! The SQL the catalog is read with: each query's comment says which attack made it necessary.

mod filters;
pub(super) use filters::SESSION_FILTERS;

/// Relations; a view's options (security_barrier) and whether a table has row-level security
/// (round 134: a view without barrier ran an agent's condition on the rows it hides, and EXPLAIN
/// ANALYZE counted rows hidden either way).
pub(super) const RELATIONS: &str = "SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text,
      c.relrowsecurity, c.reloptions::text[]
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r','v','m','p','f') AND n.nspname !~ '^pg_toast' ORDER BY c.oid";
pub(super) const COLUMNS: &str = "SELECT a.attrelid, a.attname::text, a.attnum, a.atttypid
    FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','v','m','p','f')
      AND n.nspname !~ '^pg_toast'
    ORDER BY a.attrelid, a.attnum";
/// See `Relation::unique_keys` (round 66: a unique index on a masked column answered whether a
/// guessed value was stored). Every index counts, unique or not: its entry holds the written value
/// beside the others, and an entry too large for it fails the write (round 186 W2: a name made
/// longer byte by byte told the length of the email an index kept beside it). Columns an index's expressions and predicate read are its
/// dependencies in pg_depend, which leaves out a whole-row use: that reads every column (round
/// 142: a unique `person_key(customers)` answered birth-date guesses). An index of a partition or child table counts for every table above
/// it, which routes rows into it (round 67), by column name since attnums differ.
pub(super) const UNIQUE_KEYS: &str = "WITH RECURSIVE up(rel, anc) AS (
      SELECT inhrelid, inhparent FROM pg_catalog.pg_inherits
      UNION SELECT up.rel, i.inhparent FROM up JOIN pg_catalog.pg_inherits i ON i.inhrelid = up.anc),
    keys(rel, attnums) AS (
      SELECT i.indrelid, ARRAY(
          SELECT k FROM pg_catalog.unnest(i.indkey::int2[]) k WHERE k > 0
          UNION SELECT d.refobjsubid::int2 FROM pg_catalog.pg_depend d
            WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = i.indexrelid
              AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = i.indrelid
              AND d.refobjsubid > 0
          UNION SELECT a.attnum FROM pg_catalog.pg_attribute a
            WHERE a.attrelid = i.indrelid AND a.attnum > 0 AND NOT a.attisdropped
              AND (i.indexprs::text ~ ':varattno 0 ' OR i.indpred::text ~ ':varattno 0 '))
      FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE (n.nspname NOT IN ('pg_catalog', 'information_schema') OR c.oid >= 16384)
        AND n.nspname !~ '^pg_toast')
    SELECT t.rel, ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = k.rel AND a.attnum = ANY (k.attnums))
    FROM keys k, LATERAL (SELECT k.rel UNION SELECT up.anc FROM up WHERE up.rel = k.rel) t(rel)";
/// See `Relation::checks` (round 134: `CHECK (moved_in > birth_date)` answered, through an UPDATE
/// of moved_in, every customer's dropped birth date). Each counts for the table that has it and
/// every table above it, which routes rows into it (see UNIQUE_KEYS). One that reads the whole row
/// (column 0) reads every column (round 136).
pub(super) const CHECKS: &str = "WITH RECURSIVE up(rel, anc) AS (
      SELECT inhrelid, inhparent FROM pg_catalog.pg_inherits
      UNION SELECT up.rel, i.inhparent FROM up JOIN pg_catalog.pg_inherits i ON i.inhrelid = up.anc)
    SELECT t.rel, ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = k.conrelid AND a.attnum > 0 AND NOT a.attisdropped
          AND (a.attnum = ANY (k.conkey) OR 0 = ANY (k.conkey)))
    FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace,
      LATERAL (SELECT k.conrelid UNION SELECT up.anc FROM up WHERE up.rel = k.conrelid) t(rel)
    WHERE k.contype = 'c' AND n.nspname NOT IN ('pg_catalog', 'information_schema')";
/// See `Relation::row_triggers`: UPDATE and DELETE triggers that read the stored rows. One with
/// a WHEN condition reads the columns it names (its Vars in the stored tree: pg_depend leaves out
/// a whole-row use, round 108). These read the whole row: a BEFORE row trigger of a built-in
/// function (round 141: suppress_redundant_updates_trigger skipped an UPDATE that wrote the stored
/// birth date again); one whose function is C or internal, whose code unscharf cannot read (round
/// 144: a DBA's internal alias of suppress_redundant_updates_trigger); one with transition tables
/// (round 144: a statement trigger logged which rows an UPDATE changed); and one whose DBA
/// function's code names `OLD`, its own table or the trigger's view of it (`TG_RELID`,
/// `TG_TABLE_NAME`) (rounds 142 and 144: `IF NEW IS DISTINCT FROM OLD THEN NEW.updated_at :=
/// now()`, and a `SELECT … FROM customers WHERE customer_no = NEW.customer_no`, told through
/// RETURNING whether a guess equalled the stored birth date). With the columns of `UPDATE OF`.
/// Each counts for the table that has it and every table above it (see CHECKS).
pub(super) const ROW_TRIGGERS: &str = "WITH RECURSIVE up(rel, anc) AS (
      SELECT inhrelid, inhparent FROM pg_catalog.pg_inherits
      UNION SELECT up.rel, i.inhparent FROM up JOIN pg_catalog.pg_inherits i ON i.inhrelid = up.anc)
    SELECT t.rel, g.tgname::text, ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = g.tgrelid AND a.attnum > 0 AND NOT a.attisdropped
          AND (w.whole OR a.attnum = ANY (r.reads) OR 0 = ANY (r.reads))),
      (g.tgtype & 16) <> 0, (g.tgtype & 8) <> 0,
      ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = g.tgrelid AND a.attnum = ANY (g.tgattr::pg_catalog.int2[]))
    FROM pg_catalog.pg_trigger g JOIN pg_catalog.pg_proc p ON p.oid = g.tgfoid
      JOIN pg_catalog.pg_language l ON l.oid = p.prolang
      JOIN pg_catalog.pg_class c ON c.oid = g.tgrelid,
      LATERAL (SELECT ARRAY(SELECT DISTINCT m[1]::int2
        FROM pg_catalog.regexp_matches(g.tgqual::text, ':varattno (-?[0-9]+)', 'g') m)) r(reads),
      LATERAL (SELECT g.tgoldtable IS NOT NULL
        OR (l.lanname IN ('c', 'internal') AND (p.oid >= 16384 OR (g.tgtype & 3) = 3))
        OR (p.oid >= 16384 AND l.lanname NOT IN ('c', 'internal')
          AND ARRAY['old', 'tg_relid', 'tg_table_name', pg_catalog.lower(c.relname::text)]
            OPERATOR(pg_catalog.&&) pg_catalog.regexp_split_to_array(pg_catalog.lower(p.prosrc), '[^[:alnum:]_$]+'))) w(whole),
      LATERAL (SELECT g.tgrelid UNION SELECT up.anc FROM up WHERE up.rel = g.tgrelid) t(rel)
    WHERE NOT g.tgisinternal AND (g.tgtype & 24) <> 0 AND (g.tgqual IS NOT NULL OR w.whole)";
/// See `Relation::generated`: STORED generated columns with the columns their expression reads,
/// its pg_attrdef entry's dependencies (round 134: a unique index on one keyed on a dropped birth
/// date).
pub(super) const GENERATED: &str = "SELECT a.attrelid, a.attname::text, ARRAY(
        SELECT b.attname::text FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_attribute b ON b.attrelid = d.refobjid AND b.attnum = d.refobjsubid
        WHERE d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND d.objid = ad.oid
          AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = a.attrelid
          AND d.refobjsubid > 0 AND d.refobjsubid <> a.attnum)
    FROM pg_catalog.pg_attribute a
      JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
    WHERE a.attgenerated = 's' AND NOT a.attisdropped";
/// Foreign keys, by column name, with their ON DELETE and ON UPDATE actions. Each counts for the
/// table that has it and every table above it (see UNIQUE_KEYS; round 67: an FK answered whether
/// a guessed e-mail was a customer's), and as referencing the referenced table and every table
/// above that (round 70: a DELETE through the parent of a referenced partition cascaded into
/// another campaign).
pub(super) const FOREIGN_KEYS: &str = "WITH RECURSIVE up(rel, anc) AS (
      SELECT inhrelid, inhparent FROM pg_catalog.pg_inherits
      UNION SELECT up.rel, i.inhparent FROM up JOIN pg_catalog.pg_inherits i ON i.inhrelid = up.anc)
    SELECT t.rel,
      ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(k.conkey) WITH ORDINALITY u(n, o)
        JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.o),
      f.rel,
      ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(k.confkey) WITH ORDINALITY u(n, o)
        JOIN pg_catalog.pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.o),
      k.confdeltype::text, k.confupdtype::text
    FROM pg_catalog.pg_constraint k,
      LATERAL (SELECT k.conrelid UNION SELECT up.anc FROM up WHERE up.rel = k.conrelid) t(rel),
      LATERAL (SELECT k.confrelid UNION SELECT up.anc FROM up WHERE up.rel = k.confrelid) f(rel)
    WHERE k.contype = 'f'";
/// Rules on INSERT, UPDATE or DELETE (a view's ON SELECT rule is its query): they rewrite a write
/// into statements of their own, whose reads and RETURNING no statement shows (round 117: a DO
/// INSTEAD rule on tickets returned the callback note it filled from the clear phone).
pub(super) const WRITE_RULES: &str = "SELECT r.ev_class, r.rulename::text FROM pg_catalog.pg_rewrite r
      JOIN pg_catalog.pg_class c ON c.oid = r.ev_class JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE r.ev_type <> '1' AND (n.nspname NOT IN ('pg_catalog', 'information_schema') OR c.oid >= 16384)";
/// Relations with the relations their views' and rules' queries and their row-level security
/// policies read (rounds 72 and 74: a view in one campaign's schema over the other campaign's
/// leads, a policy whose subquery matched them).
pub(super) const VIEW_BASES: &str = "SELECT DISTINCT o.rel, d.refobjid FROM (
        SELECT 'pg_catalog.pg_rewrite'::pg_catalog.regclass, oid, ev_class FROM pg_catalog.pg_rewrite
        UNION ALL SELECT 'pg_catalog.pg_policy'::pg_catalog.regclass, oid, polrelid FROM pg_catalog.pg_policy
      ) o(class, oid, rel)
    JOIN pg_catalog.pg_depend d ON d.classid = o.class AND d.objid = o.oid
      AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid <> o.rel
    JOIN pg_catalog.pg_class c ON c.oid = d.refobjid AND c.relkind IN ('r', 'p', 'v', 'm', 'f')";
/// The columns each view's and materialized view's query reads of the relations below it (by
/// attnum), for `check --live`: a granted view is judged by its own rules, so one that filters on a
/// column the purpose masks on its table shows rows that follow that column (round 248 CG1).
pub(super) const VIEW_COLUMN_READS: &str = "SELECT DISTINCT r.ev_class, d.refobjid, d.refobjsubid::int2
    FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class v ON v.oid = r.ev_class AND v.relkind IN ('v', 'm')
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid
      AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid <> r.ev_class
      AND d.refobjsubid > 0";
/// Views that read a table with row-level security as a role its policies do not apply to: a
/// view without `security_invoker` reads as its owner, and a superuser, a role with BYPASSRLS,
/// or the table's owner (unless the table forces row security) sees every row (round 244 CC1: a
/// dashboard view a superuser created showed agents each other's tickets). Followed down through
/// `security_invoker` views, which read as whoever reads them: here the view's owner. Only for
/// `check --live`: the DBA may mean the view to show all rows.
pub(super) const RLS_SKIPPED: &str = "WITH RECURSIVE invoker(oid) AS (
      SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relkind = 'v' AND EXISTS (
        SELECT 1 FROM pg_catalog.unnest(c.reloptions) o
        WHERE pg_catalog.lower(o) ~ '^security_invoker=(t|tr|tru|true|y|ye|yes|on|1)$')),
    reads(top, owner, rel) AS (
      SELECT v.oid, v.relowner, d.refobjid FROM pg_catalog.pg_class v
        JOIN pg_catalog.pg_rewrite r ON r.ev_class = v.oid
        JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid
          AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid <> v.oid
      WHERE v.relkind = 'v' AND v.oid NOT IN (SELECT oid FROM invoker)
      UNION SELECT reads.top, reads.owner, d.refobjid FROM reads
        JOIN invoker w ON w.oid = reads.rel
        JOIN pg_catalog.pg_rewrite r ON r.ev_class = w.oid
        JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid
          AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid <> w.oid)
    SELECT DISTINCT reads.top, reads.rel, o.rolname::text FROM reads
      JOIN pg_catalog.pg_class t ON t.oid = reads.rel
      JOIN pg_catalog.pg_roles o ON o.oid = reads.owner
    WHERE t.relrowsecurity
      AND (o.rolsuper OR o.rolbypassrls OR (o.oid = t.relowner AND NOT t.relforcerowsecurity))";
/// Functions a statement on a relation runs without naming them: those its views' and rules'
/// queries and its row-level security policies call, and (on a write) those of its triggers (and
/// their WHEN), column defaults, CHECK constraints, indexes, partition key and columns' domains
/// (round 74). Followed through pg_depend across the operators, casts, operator classes and types
/// in between: domains, ranges, arrays and composites (rounds 78 and 80: a DBA's operator in a
/// view, a domain's DEFAULT on an omitted column, an array of a domain, an expression index, a
/// range type's subtype_diff), stopping at functions. A STORED generated column's expression
/// counts on reads too: what it computed, when a DBA added the column, is what a read returns
/// (round 98).
pub(super) const HIDDEN_CALLS: &str = "WITH RECURSIVE start(rel, what, on_write, class, obj) AS (
      SELECT r.ev_class, 'the view or rule ' || r.rulename, false, 'pg_catalog.pg_rewrite'::pg_catalog.regclass, r.oid
        FROM pg_catalog.pg_rewrite r
      UNION ALL SELECT p.polrelid, 'the row-level security policy ' || p.polname, false,
        'pg_catalog.pg_policy'::pg_catalog.regclass, p.oid FROM pg_catalog.pg_policy p
      UNION ALL SELECT t.tgrelid, 'the trigger ' || t.tgname, true, 'pg_catalog.pg_trigger'::pg_catalog.regclass, t.oid
        FROM pg_catalog.pg_trigger t WHERE NOT t.tgisinternal
      UNION ALL SELECT i.indrelid, 'the index ' || i.indexrelid::pg_catalog.regclass::text, true,
        'pg_catalog.pg_class'::pg_catalog.regclass, i.indexrelid FROM pg_catalog.pg_index i
      UNION ALL SELECT c.oid, 'the partition key', true, 'pg_catalog.pg_class'::pg_catalog.regclass, c.oid
        FROM pg_catalog.pg_class c WHERE c.relkind = 'p'
      UNION ALL SELECT a.adrelid, CASE t.attgenerated WHEN 's' THEN 'the generated column ' || t.attname
          ELSE 'the default of column ' || t.attname END, t.attgenerated <> 's',
        'pg_catalog.pg_attrdef'::pg_catalog.regclass, a.oid FROM pg_catalog.pg_attrdef a
        JOIN pg_catalog.pg_attribute t ON t.attrelid = a.adrelid AND t.attnum = a.adnum
      UNION ALL SELECT a.adrelid, 'the generated column ' || t.attname, true,
        'pg_catalog.pg_attrdef'::pg_catalog.regclass, a.oid FROM pg_catalog.pg_attrdef a
        JOIN pg_catalog.pg_attribute t ON t.attrelid = a.adrelid AND t.attnum = a.adnum WHERE t.attgenerated = 's'
      UNION ALL SELECT k.conrelid, 'the constraint ' || k.conname, true,
        'pg_catalog.pg_constraint'::pg_catalog.regclass, k.oid FROM pg_catalog.pg_constraint k WHERE k.conrelid <> 0
      UNION ALL SELECT a.attrelid, CASE t.typtype WHEN 'd' THEN 'the domain of column ' ELSE 'the type of column ' END
          || a.attname, true, 'pg_catalog.pg_type'::pg_catalog.regclass, a.atttypid
        FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
        WHERE (t.typtype IN ('d', 'c', 'r', 'm') OR t.typcategory = 'A') AND t.oid >= 16384
          AND a.attnum > 0 AND NOT a.attisdropped),
    reach(rel, what, on_write, class, obj) AS (
      SELECT s.* FROM start s JOIN pg_catalog.pg_class c ON c.oid = s.rel
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE (n.nspname NOT IN ('pg_catalog', 'information_schema') OR c.oid >= 16384)
      UNION SELECT r.rel, r.what, r.on_write, nx.class, nx.obj FROM reach r, LATERAL (
          SELECT d.refclassid, d.refobjid FROM pg_catalog.pg_depend d
            WHERE d.classid = r.class AND d.objid = r.obj AND r.class <> 'pg_catalog.pg_proc'::pg_catalog.regclass
              AND (d.refclassid IN ('pg_catalog.pg_proc'::pg_catalog.regclass,
                     'pg_catalog.pg_operator'::pg_catalog.regclass, 'pg_catalog.pg_cast'::pg_catalog.regclass,
                     'pg_catalog.pg_opclass'::pg_catalog.regclass)
                   OR d.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass
                     AND EXISTS (SELECT 1 FROM pg_catalog.pg_type t WHERE t.oid = d.refobjid
                       AND (t.typtype IN ('d', 'r', 'm', 'c') OR t.typcategory = 'A'))
                   OR d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
                     AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = d.refobjid AND c.relkind = 'c'))
          UNION ALL SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, k.oid FROM pg_catalog.pg_constraint k
            WHERE r.class = 'pg_catalog.pg_type'::pg_catalog.regclass AND k.contypid = r.obj
          UNION ALL SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, t.typrelid FROM pg_catalog.pg_type t
            WHERE r.class = 'pg_catalog.pg_type'::pg_catalog.regclass AND t.oid = r.obj AND t.typtype = 'c'
          UNION ALL SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, m.amproc::pg_catalog.oid
            FROM pg_catalog.pg_opclass o JOIN pg_catalog.pg_amproc m ON m.amprocfamily = o.opcfamily
            WHERE r.class = 'pg_catalog.pg_opclass'::pg_catalog.regclass AND o.oid = r.obj
          UNION ALL SELECT 'pg_catalog.pg_operator'::pg_catalog.regclass, m.amopopr
            FROM pg_catalog.pg_opclass o JOIN pg_catalog.pg_amop m ON m.amopfamily = o.opcfamily
            WHERE r.class = 'pg_catalog.pg_opclass'::pg_catalog.regclass AND o.oid = r.obj) nx(class, obj))
    SELECT DISTINCT r.rel, n.nspname::text, p.proname::text, r.what, r.on_write FROM reach r
      JOIN pg_catalog.pg_proc p ON r.class = 'pg_catalog.pg_proc'::pg_catalog.regclass AND p.oid = r.obj
      JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace";
/// The SQL text of the rules (a view's query is its rule), row-level security policies, column
/// domains' defaults and CHECKs (round 121: a domain's DEFAULT called set_config), column
/// defaults, triggers, CHECK constraints, index expressions and partition keys of relations (all
/// but the first two run on a write). pg_depend records no dependency on a pg_catalog
/// function, so a forbidden one they call (`query_to_xml` in a view, round 74) shows only here.
/// The deparsing functions look at the catalog as it is now, not as the snapshot saw it: a rule's
/// or a CHECK's relation dropped since fails them outright, so they ask first whether it is still
/// there (a NULL definition means "changed", see `live_code`).
pub(super) const HIDDEN_SQL: &str = "WITH RECURSIVE dom(rel, col, typ) AS (
      SELECT a.attrelid, a.attname, a.atttypid FROM pg_catalog.pg_attribute a
        JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE a.attnum > 0 AND NOT a.attisdropped
          AND (n.nspname NOT IN ('pg_catalog', 'information_schema') OR c.oid >= 16384)
      UNION SELECT d.rel, d.col, x.typ FROM dom d JOIN pg_catalog.pg_type t ON t.oid = d.typ, LATERAL (
          SELECT t.typbasetype UNION ALL SELECT t.typelem
          UNION ALL SELECT a.atttypid FROM pg_catalog.pg_attribute a
            WHERE t.typrelid <> 0 AND a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
          UNION ALL SELECT r.rngsubtype FROM pg_catalog.pg_range r WHERE r.rngtypid = t.oid
          UNION ALL SELECT r.rngtypid FROM pg_catalog.pg_range r WHERE r.rngmultitypid = t.oid) x(typ)
        WHERE x.typ <> 0)
    SELECT r.ev_class, 'the view or rule ' || r.rulename,
      CASE WHEN pg_catalog.pg_table_is_visible(r.ev_class) IS NOT NULL THEN pg_catalog.pg_get_ruledef(r.oid) END, false
      FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class c ON c.oid = r.ev_class
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE (n.nspname NOT IN ('pg_catalog', 'information_schema') OR c.oid >= 16384)
    UNION ALL SELECT p.polrelid, 'the row-level security policy ' || p.polname,
      coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '') || ' '
        || coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), ''), false
      FROM pg_catalog.pg_policy p
    UNION ALL SELECT a.adrelid, CASE t.attgenerated WHEN 's' THEN 'the generated column ' || t.attname
        ELSE 'the default of column ' || t.attname END,
      pg_catalog.pg_get_expr(a.adbin, a.adrelid), t.attgenerated <> 's'
      FROM pg_catalog.pg_attrdef a JOIN pg_catalog.pg_class c ON c.oid = a.adrelid
      JOIN pg_catalog.pg_attribute t ON t.attrelid = a.adrelid AND t.attnum = a.adnum
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE (n.nspname NOT IN ('pg_catalog', 'information_schema') OR c.oid >= 16384)
    UNION ALL SELECT t.tgrelid, 'the trigger ' || t.tgname, pg_catalog.pg_get_triggerdef(t.oid), true
      FROM pg_catalog.pg_trigger t WHERE NOT t.tgisinternal
    UNION ALL SELECT i.indrelid, 'the index ' || i.indexrelid::pg_catalog.regclass::text,
      pg_catalog.pg_get_indexdef(i.indexrelid), true
      FROM pg_catalog.pg_index i WHERE i.indexprs IS NOT NULL OR i.indpred IS NOT NULL
    UNION ALL SELECT c.oid, 'the partition key', pg_catalog.pg_get_partkeydef(c.oid), true
      FROM pg_catalog.pg_class c WHERE c.relkind = 'p'
    UNION ALL SELECT k.conrelid, 'the constraint ' || k.conname,
      CASE WHEN pg_catalog.pg_table_is_visible(k.conrelid) IS NOT NULL THEN pg_catalog.pg_get_constraintdef(k.oid) END, true
      FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE k.contype = 'c' AND (n.nspname NOT IN ('pg_catalog', 'information_schema') OR c.oid >= 16384)
    UNION ALL SELECT d.rel, 'the domain ' || t.typname || ' of column ' || d.col,
      coalesce(t.typdefault, '') || ' ' || coalesce((SELECT pg_catalog.string_agg(pg_catalog.pg_get_constraintdef(k.oid), ' ')
        FROM pg_catalog.pg_constraint k WHERE k.contypid = t.oid), ''), true
      FROM dom d JOIN pg_catalog.pg_type t ON t.oid = d.typ WHERE t.typtype = 'd'";
/// Tables with partitions or child tables, and every table below each.
pub(super) const DESCENDANTS: &str = "WITH RECURSIVE down(anc, rel) AS (
      SELECT inhparent, inhrelid FROM pg_catalog.pg_inherits
      UNION SELECT down.anc, i.inhrelid FROM down JOIN pg_catalog.pg_inherits i ON i.inhparent = down.rel)
    SELECT anc, rel FROM down";
/// The relations each row-level security policy reads, its own table or another (round 102: a
/// policy comparing the phone with a setting the agent may change answered prefix guesses; round
/// 105: one comparing another table's birth date with a ticket's subject answered them too). Of
/// its own table, the columns pg_depend records for it; but pg_depend drops a whole-row use
/// (`c::text LIKE …`, round 108) where a column of the same relation is named too, so a policy
/// whose stored expressions hold a whole-row Var (`:varattno 0`, anywhere) reads every column, as
/// does one that reads a system column. A policy that uses only its table's whole row has no
/// dependency on it but its own AUTO one, so it is found by the Var alone (round 246 CE1:
/// `customers::text LIKE '%+49 30%'` filtered by the masked phone unseen, before and after CC2).
/// Another relation counts whole: a subquery's columns are
/// not told apart from the policy's own by table in the tree (round 244 CC2: a policy keyed on
/// `agent = current_user` refused every read of a purpose that masks the ticket's customer).
/// The policy's own AUTO dependency on its table is no read. (Column 0 stands for all columns.)
pub(super) const POLICY_COLUMNS: &str = "SELECT DISTINCT p.polrelid, p.polname::text, d.refobjid,
      CASE WHEN d.refobjid = p.polrelid AND d.refobjsubid > 0
          AND coalesce(p.polqual::text, '') !~ ':varattno 0 '
          AND coalesce(p.polwithcheck::text, '') !~ ':varattno 0 '
        THEN d.refobjsubid::int2 ELSE 0::int2 END
    FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_depend d
      ON d.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass AND d.objid = p.oid
        AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype = 'n'
    UNION SELECT p.polrelid, p.polname::text, p.polrelid, 0::int2 FROM pg_catalog.pg_policy p
    WHERE coalesce(p.polqual::text, '') ~ ':varattno 0 ' OR coalesce(p.polwithcheck::text, '') ~ ':varattno 0 '";
/// Sequences column defaults and CHECK constraints draw from (`nextval('s')` records a dependency
/// on s), identity columns' own sequences (an internal dependency, no default: round 127), and those the default of
/// a column's domain draws from (round 208 AS2: a domain over bigint defaulting to another
/// campaign's sequence numbered the billing hotline's tickets), by relation.
pub(super) const DEFAULT_SEQUENCES: &str = "WITH RECURSIVE domain_seqs(t, seq) AS (
      SELECT d.objid, d.refobjid FROM pg_catalog.pg_depend d
        JOIN pg_catalog.pg_class c ON c.oid = d.refobjid AND c.relkind = 'S'
        WHERE d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass
          AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
      UNION SELECT ty.oid, s.seq FROM pg_catalog.pg_type ty JOIN domain_seqs s ON ty.typbasetype = s.t),
    -- Defaults that call a sequence function (nextval, currval, setval, lastval,
    -- pg_sequence_last_value: by function OID in the stored tree, so an operator over one counts
    -- too) other than on a regclass constant, which records a dependency on its sequence: a name
    -- given as text (`nextval('s'::text)`, late binding) records none, so the sequence is unknown
    -- (round 209 AT1, round 211 AV1). Counted call by call, not against the dependencies, which
    -- an unused regclass constant adds to (round 212 AW4). Column defaults, domains (of domains)
    -- whose default does so, and CHECK constraints, which run on every write too (AW5).
    seq_funcs(ids) AS (
      SELECT pg_catalog.string_agg(p.oid::pg_catalog.text, '|')
        FROM pg_catalog.pg_proc p
        WHERE p.pronamespace = 'pg_catalog'::pg_catalog.regnamespace
          AND p.proname IN ('nextval', 'currval', 'setval', 'lastval', 'pg_sequence_last_value')),
    patterns(calls, bound) AS (
      SELECT '(:funcid|:opfuncid) (' || f.ids || ')[ }]',
        '[{]FUNCEXPR :funcid (' || f.ids || ') [^{}]*:args [(][{]CONST :consttype 2205 '
        FROM seq_funcs f),
    -- The code that runs on every write of a relation: column defaults and CHECK constraints.
    on_write(cls, obj, rel, bin) AS (
      SELECT 'pg_catalog.pg_attrdef'::pg_catalog.regclass, ad.oid, ad.adrelid, ad.adbin FROM pg_catalog.pg_attrdef ad
      UNION ALL SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, k.oid, k.conrelid, k.conbin
        FROM pg_catalog.pg_constraint k WHERE k.contype = 'c' AND k.conrelid <> 0),
    late_defaults(rel) AS (
      SELECT w.rel FROM on_write w, patterns f
        WHERE pg_catalog.regexp_count(w.bin::pg_catalog.text, f.calls)
          > pg_catalog.regexp_count(w.bin::pg_catalog.text, f.bound)),
    late_types(t) AS (
      SELECT ty.oid FROM pg_catalog.pg_type ty, patterns f
        WHERE ty.typdefaultbin IS NOT NULL
          AND pg_catalog.regexp_count(ty.typdefaultbin::pg_catalog.text, f.calls)
            > pg_catalog.regexp_count(ty.typdefaultbin::pg_catalog.text, f.bound)
      UNION SELECT ty.oid FROM pg_catalog.pg_type ty JOIN late_types l ON ty.typbasetype = l.t)
  SELECT DISTINCT w.rel, n.nspname::text, c.relname::text
    FROM on_write w JOIN pg_catalog.pg_depend d
      ON d.classid = w.cls AND d.objid = w.obj AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
    JOIN pg_catalog.pg_class c ON c.oid = d.refobjid AND c.relkind = 'S'
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  UNION SELECT d.refobjid, n.nspname::text, c.relname::text
    FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class c ON c.oid = d.objid AND c.relkind = 'S'
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
      AND d.deptype = 'i'
  UNION SELECT a.attrelid, n.nspname::text, c.relname::text
    FROM pg_catalog.pg_attribute a JOIN domain_seqs s ON s.t = a.atttypid
    JOIN pg_catalog.pg_class c ON c.oid = s.seq
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE a.attnum > 0 AND NOT a.attisdropped
  UNION SELECT l.rel, '?', 'a sequence its default names in text' FROM late_defaults l
  UNION SELECT a.attrelid, '?', 'a sequence its default names in text'
    FROM pg_catalog.pg_attribute a JOIN late_types l ON l.t = a.atttypid
    WHERE a.attnum > 0 AND NOT a.attisdropped";
/// Columns whose own default draws from a sequence (serial), and identity columns.
pub(super) const SEQUENCE_COLUMNS: &str = "SELECT a.adrelid, a.adnum FROM pg_catalog.pg_attrdef a
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND d.objid = a.oid
      AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
    JOIN pg_catalog.pg_class c ON c.oid = d.refobjid AND c.relkind = 'S'
  UNION SELECT attrelid, attnum FROM pg_catalog.pg_attribute WHERE attidentity <> '' AND NOT attisdropped";
/// Sequences whose name a function's source text holds, in any case (a name in a regclass string
/// folds as an identifier does: round 212 AW2, `NEXTVAL('STADTWERKE.TICKETS_TICKET_ID_SEQ')`): a
/// trigger of another campaign's table may draw from them where no dependency shows it (round 127).
pub(super) const SEQUENCES_IN_CODE: &str = "SELECT n.nspname::text, c.relname::text
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_catalog.pg_proc p
      JOIN pg_catalog.pg_language l ON l.oid = p.prolang
      WHERE p.oid >= 16384 AND l.lanname NOT IN ('c', 'internal')
        AND pg_catalog.strpos(pg_catalog.lower(CASE WHEN p.prosqlbody IS NOT NULL
          THEN pg_catalog.pg_get_functiondef(p.oid) ELSE p.prosrc END), pg_catalog.lower(c.relname::text)) > 0)";
/// A DBA's functions (not C) and views, with their source text and whether it names a sequence.
/// The catalog follows the calls between them (see catalog::code) to find those that read the
/// session's settings (round 138: a policy's `app_campaign()` wrapped current_setting; round 142:
/// through a view) or draw numbers no dependency shows (round 138: a `next_case_no()` default
/// counted the other campaign's rows). A function with a SQL-standard body (`RETURN …`, `BEGIN
/// ATOMIC`) has no prosrc: its definition is printed instead (round 142). An aggregate's code is
/// the names of its support functions (round 145: a policy's aggregate read a setting in its state
/// function). A function's code includes its arguments' defaults (round 153: a default read a
/// setting) and its argument and result types. A domain's code is its DEFAULT and CHECKs, reached
/// by the code that names the domain (round 155: a CHECK ran `query_to_xml` or a DBA's operator),
/// with its base type; a composite type's code is its attributes' types (round 156: a domain
/// inside one), and so is a table's or view's row type when one of those is a type of the DBA's;
/// an array type's code (`_claim`) is its element type, a range's its subtype, a multirange's its
/// range (round 157: code named only `_verified_claim` or `claim_log` ran the domain's CHECK).
pub(super) const DBA_CODE: &str = "WITH code(schema, name, src, lang, setof, body) AS (
      SELECT n.nspname::text, p.proname::text,
          pg_catalog.concat_ws(' ',
            CASE WHEN p.prosqlbody IS NOT NULL THEN pg_catalog.pg_get_functiondef(p.oid)
              ELSE pg_catalog.concat_ws(' ', p.prosrc, pg_catalog.pg_get_function_arguments(p.oid),
                pg_catalog.pg_get_function_result(p.oid)) END,
            -- DDL runs the event triggers' functions: the code of each function that may run DDL
            -- (a word of a DDL command, or SQL built at run time) names them (round 260 CS1: a
            -- helper's scratch table ran one that wrote into another campaign's table and set
            -- bytea_output, unseen; round 263 CV4: naming them in every function's code matched
            -- their names in other schemas too). unscharf's own catalog watch is left out, by its
            -- trigger's and function's names (round 263 CV3: not the whole schema).
            -- In a SQL function, `SELECT … INTO t` creates a table (round 266 CY2).
            CASE WHEN p.prosrc ~* '\\m(create|alter|drop|comment|grant|revoke|security|import|refresh|reindex|cluster|execute)\\M'
              OR (l.lanname = 'sql' AND p.prosrc ~* '\\minto\\M')
            THEN (SELECT pg_catalog.string_agg(pg_catalog.format('%I.%I()', en.nspname, ep.proname), ' ')
               FROM pg_catalog.pg_event_trigger e JOIN pg_catalog.pg_proc ep ON ep.oid = e.evtfoid
                 JOIN pg_catalog.pg_namespace en ON en.oid = ep.pronamespace
               WHERE e.evtenabled <> 'D' AND ep.oid <> p.oid
                 AND NOT (e.evtname = 'unscharf_catalog_changed' AND en.nspname = 'unscharf_watch'
                   AND ep.proname = 'catalog_changed')) END),
          l.lanname::text, p.proretset,
          CASE WHEN p.prosqlbody IS NOT NULL THEN pg_catalog.pg_get_function_sqlbody(p.oid) ELSE p.prosrc END
        FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
          JOIN pg_catalog.pg_language l ON l.oid = p.prolang
        WHERE p.oid >= 16384 AND l.lanname <> 'c'
      UNION ALL SELECT n.nspname::text, p.proname::text, pg_catalog.concat_ws(' ', a.aggtransfn::text,
          a.aggfinalfn::text, a.aggcombinefn::text, a.aggserialfn::text, a.aggdeserialfn::text,
          a.aggmtransfn::text, a.aggminvtransfn::text, a.aggmfinalfn::text), 'aggregate', false, NULL
        FROM pg_catalog.pg_aggregate a JOIN pg_catalog.pg_proc p ON p.oid = a.aggfnoid
          JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        WHERE p.oid >= 16384
      UNION ALL SELECT n.nspname::text, t.typname::text, pg_catalog.concat_ws(' ', t.typdefault,
          pg_catalog.format_type(t.typbasetype, NULL),
          (SELECT pg_catalog.string_agg(pg_catalog.pg_get_constraintdef(k.oid), ' ')
             FROM pg_catalog.pg_constraint k WHERE k.contypid = t.oid))
          , NULL, NULL, NULL
        FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typtype = 'd' AND t.oid >= 16384
      UNION ALL SELECT n.nspname::text, t.typname::text,
          (SELECT pg_catalog.string_agg(pg_catalog.format_type(a.atttypid, NULL), ' ') FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped)
          , NULL, NULL, NULL
        FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
          JOIN pg_catalog.pg_class c ON c.oid = t.typrelid
        WHERE t.oid >= 16384 AND (c.relkind = 'c' OR EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
          WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.atttypid >= 16384))
      UNION ALL SELECT n.nspname::text, t.typname::text, pg_catalog.format_type(t.typelem, NULL)
          , NULL, NULL, NULL
        FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
        WHERE t.oid >= 16384 AND t.typcategory = 'A' AND EXISTS (SELECT 1 FROM pg_catalog.pg_type e
          LEFT JOIN pg_catalog.pg_class c ON c.oid = e.typrelid WHERE e.oid = t.typelem AND e.oid >= 16384
            AND (e.typtype IN ('d', 'r', 'm') OR c.relkind = 'c' OR EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.atttypid >= 16384)))
      UNION ALL SELECT n.nspname::text, t.typname::text, pg_catalog.format_type(r.rngsubtype, NULL)
          , NULL, NULL, NULL
        FROM pg_catalog.pg_range r JOIN pg_catalog.pg_type t ON t.oid = r.rngtypid
          JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace WHERE t.oid >= 16384
      UNION ALL SELECT n.nspname::text, t.typname::text, pg_catalog.format_type(r.rngtypid, NULL)
          , NULL, NULL, NULL
        FROM pg_catalog.pg_range r JOIN pg_catalog.pg_type t ON t.oid = r.rngmultitypid
          JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace WHERE t.oid >= 16384
      UNION ALL SELECT n.nspname::text, c.relname::text, pg_catalog.pg_get_viewdef(c.oid), NULL, NULL, NULL
        FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('v', 'm') AND (n.nspname NOT IN ('pg_catalog', 'information_schema') OR c.oid >= 16384))
    SELECT code.schema, code.name, code.src, EXISTS (SELECT 1 FROM pg_catalog.pg_class c
        WHERE c.relkind = 'S'
          AND pg_catalog.strpos(pg_catalog.lower(code.src), pg_catalog.lower(c.relname::text)) > 0),
      code.lang, code.setof, code.body
    FROM code";
/// The names of set-returning functions (see `code_order::Lookups`), and in a row of its own (a
/// NULL name) whether the database has a nondeterministic collation.
pub(super) const SET_RETURNING: &str =
    "SELECT DISTINCT p.proname::text, false FROM pg_catalog.pg_proc p WHERE p.proretset
    UNION ALL SELECT NULL, EXISTS (SELECT FROM pg_catalog.pg_collation c WHERE NOT c.collisdeterministic)";
/// Unique keys that prove a lookup finds at most one row (see `code_order`): valid, checked at
/// once (a deferred one may hold duplicates until commit), of plain columns without a predicate,
/// and not of a table with inheritance children (a query of the parent reads theirs too), nor
/// under a nondeterministic collation. Only an index's key columns count, not those it INCLUDEs.
pub(super) const ONE_ROW_KEYS: &str = "SELECT i.indrelid, ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = i.indrelid AND a.attnum = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1]))
    FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
    WHERE i.indisunique AND i.indisvalid AND i.indimmediate AND i.indpred IS NULL AND i.indexprs IS NULL
      AND NOT (c.relkind = 'r' AND c.relhassubclass)
      -- Keys compared under a collation that calls different strings equal, the index's or the
      -- column's, may match several rows (round 187 X4).
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_collation l WHERE NOT l.collisdeterministic
        AND (l.oid = ANY (i.indcollation::pg_catalog.oid[]) OR l.oid IN (SELECT a.attcollation
          FROM pg_catalog.pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[]))))";
/// The DBA's operators and casts with the function each runs (see `code_reads::Graph`): code that
/// uses one runs that function without naming it (round 147: `OPERATOR(public.###)`, a cast to
/// `dob_claim`). A cast is listed by its target type's name. `*` marks what code runs without
/// any sign of it (round 150): an implicit or assignment cast, a comparison operator, which
/// `IS DISTINCT FROM`, `IN`, `CASE`, `NULLIF`, `BETWEEN`, `LIKE` or `SIMILAR TO` run without its
/// symbol, and a domain's CHECK or DEFAULT, which any value of the domain runs (round 153).
/// `!c-trigger` marks a trigger function in C other than contrib's harmless ones: its code cannot
/// be read (round 150: refint's `check_primary_key` compared with the customers' birth dates).
pub(super) const DBA_OPERATORS_AND_CASTS: &str = "SELECT CASE WHEN o.oprname IN ('=', '<>', '<', '>', '<=', '>=',
        '~~', '~~*', '!~~', '!~~*', '~', '!~', '~*', '!~*') THEN '*' ELSE o.oprname::text END, n.nspname::text, p.proname::text
    FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_proc p ON p.oid = o.oprcode
      JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    WHERE o.oid >= 16384
    UNION ALL SELECT CASE WHEN c.castcontext IN ('i', 'a') THEN '*' ELSE t.typname::text END,
      n.nspname::text, p.proname::text
    FROM pg_catalog.pg_cast c JOIN pg_catalog.pg_proc p ON p.oid = c.castfunc
      JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
      JOIN pg_catalog.pg_type t ON t.oid = c.casttarget
    WHERE c.oid >= 16384
    UNION ALL SELECT '*', n.nspname::text, p.proname::text
    FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_proc p ON p.oid = d.refobjid
      JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    WHERE d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
      AND (d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass
             AND EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.oid = d.objid AND k.contypid <> 0)
           OR d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass
             AND EXISTS (SELECT 1 FROM pg_catalog.pg_type t WHERE t.oid = d.objid AND t.typtype = 'd'))
    UNION ALL SELECT '!c-trigger', n.nspname::text, p.proname::text
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
      JOIN pg_catalog.pg_language l ON l.oid = p.prolang
    WHERE p.oid >= 16384 AND l.lanname IN ('c', 'internal') AND p.prorettype = 'pg_catalog.trigger'::pg_catalog.regtype
      AND (p.prosrc, pg_catalog.regexp_replace(coalesce(p.probin, ''), '^.*/', '')) NOT IN
        (('moddatetime', 'moddatetime'), ('insert_username', 'insert_username'), ('lo_manage', 'lo'))";
/// Sequences with the table whose serial or identity column owns them.
pub(super) const SEQUENCES: &str = "SELECT n.nspname::text, c.relname::text, d.refobjid
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
      AND d.objid = c.oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype IN ('a', 'i')
    WHERE c.relkind = 'S'";
/// Function names by schema, each with whether a function of that name was created after initdb
/// (by a DBA or an extension): in pg_catalog such a one is not built-in (round 96).
pub(super) const FUNCTIONS: &str = "SELECT n.nspname::text, p.proname::text, pg_catalog.bool_or(p.oid >= 16384)
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace GROUP BY 1, 2";
pub(super) const SCHEMAS: &str = "SELECT nspname::text, coalesce(nspacl::text, '') FROM pg_catalog.pg_namespace";
/// Role memberships: read only for the fingerprint, so that a change reaches every session.
pub(super) const AUTH_MEMBERS: &str = "SELECT roleid, member FROM pg_catalog.pg_auth_members";
/// Roles' names, whether they inherit and whether they are superusers (MEMBERSHIPS reads that, round 71): for the fingerprint too.
pub(super) const ROLES: &str =
    "SELECT oid, rolname::text, rolinherit::text, rolsuper::text, rolcanlogin::text FROM pg_catalog.pg_roles";
/// Operators outside pg_catalog, and those a DBA or an extension put into it (an OID from
/// FirstNormalObjectId on: round 96), each with whether one of that name is such a one.
pub(super) const USER_OPERATORS: &str = "SELECT o.oprname::text, pg_catalog.bool_or(n.nspname = 'pg_catalog'),
      pg_catalog.array_agg(DISTINCT n.nspname::text) FILTER (WHERE n.nspname <> 'pg_catalog')
    FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
    WHERE n.nspname <> 'pg_catalog' OR o.oid >= 16384 GROUP BY 1";
/// See `Catalog::user_cast_types` (rounds 27 and 28: a DBA's cast to `zeitung.leadref`, and one
/// to a composite type with such a field, returned leads; a domain's CHECK answered questions).
/// Type dependencies are listed once, then followed (round 29: a recursive step that paired all
/// of pg_type with every type found took 10 s on 2,000 tables; this takes some 70 ms).
pub(super) const USER_CAST_TYPES: &str = "WITH RECURSIVE edges(dep, oid) AS MATERIALIZED (
      SELECT typelem, oid FROM pg_catalog.pg_type WHERE typelem <> 0
      UNION ALL SELECT typbasetype, oid FROM pg_catalog.pg_type WHERE typbasetype <> 0
      UNION ALL SELECT a.atttypid, t.oid FROM pg_catalog.pg_attribute a
        JOIN pg_catalog.pg_type t ON t.typrelid = a.attrelid WHERE t.typrelid <> 0
      UNION ALL SELECT rngsubtype, rngtypid FROM pg_catalog.pg_range
      UNION ALL SELECT rngtypid, rngmultitypid FROM pg_catalog.pg_range),
    dba_opclass(oid, opcintype, opcdefault) AS MATERIALIZED (
      SELECT DISTINCT oc.oid, oc.opcintype, oc.opcdefault FROM pg_catalog.pg_opclass oc
        JOIN (SELECT amprocfamily, amproc FROM pg_catalog.pg_amproc
              UNION ALL SELECT o.amopfamily, r.oprcode FROM pg_catalog.pg_amop o
                JOIN pg_catalog.pg_operator r ON r.oid = o.amopopr) m(family, func) ON m.family = oc.opcfamily
        JOIN pg_catalog.pg_proc p ON p.oid = m.func::pg_catalog.oid
        JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        WHERE (n.nspname <> 'pg_catalog' OR p.oid >= 16384)),
    risky(oid) AS (
      SELECT c.casttarget FROM pg_catalog.pg_cast c JOIN pg_catalog.pg_proc p ON p.oid = c.castfunc
        JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE (n.nspname <> 'pg_catalog' OR p.oid >= 16384)
      UNION SELECT t.oid FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typtype = 'd' AND (n.nspname NOT IN ('pg_catalog', 'information_schema') OR t.oid >= 16384)
      UNION SELECT r.rngtypid FROM pg_catalog.pg_range r
        JOIN pg_catalog.pg_proc p ON p.oid IN (r.rngcanonical::pg_catalog.oid, r.rngsubdiff::pg_catalog.oid)
        JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE (n.nspname <> 'pg_catalog' OR p.oid >= 16384)
      UNION SELECT t.oid FROM pg_catalog.pg_type t
        JOIN pg_catalog.pg_proc p ON p.oid IN (t.typinput::pg_catalog.oid, t.typoutput::pg_catalog.oid,
          t.typreceive::pg_catalog.oid, t.typsend::pg_catalog.oid, t.typmodin::pg_catalog.oid,
          t.typmodout::pg_catalog.oid, t.typanalyze::pg_catalog.oid)
        JOIN pg_catalog.pg_language l ON l.oid = p.prolang WHERE l.lanname NOT IN ('c', 'internal')
      UNION SELECT opcintype FROM dba_opclass WHERE opcdefault
      UNION SELECT r.rngtypid FROM pg_catalog.pg_range r JOIN dba_opclass o ON o.oid = r.rngsubopc
      UNION SELECT e.oid FROM edges e JOIN risky r ON e.dep = r.oid)
    SELECT t.oid, n.nspname::text, t.typname::text FROM pg_catalog.pg_type t
      JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace WHERE t.oid IN (SELECT oid FROM risky)";
/// See `Catalog::implicit_code` (round 64). A built-in type with a default operator class of its
/// own in pg_catalog cannot get another, so only types without one (json, xml, point) matter.
pub(super) const IMPLICIT_CODE: &str = "SELECT n.nspname::text, p.proname::text,
      'an implicit cast ' || pg_catalog.format_type(c.castsource, NULL) || ' → '
        || pg_catalog.format_type(c.casttarget, NULL)
    FROM pg_catalog.pg_cast c JOIN pg_catalog.pg_proc p ON p.oid = c.castfunc
      JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    WHERE c.castcontext = 'i' AND (n.nspname <> 'pg_catalog' OR p.oid >= 16384)
  UNION
    SELECT n.nspname::text, p.proname::text,
      'the default ' || am.amname || ' operator class ' || oc.opcname || ' for '
        || pg_catalog.format_type(oc.opcintype, NULL)
    FROM pg_catalog.pg_opclass oc JOIN pg_catalog.pg_am am ON am.oid = oc.opcmethod
      JOIN pg_catalog.pg_type t ON t.oid = oc.opcintype
      JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace
      JOIN (SELECT amprocfamily, amproc FROM pg_catalog.pg_amproc
            UNION ALL SELECT o.amopfamily, r.oprcode FROM pg_catalog.pg_amop o
              JOIN pg_catalog.pg_operator r ON r.oid = o.amopopr) m(family, func)
        ON m.family = oc.opcfamily
      JOIN pg_catalog.pg_proc p ON p.oid = m.func::pg_catalog.oid
      JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    WHERE oc.opcdefault AND tn.nspname = 'pg_catalog' AND (n.nspname <> 'pg_catalog' OR p.oid >= 16384)";
/// Postgres counts a superuser a member of every role; unscharf counts it a member of its own
/// name only, so that it acts under no purpose that names it merely through a role (round 23).
pub(super) const MEMBERSHIPS: &str = "SELECT r.rolname::text FROM pg_catalog.pg_roles r
    WHERE pg_catalog.pg_has_role($1::text, r.oid, 'MEMBER')
      AND (r.rolname = $1::text OR NOT (SELECT s.rolsuper FROM pg_catalog.pg_roles s WHERE s.rolname = $1::text))";
/// The settings that change how the clock reads (policy::decide::clock), as a session gets them
/// that sets none: the server's, its database's and the role's (the catalog connection sets none).
pub(super) const CLOCK_DEFAULTS: &str = "SELECT pg_catalog.lower(name), reset_val FROM pg_catalog.pg_settings
    WHERE name IN ('TimeZone', 'DateStyle', 'IntervalStyle')";
/// Extensions and procedural languages: a dotted setting whose prefix names one (`pg_trgm.…`,
/// `plpgsql.…`) is theirs and may change what their functions compute; any other dotted name is a
/// custom setting, which only current_setting and its kin read (refused in filters outright).
pub(super) const SETTING_PREFIXES: &str =
    "SELECT extname::text FROM pg_catalog.pg_extension UNION SELECT lanname::text FROM pg_catalog.pg_language";

/// Whole rows of a relation, however they travel: the DBA's functions that may bring them into a
/// statement (kind `f`), and the types that hold them (kind `t`), each with the relation, in one
/// walk of the type graph. Columns: kind, schema, name, relation, type OID (NULL for `f`).
///
/// A type holds a relation's rows when it is the relation's row type, or an array, domain, range,
/// multirange, composite type or other row with a field of such a type.
///
/// A function may bring them when such a type is its result type, an OUT parameter's, an
/// argument's, or that of an argument's default. Round 197 AH1: a listed `RETURNS SETOF customers`
/// gave every column in clear, and Postgres reports such columns with table OID 0, so the
/// RowDescription guard cannot see them. Round 201 AL1: an argument of the row type gives a
/// parameter passed to it that type, and a polymorphic helper handed the same parameter returned
/// whole customers; AL2: so did a polymorphic argument's default `NULL::customers`.
///
/// A value of such a type cast from nothing (`NULL::customers`) makes a polymorphic function
/// (`anyelement`, `anyarray`) return rows of that type (round 199 AJ2: a listed "row by id" helper
/// returned whole customers).
pub(in crate::catalog) const ROW_CARRIERS: &str = "WITH RECURSIVE
    holds(outer_type, inner_type) AS MATERIALIZED (
      SELECT ty.oid, ty.typelem FROM pg_catalog.pg_type ty WHERE ty.typelem <> 0
      UNION ALL SELECT ty.oid, ty.typbasetype FROM pg_catalog.pg_type ty WHERE ty.typbasetype <> 0
      UNION ALL SELECT r.rngtypid, r.rngsubtype FROM pg_catalog.pg_range r
      UNION ALL SELECT r.rngmultitypid, r.rngtypid FROM pg_catalog.pg_range r
      UNION ALL SELECT cl.reltype, a.atttypid FROM pg_catalog.pg_attribute a
        JOIN pg_catalog.pg_class cl ON cl.oid = a.attrelid
        WHERE a.attnum > 0 AND NOT a.attisdropped AND cl.reltype <> 0),
    carriers(t, rel) AS MATERIALIZED (
      SELECT c.reltype, c.oid FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.reltype <> 0 AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      UNION SELECT h.outer_type, k.rel FROM carriers k JOIN holds h ON h.inner_type = k.t)
  SELECT DISTINCT 'f'::pg_catalog.text, n.nspname::pg_catalog.text, p.proname::pg_catalog.text, k.rel,
      NULL::pg_catalog.oid
    FROM pg_catalog.pg_proc p
    JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    JOIN carriers k ON k.t = p.prorettype OR k.t = ANY (p.proargtypes::pg_catalog.oid[])
      OR k.t = ANY (p.proallargtypes)
      OR pg_catalog.strpos(pg_catalog.pg_get_expr(p.proargdefaults, 0), pg_catalog.format_type(k.t, NULL)) > 0
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  UNION ALL
  SELECT DISTINCT 't', n.nspname::pg_catalog.text, t.typname::pg_catalog.text, k.rel, t.oid
    FROM carriers k
    JOIN pg_catalog.pg_type t ON t.oid = k.t
    JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace";
/// The event triggers as they stand: each one's OID, state, function and event (see
/// `live::event_triggers`).
pub(super) const EVENT_TRIGGERS: &str = "SELECT COALESCE(pg_catalog.string_agg(
      pg_catalog.concat_ws(':', e.oid, e.evtenabled, e.evtfoid, e.evtevent), ',' ORDER BY e.oid), '')
    FROM pg_catalog.pg_event_trigger e";
