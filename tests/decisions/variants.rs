//! Decisions under policies written for the case: contract ends, writable tables with protected
//! columns, and the wording of refusals.

use super::*;

#[test]
fn contract_end_and_policy_variants() {
    let cat = catalog();
    let pol = load_texts(
        &[
            (
                "stadtwerke.yaml",
                "campaign: stadtwerke\ncontract_ends: 2026-11-28\ntables: [stadtwerke.*]\npurposes:\n  old:\n    members: [a]\n    tables:\n      stadtwerke.tickets: { columns: all }\n",
            ),
            (
                "zeitung.yaml",
                "campaign: zeitung\ncontract_ends: 2026-11-29\ntables: [zeitung.*]\npurposes:\n  sales:\n    members: [b]\n    tables:\n      zeitung.leads: { columns: { name: allow, phone: { mask: last(2) } } }\n",
            ),
        ],
        None,
    )
    .unwrap();
    let none = BTreeSet::new();
    let path = [vec!["public".to_string()]];
    assert_eq!(
        verdict(
            &cat,
            &pol,
            "old",
            "SELECT subject FROM stadtwerke.tickets",
            &path,
            &none
        ),
        "refused: contract_ended"
    );
    assert_eq!(verdict(&cat, &pol, "old", "SELECT 1", &path, &none), "allowed");
    // The last contract day itself is still fine.
    assert_eq!(
        verdict(
            &cat,
            &pol,
            "sales",
            "SELECT name, phone FROM zeitung.leads",
            &path,
            &none
        ),
        "masked: phone"
    );
    // `lookup` defaults to false: an exact match on a masked column is still refused.
    assert_eq!(
        verdict(
            &cat,
            &pol,
            "sales",
            "SELECT name FROM zeitung.leads WHERE phone = $1",
            &path,
            &none
        ),
        "refused: protected_column"
    );
    // Unlisted columns are dropped: new data is private by default.
    assert_eq!(
        verdict(&cat, &pol, "sales", "SELECT * FROM zeitung.leads", &path, &none),
        "masked: phone; dropped: lead_id, email, postcode, contact_ok_until"
    );
}

