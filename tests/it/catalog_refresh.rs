//! The catalog snapshot beside migrations: a refresh while DDL commits reads the catalog again
//! rather than failing.

use std::time::Duration;

use crate::harness::*;

/// One short migration burst: tables with a default, a CHECK, a policy and a view, each dropped
/// in a later transaction than it was created, so a snapshot can list what is gone by the time
/// its definition is deparsed.
async fn burst(schema: &str, from: u32) {
    let su = superuser().await;
    for n in from..from + 6 {
        for sql in [
            format!("CREATE TABLE {schema}.t{n} (id int DEFAULT 7 CHECK (id > 0), at date DEFAULT current_date)"),
            format!("CREATE POLICY p ON {schema}.t{n} USING (id > 1)"),
            format!("CREATE VIEW {schema}.v{n} AS SELECT id FROM {schema}.t{n}"),
            format!("DROP TABLE IF EXISTS {schema}.t{} CASCADE", n.wrapping_sub(1)),
        ] {
            su.batch_execute(&sql).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
}

/// A CI run saw a forced refresh fail with "the default of column … changed while the catalog was
/// read": another test dropped a table between the snapshot's list of defaults and their
/// definitions; a view's or a CHECK's relation dropped so fails the query outright. A refresh
/// that overlaps a short migration burst must come back with a catalog, read after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_beside_a_migration_burst_reads_the_catalog_again() {
    let su = superuser().await;
    su.batch_execute("DROP SCHEMA IF EXISTS churn CASCADE; CREATE SCHEMA churn")
        .await
        .unwrap();
    let p = proxy().await;
    let mut failed = Vec::new();
    for round in 0..6 {
        let migrations = tokio::spawn(burst("churn", round * 10));
        tokio::time::sleep(Duration::from_millis(10)).await;
        if let Err(e) = p.shared.refresh_catalog_now().await {
            failed.push(e.to_string());
        }
        migrations.await.unwrap();
    }
    assert!(failed.is_empty(), "{} of 6 refreshes failed: {failed:?}", failed.len());
    su.batch_execute("DROP SCHEMA churn CASCADE").await.unwrap();
}
