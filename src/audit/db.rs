//! The optional second sink: sealed events copied, in batches, into a table of a Postgres database,
//! so the security team can query the trail with SQL. The file stays the record of truth.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::event::Event;
use crate::config::AuditDatabase;

#[derive(Debug, Default)]
pub struct DbSinkState {
    /// Events inserted into the table.
    pub written: AtomicU64,
    /// Events the table will never get: its queue was full, or a failing batch grew too long.
    pub dropped: AtomicU64,
    /// Failed connections or inserts.
    pub failures: AtomicU64,
    /// `dropped` when the last event was queued, so a run of drops is logged once.
    pub reported_drops: AtomicU64,
}

/// Checks a table name (optionally schema-qualified) so it can be spliced into SQL.
pub fn valid_table(name: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.len() < 64
            && p.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    match name.split_once('.') {
        Some((s, t)) => part(s) && part(t),
        None => part(name),
    }
}

fn create_sql(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (
            ts timestamptz NOT NULL, seq bigint NOT NULL, session bigint NOT NULL, user_name text NOT NULL,
            client_addr text NOT NULL, purpose text NOT NULL, campaigns text[] NOT NULL, decision text NOT NULL,
            reason text NOT NULL, detail text NOT NULL, statement text NOT NULL, fingerprint text NOT NULL,
            policy_version text NOT NULL, prev text NOT NULL, hash text PRIMARY KEY)"
    )
}

/// Starts the sink; returns the sender the file writer copies sealed events to.
pub fn spawn(cfg: AuditDatabase, state: Arc<DbSinkState>) -> mpsc::Sender<Event> {
    let (tx, mut rx) = mpsc::channel::<Event>(10_000);
    tokio::spawn(async move {
        let mut batch: Vec<Event> = Vec::new();
        let mut client: Option<tokio_postgres::Client> = None;
        loop {
            // Gather up to 500 events or one second's worth.
            let first = if batch.is_empty() { rx.recv().await } else { None };
            match first {
                Some(e) => batch.push(e),
                None if batch.is_empty() => return,
                None => {}
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
            while batch.len() < 500 {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(e)) => batch.push(e),
                    _ => break,
                }
            }
            if client.as_ref().is_none_or(|c| c.is_closed()) {
                client = connect(&cfg).await;
            }
            let ok = match &client {
                Some(c) => insert(c, &cfg.table, &batch).await.is_ok(),
                None => false,
            };
            if ok {
                state.written.fetch_add(batch.len() as u64, Ordering::Relaxed);
                batch.clear();
            } else {
                state.failures.fetch_add(1, Ordering::Relaxed);
                client = None;
                if batch.len() > 50_000 {
                    let n = batch.len() - 50_000;
                    batch.drain(..n);
                    state.dropped.fetch_add(n as u64, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    });
    tx
}

async fn connect(cfg: &AuditDatabase) -> Option<tokio_postgres::Client> {
    let mut pg: tokio_postgres::Config = cfg.url.parse().ok()?;
    if let Some(pw) = cfg.password_env.as_ref().and_then(|v| std::env::var(v).ok()) {
        pg.password(pw);
    }
    pg.application_name("unscharf audit");
    let (client, conn) = match pg.connect(tokio_postgres::NoTls).await {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!(error = %e, "audit database unreachable");
            return None;
        }
    };
    tokio::spawn(async move {
        let _ = conn.await;
    });
    if let Err(e) = client.batch_execute(&create_sql(&cfg.table)).await {
        tracing::warn!(error = %e, "cannot create the audit table");
        return None;
    }
    Some(client)
}

async fn insert(c: &tokio_postgres::Client, table: &str, batch: &[Event]) -> Result<(), tokio_postgres::Error> {
    use tokio_postgres::types::ToSql;
    const COLS: usize = 15;
    let mut sql = format!("INSERT INTO {table} VALUES ");
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::with_capacity(batch.len() * COLS);
    for (i, e) in batch.iter().enumerate() {
        if i > 0 {
            sql.push(',');
        }
        sql.push('(');
        for j in 0..COLS {
            if j > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("${}", i * COLS + j + 1));
            if j == 0 {
                sql.push_str("::text::timestamptz");
            }
        }
        sql.push(')');
        params.push(Box::new(e.ts.clone()));
        params.push(Box::new(e.seq as i64));
        params.push(Box::new(e.session as i64));
        params.push(Box::new(e.user.clone()));
        params.push(Box::new(e.client_addr.clone()));
        params.push(Box::new(e.purpose.clone()));
        params.push(Box::new(e.campaigns.clone()));
        params.push(Box::new(e.decision.as_str().to_owned()));
        params.push(Box::new(e.reason.clone()));
        params.push(Box::new(e.detail.clone()));
        params.push(Box::new(e.statement.clone()));
        params.push(Box::new(e.fingerprint.clone()));
        params.push(Box::new(e.policy_version.clone()));
        params.push(Box::new(e.prev.clone()));
        params.push(Box::new(e.hash.clone().unwrap_or_default()));
    }
    sql.push_str(" ON CONFLICT (hash) DO NOTHING");
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
    c.execute(&sql, &refs).await.map(|_| ())
}