#[test]
fn returning_and_merge_on_a_writable_table_with_protected_columns() {
    let cat = catalog();
    let pol = load_texts(
        &[(
            "stadtwerke.yaml",
            "campaign: stadtwerke\ntables: [stadtwerke.*]\npurposes:\n  desk:\n    members: [a]\n    tables:\n      stadtwerke.customers:\n        columns: { customer_no: allow, name: allow, phone: { mask: last(3), lookup: true }, email: { mask: email } }\n        write: [insert, update, delete]\n      stadtwerke.tickets: { columns: all, write: [insert, update] }\n      stadtwerke.meter_readings: { columns: all }\n",
        )],
        None,
    )
    .unwrap();
    let path = [vec!["public".to_string()]];
    let none = BTreeSet::new();
    let refused = "refused: protected_column";
    let cases = [
        ("UPDATE stadtwerke.customers SET name = 'x' WHERE customer_no = 1 RETURNING customer_no, phone", "masked: phone"),
        ("UPDATE stadtwerke.customers SET name = 'x' WHERE customer_no = 1 RETURNING *", "masked: phone, email; dropped: street, postcode, city, iban, birth_date, notes"),
        ("UPDATE stadtwerke.customers SET name = 'x' WHERE customer_no = 1 RETURNING iban", refused),
        ("UPDATE stadtwerke.customers SET name = 'x' WHERE customer_no = 1 RETURNING lower(phone)", refused),
        ("UPDATE stadtwerke.customers SET name = 'x' WHERE customer_no = 1 RETURNING phone AS name", "masked: name"),
        ("INSERT INTO stadtwerke.customers (customer_no, name, phone) VALUES (9, 'x', $1) RETURNING customer_no", "allowed"),
        ("INSERT INTO stadtwerke.customers (customer_no, name, phone) VALUES (9, 'x', $1) RETURNING email", "masked: email"),
        ("UPDATE stadtwerke.customers SET name = email WHERE customer_no = 1", refused),
        ("UPDATE stadtwerke.customers SET phone = phone WHERE customer_no = 1", refused),
        ("DELETE FROM stadtwerke.customers WHERE phone = $1 RETURNING name", "allowed"),
        ("DELETE FROM stadtwerke.customers WHERE phone LIKE $1 RETURNING name", refused),
        (
            "DELETE FROM stadtwerke.customers c USING stadtwerke.tickets t WHERE t.customer_no = c.customer_no RETURNING *",
            "masked: phone, email; dropped: street, postcode, city, iban, birth_date, notes",
        ),
        (
            "UPDATE stadtwerke.tickets t SET subject = 'x' FROM stadtwerke.customers c WHERE c.customer_no = t.customer_no RETURNING *",
            "masked: phone, email; dropped: street, postcode, city, iban, birth_date, notes",
        ),
        (
            "MERGE INTO stadtwerke.tickets t USING (VALUES (1, 'x')) v(id, s) ON t.ticket_id = v.id WHEN MATCHED THEN UPDATE SET subject = v.s WHEN NOT MATCHED THEN INSERT (subject) VALUES (v.s)",
            "allowed",
        ),
        (
            "MERGE INTO stadtwerke.tickets t USING stadtwerke.customers c ON t.customer_no = c.customer_no WHEN MATCHED THEN UPDATE SET note = c.name",
            "allowed",
        ),
        (
            "MERGE INTO stadtwerke.tickets t USING stadtwerke.customers c ON t.customer_no = c.customer_no WHEN MATCHED THEN UPDATE SET note = c.email",
            refused,
        ),
        (
            "MERGE INTO stadtwerke.tickets t USING stadtwerke.customers c ON t.note = c.phone WHEN MATCHED THEN UPDATE SET note = 'x'",
            refused,
        ),
        (
            "MERGE INTO stadtwerke.tickets t USING (VALUES (1)) v(id) ON t.ticket_id = v.id WHEN MATCHED THEN DELETE",
            "refused: outside_purpose",
        ),
        // Round 174 I1: a MERGE that writes nothing still takes the write lock.
        (
            "MERGE INTO stadtwerke.tickets t USING (VALUES (1)) v(x) ON t.ticket_id = v.x WHEN MATCHED THEN DO NOTHING",
            "refused: unsupported_statement",
        ),
        (
            "MERGE INTO stadtwerke.tickets t USING (VALUES (1, 'x')) v(id, s) ON t.ticket_id = v.id WHEN MATCHED THEN DO NOTHING WHEN NOT MATCHED THEN INSERT (subject) VALUES (v.s)",
            "allowed",
        ),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(sql, want)| {
            let got = verdict(&cat, &pol, "desk", sql, &path, &none);
            (got != *want).then(|| format!("  {sql}\n      expected {want}\n      got      {got}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Refusals say which rule, column, position and purpose: the text a DBA reads in the audit trail.
#[test]
fn refusal_messages_name_the_column_position_and_purpose() {
    let cat = catalog();
    let pol = policies();
    let path = vec![vec!["public".to_owned()]];
    let none = BTreeSet::new();
    let detail = |sql: &str| -> String {
        match judged(&cat, &pol, "billing_hotline", sql, &path, &none) {
            Err(r) => r.detail,
            Ok(_) => panic!("allowed: {sql}"),
        }
    };
    let phone = "stadtwerke.customers.phone";
    for (sql, parts) in [
        (
            "SELECT name FROM stadtwerke.customers ORDER BY phone",
            vec![phone, "ORDER BY", "billing_hotline"],
        ),
        (
            "SELECT count(*) FROM stadtwerke.customers GROUP BY email",
            vec!["customers.email", "GROUP BY"],
        ),
        (
            "SELECT name FROM stadtwerke.customers WHERE phone LIKE '1%'",
            vec![phone, "LIKE", "WHERE"],
        ),
        (
            "SELECT a.name FROM stadtwerke.customers a JOIN stadtwerke.customers b ON a.iban = b.iban",
            vec!["customers.iban", "JOIN"],
        ),
        (
            "SELECT rank() OVER (ORDER BY phone) FROM stadtwerke.customers",
            vec![phone, "window"],
        ),
        (
            "SELECT count(*) FROM stadtwerke.customers HAVING max(email) > 'a'",
            vec!["customers.email", "HAVING"],
        ),
        (
            "SELECT birth_date FROM stadtwerke.customers",
            vec!["customers.birth_date", "not visible", "billing_hotline"],
        ),
        (
            "SELECT md5(iban) FROM stadtwerke.customers",
            vec!["customers.iban", "md5"],
        ),
        (
            "INSERT INTO stadtwerke.tickets (subject, note) SELECT 'x', phone FROM stadtwerke.customers",
            vec![phone, "written"],
        ),
        ("SELECT c FROM stadtwerke.customers c", vec!["whole-row", "customers"]),
        (
            "SELECT * FROM zeitung.leads",
            vec!["zeitung.leads", "zeitung", "billing_hotline"],
        ),
    ] {
        let d = detail(sql);
        for part in parts {
            assert!(d.contains(part), "{sql}\n  detail: {d}\n  lacks: {part}");
        }
    }
}

/// Red-team round 20: an INSERT that returns rows, updates on conflict or reads its own target in
/// its source reads that table, and rule 4 counts it; only an INSERT that adds rows blindly does not.
#[test]
fn an_insert_that_reads_its_target_counts_as_a_read_for_rule_4() {
    let cat = catalog();
    let pol = load_texts(
        &[
            (
                "stadtwerke.yaml",
                "campaign: stadtwerke\ntables: [stadtwerke.*]\npurposes:\n  backoffice:\n    members: [q]\n    tables:\n      stadtwerke.tickets: { columns: all, write: [insert, update] }\n      stadtwerke.customers: { columns: { customer_no: allow } }\n",
            ),
            (
                "zeitung.yaml",
                "campaign: zeitung\ntables: [zeitung.*]\npurposes:\n  backoffice:\n    members: [q]\n    tables:\n      zeitung.subscriptions: { columns: all, write: [insert] }\n",
            ),
        ],
        None,
    )
    .unwrap();
    let none = BTreeSet::new();
    let path = [vec!["public".to_string()]];
    let reads = |sql: &str| -> Vec<String> {
        let all = judged(&cat, &pol, "backoffice", sql, &path, &none).unwrap_or_else(|r| panic!("{sql}: {r:?}"));
        all.iter().flat_map(|a| a.plan.reads.clone()).collect()
    };
    let t = "INSERT INTO stadtwerke.tickets (customer_no, subject, note)";
    for reading in [
        format!("{t} VALUES (1001, 's', 'n') RETURNING note"),
        format!("{t} SELECT customer_no, subject, note FROM stadtwerke.tickets"),
        format!("{t} VALUES (1001, 's', 'n') ON CONFLICT (ticket_id) DO UPDATE SET status = 'x'"),
        format!("{t} VALUES (1001, 's', 'n') ON CONFLICT (ticket_id) DO UPDATE SET note = tickets.note || 'x'"),
        // Round 21: the row count, and whether a key exists, without naming a column.
        format!("{t} SELECT 1001, 'x', 'y' FROM stadtwerke.tickets"),
        format!("{t} SELECT 1001, 'x', 'y' FROM stadtwerke.tickets GROUP BY () HAVING count(*) > 1"),
        format!("{t} VALUES (1001, 's', 'n') ON CONFLICT DO NOTHING"),
        format!("{t} VALUES (currval('stadtwerke.tickets_ticket_id_seq')::int, 's', 'n')"),
        // Round 67: a foreign key violation tells whether customer 1001 exists.
        format!("{t} VALUES (1001, 's', 'n')"),
        // Round 66: a duplicate-key error tells whether the key is stored.
        "INSERT INTO stadtwerke.tickets (ticket_id, subject) VALUES (1, 's')".to_owned(),
        "COPY stadtwerke.tickets (ticket_id, subject) FROM STDIN".to_owned(),
    ] {
        assert_eq!(reads(&reading), vec!["stadtwerke".to_string()], "{reading}");
        let then = format!("{reading}; INSERT INTO zeitung.subscriptions (lead_id, product, starts_on, monthly_eur) VALUES (1, 'x', now(), 1)");
        assert_eq!(
            verdict(&cat, &pol, "backoffice", &then, &path, &none),
            "refused: cross_campaign",
            "{then}"
        );
    }
    for blind in [
        "INSERT INTO stadtwerke.tickets (subject, note) VALUES ('s', 'n')".to_owned(),
        "COPY stadtwerke.tickets (subject) FROM STDIN".to_owned(),
    ] {
        assert_eq!(reads(&blind), Vec::<String>::new(), "{blind}");
    }
}

/// Red-team round 12: rule 4 within one message. A purpose that reads one campaign and may write
/// another must not read and write in the same simple Query either (a setting carried the value).
#[test]
fn a_read_earlier_in_the_message_counts_for_rule_4() {
    let cat = catalog();
    let pol = load_texts(
        &[
            (
                "stadtwerke.yaml",
                "campaign: stadtwerke\ntables: [stadtwerke.*]\npurposes:\n  review:\n    members: [q]\n    tables:\n      stadtwerke.tickets: { columns: all, write: [update] }\n",
            ),
            (
                "zeitung.yaml",
                "campaign: zeitung\ntables: [zeitung.*]\npurposes:\n  review:\n    members: [q]\n    tables:\n      zeitung.subscriptions: { columns: all }\n",
            ),
        ],
        None,
    )
    .unwrap();
    let none = BTreeSet::new();
    let path = [vec!["public".to_string()]];
    let both = "SELECT set_config('x.v', (SELECT string_agg(product, '|') FROM zeitung.subscriptions), false); UPDATE stadtwerke.tickets SET subject = current_setting('x.v') WHERE ticket_id = 1";
    assert_eq!(
        verdict(&cat, &pol, "review", both, &path, &none),
        "refused: cross_campaign"
    );
    // Each alone is fine in a fresh session.
    for one in both.split("; ") {
        assert_eq!(verdict(&cat, &pol, "review", one, &path, &none), "allowed", "{one}");
    }
}

/// Red-team round 12: a purpose that may write a table where a column is pseudonymised for it
/// could insert known values and read them back masked: a dictionary of the pseudonym.
#[test]
fn chosen_values_are_not_written_into_pseudonymised_columns() {
    let cat = catalog();
    let pol = load_texts(
        &[(
            "stadtwerke.yaml",
            "campaign: stadtwerke\ntables: [stadtwerke.*]\npurposes:\n  review:\n    members: [q]\n    tables:\n      stadtwerke.tickets: { columns: { ticket_id: allow, subject: allow, status: allow, note: { mask: redact }, customer_no: { mask: pseudonym } }, write: [insert, update] }\n      stadtwerke.customers: { columns: { customer_no: allow } }\n",
        )],
        Some(b"k"),
    )
    .unwrap();
    let none = BTreeSet::new();
    let path = [vec!["public".to_string()]];
    let refused = "refused: protected_column";
    for (sql, want) in [
        ("INSERT INTO stadtwerke.tickets (customer_no, subject) SELECT g, 'probe' FROM generate_series(1001, 1003) g", refused),
        ("INSERT INTO stadtwerke.tickets (customer_no, subject) VALUES (1001, 'probe') RETURNING ticket_id", refused),
        ("UPDATE stadtwerke.tickets SET customer_no = 1001 WHERE ticket_id = 1", refused),
        ("UPDATE stadtwerke.tickets SET (subject, customer_no) = ('x', 1002) WHERE ticket_id = 1", refused),
        ("COPY stadtwerke.tickets (customer_no, subject) FROM STDIN", refused),
        ("COPY stadtwerke.tickets FROM STDIN", refused),
        ("MERGE INTO stadtwerke.tickets t USING (VALUES (1)) v(x) ON false WHEN NOT MATCHED THEN INSERT (customer_no, subject) VALUES (1001, 'x')", refused),
        // Other columns, and a redacted one, may be written.
        ("INSERT INTO stadtwerke.tickets (subject, note) VALUES ('probe', 'n')", "allowed"),
        ("UPDATE stadtwerke.tickets SET status = 'closed' WHERE ticket_id = 1", "allowed"),
    ] {
        assert_eq!(verdict(&cat, &pol, "review", sql, &path, &none), want, "{sql}");
    }
}

/// Round 20: Postgres reads a sequence as a relation, so a sequence named like a table in a
/// schema searched earlier is what `FROM name` reads, while the proxy judged the table.
#[test]
fn a_sequence_shadowing_a_table_in_search_path_is_refused() {
    let mut cat = catalog();
    cat.add_sequence(unscharf::policy::QName::new("zeitung", "customers"), None);
    let pol = policies();
    let none = BTreeSet::new();
    let path = |s: &[&str]| vec![s.iter().map(|n| n.to_string()).collect::<Vec<_>>()];
    let sql = "SELECT name FROM customers";
    assert_eq!(
        verdict(
            &cat,
            &pol,
            "billing_hotline",
            sql,
            &path(&["zeitung", "stadtwerke"]),
            &none
        ),
        "refused: unsupported_statement"
    );
    assert_eq!(
        verdict(&cat, &pol, "billing_hotline", sql, &[], &none),
        "refused: unsupported_statement"
    );
    // Searched after the table, it would be read if the table's schema stopped being usable.
    assert_eq!(
        verdict(
            &cat,
            &pol,
            "billing_hotline",
            sql,
            &path(&["stadtwerke", "zeitung"]),
            &none
        ),
        "refused: unsupported_statement"
    );
    assert_eq!(
        verdict(&cat, &pol, "billing_hotline", sql, &path(&["stadtwerke"]), &none),
        "allowed"
    );
}

/// Round 96: objects a DBA or an extension puts into pg_catalog (`CREATE EXTENSION xml2 SCHEMA
/// pg_catalog`, whose xpath_table runs a query given as text) are not built-in: a purpose must list
/// such a function, grant such a relation, and no operator of such a name is used.
#[test]
fn objects_a_dba_puts_into_pg_catalog_are_not_built_in() {
    use unscharf::catalog::{Column, RelKind, Relation};
    use unscharf::policy::QName;
    let mut cat = catalog();
    for f in ["xpath_table", "rt96_customers", "lower"] {
        cat.add_function("pg_catalog", f);
        cat.dba_system_functions.insert(QName::new("pg_catalog", f));
    }
    cat.user_operators.insert("<%>".to_owned());
    cat.dba_system_operators.insert("<%>".to_owned());
    cat.add_relation(Relation {
        oid: 20_000,
        name: QName::new("pg_catalog", "rt96_v"),
        kind: RelKind::View,
        columns: vec![Column {
            name: "phone".into(),
            attnum: 1,
            type_oid: 25,
            dropped: false,
        }],
        unique_keys: vec![],
        foreign_keys: vec![],
        checks: vec![],
        generated: vec![],
        barrier: false,
        row_security: false,
        row_triggers: vec![],
    });
    let pol = policies();
    let none = BTreeSet::new();
    let path = vec![vec!["$user".to_string(), "public".to_string()]];
    for (sql, expected) in [
        (
            "SELECT * FROM xpath_table('phone', '''<a/>''', 'zeitung.leads', '/a', 'true') AS t(k text, x text)",
            "refused: forbidden_function",
        ),
        ("SELECT pg_catalog.rt96_customers(1)", "refused: forbidden_function"),
        ("SELECT rt96_customers(1)", "refused: forbidden_function"),
        // A DBA's overload of a built-in's name: Postgres may pick either, so neither is built-in.
        (
            "SELECT lower(name) FROM stadtwerke.customers",
            "refused: forbidden_function",
        ),
        ("SELECT phone FROM pg_catalog.rt96_v", "refused: outside_purpose"),
        ("SELECT phone FROM rt96_v", "refused: outside_purpose"),
        (
            "SELECT 'a'::text OPERATOR(pg_catalog.<%>) 'b'::text",
            "refused: unsupported_statement",
        ),
        ("SELECT upper(name) FROM stadtwerke.customers", "allowed"),
        ("SELECT relname FROM pg_catalog.pg_class", "allowed"),
    ] {
        assert_eq!(
            verdict(&cat, &pol, "billing_hotline", sql, &path, &none),
            expected,
            "{sql}"
        );
    }
}

/// Round 21: names a DBA's objects may shadow. sqlparser reads `ceil(x)`, `floor(x)`, `substr(…)`
/// and `substring(a, b, c)` as syntax, and `current_schema()` was taken for pg_catalog's, but
/// Postgres calls all of them by name through search_path; constructs apply operators they do not
/// name (IN's `=`, LIKE's `~~`); and with the path unknown, schemas holding only functions were
/// not searched.
#[test]
fn objects_a_dba_defines_outside_pg_catalog_are_not_taken_for_builtins() {
    let mut cat = catalog();
    for f in [
        "ceil",
        "floor",
        "substr",
        "substring",
        "current_schema",
        "md5",
        "unnest",
    ] {
        cat.add_function("util", f);
    }
    for op in ["=", "~~", "~", "-"] {
        cat.user_operators.insert(op.to_owned());
    }
    // Round 27: a type a DBA's CREATE CAST (or a domain's CHECK) runs a function for.
    for t in ["leadref", "LeadCard"] {
        cat.user_cast_types.insert(unscharf::policy::QName::new("zeitung", t));
    }
    let pol = policies();
    let none = BTreeSet::new();
    let path = vec![vec![
        "util".to_string(),
        "pg_catalog".to_string(),
        "stadtwerke".to_string(),
    ]];
    let w = "billing_hotline";
    for sql in [
        "SELECT ceil(customer_no) FROM customers",
        "SELECT floor(customer_no) FROM customers",
        "SELECT substr(name, 1, 2) FROM customers",
        "SELECT substring(name, 1, 2) FROM customers",
        "SELECT current_schema() FROM customers",
        // Round 27: sqlparser's own UNNEST table form is a call by name to Postgres.
        "SELECT * FROM unnest('%'::text) u",
        "SELECT * FROM UNNEST(ARRAY[1, 2]) u",
        "SELECT ('%'::text)::zeitung.leadref FROM customers",
        "SELECT CAST('%' AS zeitung.leadref) FROM customers",
        "SELECT '%'::leadref FROM customers",
        "SELECT '{}'::zeitung.leadref[] FROM customers",
        // Round 28: a quoted name keeps its case; parameter and column definition types count.
        "SELECT ('%'::text)::zeitung.\"LeadCard\" FROM customers",
        "PREPARE p(zeitung.leadref) AS SELECT name FROM customers",
        "SELECT * FROM jsonb_to_record('{}') AS r(a zeitung.leadref)",
    ] {
        let got = verdict(&cat, &pol, w, sql, &path, &none);
        assert!(got.starts_with("refused"), "{sql}: {got}");
    }
    // With the path unknown, util is searched too.
    let got = verdict(&cat, &pol, w, "SELECT md5(name) FROM stadtwerke.customers", &[], &none);
    assert!(got.starts_with("refused"), "{got}");
    let std_path = vec![vec!["stadtwerke".to_string()]];
    for sql in [
        "SELECT name FROM customers WHERE customer_no IN (1, 2)",
        "SELECT name FROM customers WHERE name LIKE 'A%'",
        "SELECT name FROM customers WHERE customer_no = ANY('{1}')",
        "SELECT name FROM customers WHERE customer_no IS DISTINCT FROM 1",
        "SELECT CASE customer_no WHEN 1 THEN 'a' END FROM customers",
        "SELECT nullif(name, 'x') FROM customers",
        "SELECT c.name FROM customers c JOIN tickets t USING (customer_no)",
        // Round 27: prefix operators are looked up like infix ones (a DBA's `~` ran its function).
        "SELECT ~ '%'::text FROM customers",
        "SELECT -customer_no FROM customers",
    ] {
        assert_eq!(
            verdict(&cat, &pol, w, sql, &std_path, &none),
            "refused: unsupported_statement",
            "{sql}"
        );
    }
    // Round 30: a lookup's literal side is cast like any other expression (this catalog's
    // operators are all pg_catalog's, so only the cast can refuse these).
    let mut casts = catalog();
    casts
        .user_cast_types
        .insert(unscharf::policy::QName::new("zeitung", "leadref"));
    for sql in [
        "SELECT name FROM customers WHERE phone = ('%'::text)::zeitung.leadref::text",
        "SELECT name FROM customers WHERE phone IN ('%'::zeitung.leadref::text)",
        "SELECT name FROM customers WHERE phone = ANY('{x}'::zeitung.leadref[]::text[])",
    ] {
        assert_eq!(
            verdict(&casts, &pol, w, sql, &std_path, &none),
            "refused: unsupported_statement",
            "{sql}"
        );
    }
    assert_eq!(
        verdict(
            &casts,
            &pol,
            w,
            "SELECT name FROM customers WHERE phone = '+49'::text",
            &std_path,
            &none
        ),
        "allowed"
    );
    // `-` before a number is part of the constant to Postgres, not an operator.
    assert_eq!(
        verdict(&cat, &pol, w, "SELECT name, -1 FROM customers", &std_path, &none),
        "allowed"
    );
    // The syntax forms Postgres qualifies itself stay pg_catalog's.
    assert_eq!(
        verdict(
            &cat,
            &pol,
            w,
            "SELECT substring(name FROM 1 FOR 2) FROM customers",
            &std_path,
            &none
        ),
        "allowed"
    );
}

/// Round 30: a write into a column whose type a DBA's cast or domain CHECK guards runs that code
/// on the agent's value (an INSERT returned the other campaign's leads), and a statement analyzed
/// just before the DBA's CREATE CAST reached the catalog stayed allowed at every later Bind.
#[test]
fn writes_to_a_column_of_a_guarded_type_are_refused_whenever_they_are_judged() {
    let plain = catalog();
    let mut guarded = catalog();
    let tickets = plain
        .lookup(&unscharf::policy::QName::new("stadtwerke", "tickets"))
        .unwrap();
    let note = plain
        .rel(tickets)
        .columns
        .iter()
        .find(|c| c.name == "note")
        .unwrap()
        .type_oid;
    guarded.user_cast_type_oids.insert(note);
    guarded
        .user_cast_types
        .insert(unscharf::policy::QName::new("zeitung", "leadref"));
    let pol = policies();
    let none = BTreeSet::new();
    let path = vec![vec!["stadtwerke".to_string()]];
    let w = "billing_hotline";
    let writes = [
        "INSERT INTO tickets (customer_no, subject, note) VALUES (1001, 'x', 'Frieda%')",
        "UPDATE tickets SET note = 'Frieda%' WHERE ticket_id = 1",
        "INSERT INTO tickets (ticket_id, customer_no, subject) VALUES (1, 1001, 'x') ON CONFLICT (ticket_id) DO UPDATE SET note = 'Frieda%'",
        "COPY tickets (customer_no, subject, note) FROM STDIN",
    ];
    for sql in writes {
        assert_eq!(verdict(&plain, &pol, w, sql, &path, &none), "allowed", "{sql}");
        assert_eq!(
            verdict(&guarded, &pol, w, sql, &path, &none),
            "refused: unsupported_statement",
            "{sql}"
        );
    }
    // Round 31: a field of the column (`note.x`) is the column to Postgres.
    for sql in [
        "UPDATE tickets SET note.x = 'Frieda%' WHERE ticket_id = 1",
        "INSERT INTO tickets (customer_no, subject, note.x) VALUES (1001, 'x', 'Frieda%')",
    ] {
        assert_eq!(
            verdict(&guarded, &pol, w, sql, &path, &none),
            "refused: unsupported_statement",
            "{sql}"
        );
    }
    // Round 32: a use of such a column gives a literal beside it the column's type.
    for sql in [
        "SELECT ARRAY[note] || '{Nobody%}' FROM tickets",
        "SELECT array_position(ARRAY[note], 'Nobody%') FROM tickets",
        "SELECT ticket_id FROM tickets WHERE ARRAY[note] @> '{Nobody%}'",
        "SELECT ticket_id FROM tickets WHERE note = 'Nobody%'",
    ] {
        assert_eq!(verdict(&plain, &pol, w, sql, &path, &none), "allowed", "{sql}");
        assert_eq!(
            verdict(&guarded, &pol, w, sql, &path, &none),
            "refused: unsupported_statement",
            "{sql}"
        );
    }
    assert_eq!(
        verdict(&guarded, &pol, w, "SELECT ticket_id, note FROM tickets", &path, &none),
        "allowed"
    );
    // Analyzed under the catalog before the DBA's change, judged (at a later Bind) under the one after.
    let ctx = AnalyzeCtx {
        catalog: &plain,
        search_paths: &path,
        user: "agent",
        revert_paths: &[],
        abandoned: Default::default(),
    };
    for sql in [
        writes[0],
        "SELECT name FROM customers WHERE phone = ('%'::text)::zeitung.leadref::text",
    ] {
        let a = analyze(sql, ctx).unwrap();
        let jcx = JudgeCtx {
            policy: &pol,
            purpose: &pol.purposes[w],
            catalog: &guarded,
            today: today(),
            read_campaigns: &none,
            dba_path: None,
            settings_moved: None,
            path_moved: None,
        };
        let r = judge_all(&a, &jcx, &NoRegistry).map(|_| ()).unwrap_err();
        assert!(r.message().contains("a DBA wrote"), "{sql}: {}", r.message());
    }
}
