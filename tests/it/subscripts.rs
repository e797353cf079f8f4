//! Subscripts of dotted column references (round 188): Postgres reads `t.col[1]` as the column col
//! of the table t, even where t also names a column. The proxy read the alias `name` as the
//! allowed column and skipped the dropped one behind the dot (Y2), and counted pgjdbc's
//! `tmp.i_indoption[…]` as the whole row of `tmp` (Y1, getIndexInfo refused).

use crate::dba::{own_cluster, proxy_on};
use crate::harness::assert_no_protected;
use crate::policy::{err_text, text_of, wasser};

const PHONES: &str = "+49 170 SECRET1";
const HEALTH: &str = "SECRET-HEALTH";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscripted_column_behind_an_alias_is_the_tables_column() {
    // Columns a DBA adds and the policy does not list are dropped.
    let ddl = format!(
        "ALTER TABLE stadtwerke.customers ADD COLUMN extra_phones text[], ADD COLUMN profile jsonb;
         UPDATE stadtwerke.customers SET extra_phones = ARRAY['{PHONES}', '+49 171 SECRET2'],
           profile = '{{\"diagnosis\": \"{HEALTH}\"}}';"
    );
    let (cluster, su) = own_cluster(&ddl).await;
    let attacks = [
        "SELECT name.extra_phones[1:2], name.profile['diagnosis'] FROM stadtwerke.customers name",
        "SELECT c.extra_phones[1] FROM stadtwerke.customers c CROSS JOIN (SELECT 1 AS c) s",
        "SELECT customer_no FROM stadtwerke.customers name WHERE name.extra_phones[1] LIKE '%SECRET%'",
    ];
    // The premise, straight to Postgres as the agent: each reads the dropped values.
    su.batch_execute("SET ROLE agent_wasser").await.unwrap();
    let rows = su.simple_query(attacks[0]).await.unwrap();
    assert!(
        text_of(&rows).contains(PHONES) && text_of(&rows).contains(HEALTH),
        "premise"
    );
    su.batch_execute("RESET ROLE").await.unwrap();

    let p = proxy_on(&cluster, |t| t.to_owned()).await;
    let c = wasser(&p).await;
    let mut seen = String::new();
    for sql in attacks {
        let e = c.simple_query(sql).await.expect_err(sql);
        assert!(err_text(&e).contains("protected_column"), "{sql}: {}", err_text(&e));
        seen.push_str(&err_text(&e));
        // Prepared, binary results.
        let e = c.query(sql, &[]).await.expect_err(sql);
        seen.push_str(&err_text(&e));
    }
    assert!(!seen.contains(PHONES) && !seen.contains(HEALTH), "{seen}");
    assert_no_protected(&seen, "subscripts behind an alias");
    // What a driver sends: an allowed array behind a subquery that has a protected column too
    // (pgjdbc's getIndexInfo reads pg_index.indoption beside pg_class.reltuples).
    for sql in [
        "SELECT t.arr[1] FROM (SELECT ARRAY[customer_no] AS arr, phone FROM stadtwerke.customers) t ORDER BY 1 LIMIT 1",
        "SELECT tmp.I_INDOPTION[0] FROM (SELECT ci.reltuples AS CARDINALITY, i.indoption AS I_INDOPTION
           FROM pg_catalog.pg_class ci JOIN pg_catalog.pg_index i ON ci.oid = i.indexrelid) tmp LIMIT 1",
    ] {
        let rows = c
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {}", err_text(&e)));
        assert!(!text_of(&rows).is_empty(), "{sql}");
    }
}
