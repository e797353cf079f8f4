//! The catalog query behind row filters that depend on the session: its settings, its
//! search_path, or the order a plan reads rows in.

/// Row filters whose result the session's settings change: the built-in functions and operators
/// (row comparisons name only operators, a window's RANGE frame its in-range function: round 167)
/// their stored trees call that are not immutable, every
/// function of the DBA's or an extension's, (`timestamptz_ge_date` converts a date at local
/// midnight, `to_tsvector(text)` reads default_text_search_config), except those that read no
/// setting (the clock's instant, role and privilege checks, the session's identity); the
/// SQL value functions that give a local date or time; and casts through text. Of row-level
/// security policies and views' and rules' queries; empty when nothing depends.
/// The fourth column: what in them depends on search_path (round 168 F4: `tableoid::regclass::text`
/// prints a name qualified only when the path does not show it; `to_regclass`, `current_schema`).
/// The fifth: what in a row-level security policy takes rows in the order a plan reads them.
pub(in crate::catalog) const SESSION_FILTERS: &str = "WITH RECURSIVE
    -- Types whose values print the same on any search_path: the built-in scalar types that hold
    -- no object's name, their arrays, and domains and enums over them. Anything else in a filter
    -- (reg* types, records, composites, ranges, polymorphic types) counts as printing names by
    -- the path: rounds 168-176 found a new wrapper around regclass each time a list of the
    -- dependent types was extended, so the list is now of the independent ones.
    -- A type with an operator class of the DBA's is not plain: comparing or hashing its values
    -- (array_position, = ANY, DISTINCT) runs the DBA's functions (round 178 P3: an enum's).
    -- Postgres also takes a class for a type a value casts to without a function (round 179 Q2:
    -- a binary cast from json to a DBA's type made its class json's); one for a pseudo-type
    -- (anyarray, anyelement) serves every type it stands for.
    dba_class_types(t) AS MATERIALIZED (
      SELECT oc.opcintype FROM pg_catalog.pg_opclass oc
      WHERE oc.oid >= 16384 OR EXISTS (
        SELECT FROM pg_catalog.pg_amproc ap WHERE ap.amprocfamily = oc.opcfamily AND ap.amproc::pg_catalog.oid >= 16384)
        OR EXISTS (SELECT FROM pg_catalog.pg_amop ao JOIN pg_catalog.pg_operator o ON o.oid = ao.amopopr
          WHERE ao.amopfamily = oc.opcfamily AND o.oprcode::pg_catalog.oid >= 16384)),
    dba_opclass(t) AS MATERIALIZED (
      SELECT t FROM dba_class_types
      UNION SELECT c.castsource FROM pg_catalog.pg_cast c JOIN dba_class_types d ON d.t = c.casttarget
        WHERE c.castmethod = 'b'
      UNION SELECT ty.oid FROM pg_catalog.pg_type ty WHERE EXISTS (SELECT FROM dba_class_types d
        JOIN pg_catalog.pg_type p ON p.oid = d.t WHERE p.typtype = 'p')),
    plain(t) AS (
      SELECT u.t FROM pg_catalog.unnest('{0,16,17,18,19,20,21,23,25,26,27,28,29,114,142,650,700,701,705,790,829,869,
          1042,1043,1082,1083,1114,1184,1186,1266,1560,1562,1700,2950,3220,3614,3615,3802,4072,5069}'::pg_catalog.oid[]) u(t)
        WHERE u.t NOT IN (SELECT t FROM dba_opclass)
        UNION SELECT ty.oid FROM pg_catalog.pg_type ty
          WHERE ty.typtype = 'e' AND ty.oid NOT IN (SELECT t FROM dba_opclass)
      UNION SELECT ty.oid FROM pg_catalog.pg_type ty JOIN plain
        ON (ty.typtype = 'd' AND plain.t = ty.typbasetype)
          OR (ty.typcategory = 'A' AND ty.typlen = -1 AND plain.t = ty.typelem)),
    -- Aggregates whose result follows the order rows come in (ties too, so an ORDER BY inside
    -- does not count): the collecting ones, the ordered-set and hypothetical ones, and sums of
    -- floating-point values, whose rounding follows the order; `any_value` (Postgres 16) takes any.
    -- (min and max: below, by the types they compare.)
    order_aggs(f) AS MATERIALIZED (
      SELECT a.aggfnoid::pg_catalog.oid FROM pg_catalog.pg_aggregate a JOIN pg_catalog.pg_proc p ON p.oid = a.aggfnoid
      WHERE a.aggkind <> 'n' OR p.proname ~ '^(array_agg|string_agg|jsonb?_agg(_strict)?|jsonb?_object_?agg([a-z_]*)|xmlagg|any_value)$'
        OR (p.proname NOT IN ('min', 'max') AND p.proargtypes::pg_catalog.oid[] && '{700,701}'::pg_catalog.oid[])),
    -- Window functions whose value follows the order among peers (ranks and counts over a RANGE
    -- frame do not: peers share them).
    order_windows(f) AS MATERIALIZED (
      SELECT p.oid FROM pg_catalog.pg_proc p WHERE p.proname IN ('row_number', 'ntile', 'lag', 'lead',
        'first_value', 'last_value', 'nth_value') OR p.oid IN (SELECT f FROM order_aggs)),
    -- Collations that call strings equal that differ ('A' and 'a'): which of them min, max,
    -- GROUP BY or DISTINCT keep follows the order (round 183 T2).
    loose_collations(c) AS MATERIALIZED (
      SELECT oid FROM pg_catalog.pg_collation WHERE NOT collisdeterministic),
    -- Types whose equal values may print apart: numbers, intervals, char(n), jsonb, and the
    -- arrays, domains and ranges over them, and every row type (a row may hold one: round 184 U2).
    loose_types(t) AS (
      SELECT ty.oid FROM pg_catalog.pg_type ty WHERE ty.typtype = 'c'
        OR ty.oid = ANY ('{700,701,1186,1700,3802,1042,2249,2276,2277,2283,3500,5077,5078,5079}'::pg_catalog.oid[])
      UNION SELECT ty.oid FROM pg_catalog.pg_type ty JOIN loose_types l
        ON (ty.typtype = 'd' AND l.t = ty.typbasetype) OR (ty.typcategory = 'A' AND l.t = ty.typelem)
          OR (ty.typtype = 'r' AND l.t = (SELECT r.rngsubtype FROM pg_catalog.pg_range r WHERE r.rngtypid = ty.oid))
          OR (ty.typtype = 'm' AND l.t = (SELECT r.rngtypid FROM pg_catalog.pg_range r WHERE r.rngmultitypid = ty.oid))),
    e0(rel, what, tree) AS (
      SELECT p.polrelid, 'the row-level security policy ' || p.polname,
        coalesce(p.polqual::text, '') || ' ' || coalesce(p.polwithcheck::text, '')
      FROM pg_catalog.pg_policy p
      UNION ALL SELECT r.ev_class, 'the view or rule ' || r.rulename, r.ev_action::text || ' ' || coalesce(r.ev_qual::text, '')
      FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class c ON c.oid = r.ev_class
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') OR c.oid >= 16384),
    -- The views a filter reads, at any depth: their queries run inside it, so what they compute
    -- counts as the filter's own (round 179 Q1's order-dependent query could sit in a view).
    read_views(rel, what, v) AS (
      SELECT e0.rel, e0.what, c.oid FROM e0, pg_catalog.regexp_matches(e0.tree, ':relid ([0-9]+)', 'g') m(x)
        JOIN pg_catalog.pg_class c ON c.oid = m.x[1]::pg_catalog.oid
      WHERE c.relkind = 'v' AND c.oid <> e0.rel
      -- Lateral, so that only the views reached are searched.
      UNION SELECT rv.rel, rv.what, c.oid FROM read_views rv, LATERAL pg_catalog.regexp_matches((SELECT r.ev_action::text
          FROM pg_catalog.pg_rewrite r WHERE r.ev_class = rv.v AND r.rulename = '_RETURN'), ':relid ([0-9]+)', 'g') m(x)
        JOIN pg_catalog.pg_class c ON c.oid = m.x[1]::pg_catalog.oid
      WHERE c.relkind = 'v'),
    e(rel, what, tree) AS (
      SELECT e0.rel, e0.what, e0.tree || coalesce((SELECT pg_catalog.string_agg(r.ev_action::text, ' ')
          FROM read_views rv JOIN pg_catalog.pg_rewrite r ON r.ev_class = rv.v AND r.rulename = '_RETURN'
          WHERE rv.rel = e0.rel AND rv.what = e0.what), '')
      FROM e0)
    SELECT e.rel, e.what, pg_catalog.concat_ws(', ', fs.settings,
        CASE WHEN e.tree ~ '[{]SQLVALUEFUNCTION :op [0125678] ' THEN 'a local date or time (CURRENT_DATE, LOCALTIME, …)' END,
        CASE WHEN e.tree ~ '[{]COERCEVIAIO ' THEN 'a cast through text' END,
        CASE WHEN e.tree ~ '[{]XMLEXPR ' THEN 'an XML value made from columns' END,
        -- A view's own LIMIT or window is not refused outright (it trims what the view shows,
        -- and a CRM's views have them), only with the planner's settings moved.
        CASE WHEN o.ordered AND e.what NOT LIKE 'the row-level security policy %'
          THEN 'rows in the order a plan reads them (LIMIT, OFFSET, DISTINCT ON, a window, ARRAY(SELECT …), string_agg, array_agg, min, max or GROUP BY over numbers, …)' END),
      pg_catalog.concat_ws(', ', fs.names,
        CASE WHEN e.tree ~ '[{]SQLVALUEFUNCTION :op 14 ' THEN 'CURRENT_SCHEMA' END,
        -- Every field that holds a type or a list of them (round 173 H1: a column definition
        -- list's `:funccoltypes (o 2205)`), whatever the node; a transition state is not printed.
        (SELECT 'values of type ' || pg_catalog.string_agg(DISTINCT pg_catalog.format_type(ty.oid, NULL), ', ')
          FROM pg_catalog.regexp_matches(e.tree,
              ':([a-zA-Z_]*(?:[tT]ype|[tT]ypes|[tT]ypid|[tT]ypeId|[tT]ypeid)) [(]?o?((?: ?[0-9]+)+)', 'g') m(x),
            pg_catalog.regexp_split_to_table(pg_catalog.btrim(m.x[2]), ' +') n(t)
            -- Enum fields end in `type` too (`:nulltesttype 1`); only a type's number is a type.
            JOIN pg_catalog.pg_type ty ON ty.oid = n.t::pg_catalog.oid
          WHERE m.x[1] <> 'aggtranstype' AND ty.oid NOT IN (SELECT t FROM plain)),
        -- A view read inside a filter prints what its own query prints (round 176 N3:
        -- pg_views.definition); a view's own rule names the view itself.
        (SELECT 'the view ' || pg_catalog.string_agg(DISTINCT v.oid::pg_catalog.regclass::text, ', ')
          FROM pg_catalog.regexp_matches(e.tree, ':relid ([0-9]+)', 'g') m(x)
            JOIN pg_catalog.pg_class v ON v.oid = m.x[1]::pg_catalog.oid
          WHERE v.relkind = 'v' AND v.oid <> e.rel)),
      -- The fifth: rows taken in the order a plan reads them, which the planner's settings change
      -- (round 179 Q1: work_mem turned a GROUP BY from sorted to hashed under string_agg) and so
      -- does another session's scan of a large table (round 182 S2: synchronized scans).
      CASE WHEN o.ordered AND e.what LIKE 'the row-level security policy %'
        THEN 'LIMIT, OFFSET, DISTINCT ON, a window, ARRAY(SELECT …), string_agg, array_agg, min, max or GROUP BY over numbers, …' ELSE '' END
    FROM e, LATERAL (SELECT e.tree ~ ':limit(Count|Offset) [{]|:hasDistinctOn true|:subLinkType 6 |:tablesample [{]'
        OR EXISTS (SELECT FROM pg_catalog.regexp_matches(e.tree, ':aggfnoid ([0-9]+)', 'g') m(x)
          JOIN order_aggs a ON a.f = m.x[1]::pg_catalog.oid)
        OR EXISTS (SELECT FROM pg_catalog.regexp_matches(e.tree, ':winfnoid ([0-9]+)', 'g') m(x)
          JOIN order_windows w ON w.f = m.x[1]::pg_catalog.oid)
        -- A ROWS frame cuts between peers.
        OR EXISTS (SELECT FROM pg_catalog.regexp_matches(e.tree, ':frameOptions ([0-9]+)', 'g') m(x)
          WHERE m.x[1]::int & 4 <> 0)
        -- min, max, GROUP BY, DISTINCT and UNION keep one of equal values that may print apart
        -- (1.0 and 1.00, 0 and -0, a day and 24 hours, 'a' and 'a ' as char, 'A' and 'a' under a
        -- nondeterministic collation, arrays and rows of those): with such a type or collation in
        -- the tree, which one follows the order (rounds 182 S3, 183 T2).
        -- Chance: a sample, random() (round 184 U3), a random UUID (round 185 V3).
        OR EXISTS (SELECT FROM pg_catalog.regexp_matches(e.tree, ':funcid ([0-9]+)', 'g') m(x)
          JOIN pg_catalog.pg_proc p ON p.oid = m.x[1]::pg_catalog.oid WHERE p.proname IN ('random', 'random_normal', 'gen_random_uuid', 'uuid_generate_v1', 'uuid_generate_v1mc', 'uuid_generate_v4'))
        -- min and max (also as window functions), range intersections and unions, GROUP BY,
        -- DISTINCT (also an aggregate's: round 185 V1, sum(DISTINCT v)), UNION, INTERSECT and EXCEPT
        -- keep one of equal values (round 184 U1, U2).
        OR ((e.tree ~ ':groupClause [(]|:distinctClause [(]|:aggdistinct [(]|:all false|SETOPERATIONSTMT :op [23] '
            OR EXISTS (SELECT FROM pg_catalog.regexp_matches(e.tree, ':(?:aggfnoid|winfnoid) ([0-9]+)', 'g') m(x)
              JOIN pg_catalog.pg_proc p ON p.oid = m.x[1]::pg_catalog.oid
              WHERE p.proname IN ('min', 'max', 'range_intersect_agg', 'range_agg')))
          AND (EXISTS (SELECT FROM pg_catalog.regexp_matches(e.tree,
                ':([a-zA-Z_]*(?:[tT]ype|[tT]ypes|[tT]ypid|[tT]ypeId|[tT]ypeid)) [(]?o?((?: ?[0-9]+)+)', 'g') m(x),
                pg_catalog.regexp_split_to_table(pg_catalog.btrim(m.x[2]), ' +') n(t)
              JOIN loose_types l ON l.t = n.t::pg_catalog.oid)
            OR EXISTS (SELECT FROM pg_catalog.regexp_matches(e.tree, 'coll(id|ation) ([0-9]+)', 'g') m(x)
              JOIN loose_collations l ON l.c = m.x[2]::pg_catalog.oid)))) o(ordered), LATERAL (
        SELECT pg_catalog.string_agg(DISTINCT f.proname::text, ', ') FILTER (WHERE
            (f.provolatile <> 'i' OR f.oid >= 16384
              -- Built-ins marked IMMUTABLE that read settings (round 168: quote_ident reads
              -- quote_all_identifiers; the output functions, extra_float_digits and bytea_output),
              -- and aggregates whose support functions are not (jsonb_object_agg prints values).
              OR f.proname IN ('quote_ident', 'float4out', 'float8out', 'byteaout')
              OR EXISTS (SELECT FROM pg_catalog.pg_aggregate a,
                  pg_catalog.unnest(ARRAY[a.aggtransfn, a.aggfinalfn, a.aggcombinefn, a.aggmtransfn,
                    a.aggminvtransfn, a.aggmfinalfn]::pg_catalog.oid[]) u(fn)
                  JOIN pg_catalog.pg_proc s ON s.oid = u.fn
                WHERE a.aggfnoid = f.oid AND s.provolatile <> 'i'))
            AND f.proname !~ '^has_[a-z_]*_privilege$'
            AND f.proname NOT IN ('now', 'statement_timestamp', 'transaction_timestamp', 'clock_timestamp',
              'pg_has_role', 'row_security_active', 'current_user', 'session_user', 'current_database',
              'pg_backend_pid', 'pg_trigger_depth', 'txid_current', 'pg_current_xact_id')),
          pg_catalog.string_agg(DISTINCT f.proname::text, ', ') FILTER (WHERE NOT (
            -- A function counts as printing names by the path unless it takes and returns plain
            -- values, is none of the built-ins that print or look up names (or read the path),
            -- and is Postgres's own or a DBA's plain function that sets its own search_path.
            EXISTS (SELECT FROM plain WHERE plain.t = f.prorettype)
            -- A polymorphic argument is as plain as the value passed, whose type the tree shows.
            AND NOT EXISTS (SELECT FROM pg_catalog.unnest(f.proargtypes::pg_catalog.oid[]) a(t)
              WHERE a.t NOT IN (SELECT t FROM plain) AND a.t NOT IN (2276, 2277, 2283, 2776, 3500, 5077, 5078, 5079))
            AND f.proname !~ '^(current_schemas?|current_setting|set_config|to_reg[a-z]+|format_type|pg_get_[a-z_]+|pg_[a-z_]+_is_visible|pg_describe_object|pg_identify_object[a-z_]*|pg_collation_for|oidvectortypes|pg_input_[a-z_]+|satisfies_hash_partition|currtid2|ts_rewrite|convert|convert_from|convert_to)$'
            AND NOT (25 = ANY (f.proargtypes::pg_catalog.oid[])
              AND f.proname ~ '^(has_(table|sequence|column|any_column|function|type)_privilege|row_security_active)$')
            AND (f.oid < 16384 OR (f.prokind = 'f' AND f.prolang NOT IN (12, 13)
              AND EXISTS (SELECT FROM pg_catalog.unnest(f.proconfig) s(c) WHERE s.c ~* '^search_path=')))))
        -- Functions of the DBA's and of extensions count whatever they are marked (round 166:
        -- an IMMUTABLE one compared a timestamptz with a date; pg_trgm's read its thresholds).
        FROM (SELECT m.x[1]::oid FROM pg_catalog.regexp_matches(e.tree,
                ':(?:funcid|opfuncid|hashfuncid|negfuncid|aggfnoid|winfnoid|startInRangeFunc|endInRangeFunc) ([0-9]+)', 'g') m(x)
              UNION SELECT o.oprcode::oid FROM pg_catalog.regexp_matches(e.tree,
                ':(?:opnos?|eqop|sortop) [(]?o?((?: ?[0-9]+)+)', 'g') m(x),
                pg_catalog.regexp_split_to_table(pg_catalog.btrim(m.x[1]), ' +') n(opno)
                JOIN pg_catalog.pg_operator o ON o.oid = n.opno::oid) c(func)
        JOIN pg_catalog.pg_proc f ON f.oid = c.func) fs(settings, names)";
