//! Row locks through the proxy (round 192): every strength a client may send, `FOR NO KEY UPDATE`
//! and `FOR KEY SHARE` too, which ORMs use for pessimistic locks and sqlparser cannot read (AC3).
//! They need the update grant, and reach the server as sent.

use crate::harness::*;
use crate::policy::err_text;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lock_strength_runs_where_the_purpose_may_update() {
    let p = proxy().await;
    let mut wasser = p.connect("agent_wasser", "wasser").await;
    let su = superuser().await;
    for (lock, blocks) in [
        ("FOR NO KEY UPDATE", "FOR UPDATE NOWAIT"),
        ("FOR KEY SHARE", "FOR UPDATE NOWAIT"),
        ("FOR UPDATE", "FOR KEY SHARE NOWAIT"),
    ] {
        let tx = wasser.transaction().await.unwrap();
        let rows = tx
            .query(
                &format!("SELECT ticket_id FROM stadtwerke.tickets WHERE ticket_id = 1 {lock}"),
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("{lock}: {}", err_text(&e)));
        assert_eq!(rows.len(), 1, "{lock}");
        // The server took the lock the client asked for: a conflicting one fails at once.
        let e = su
            .simple_query(&format!(
                "SELECT 1 FROM stadtwerke.tickets WHERE ticket_id = 1 {blocks}"
            ))
            .await
            .expect_err(lock);
        assert_eq!(e.code().map(|c| c.code()), Some("55P03"), "{lock}: {e:?}");
        tx.rollback().await.unwrap();
    }
    // Without the update grant, no strength is allowed.
    let qa = p.connect("qa_lead", "qa").await;
    for lock in ["FOR NO KEY UPDATE", "FOR KEY SHARE", "FOR SHARE"] {
        let e = qa
            .simple_query(&format!("SELECT ticket_id FROM stadtwerke.tickets {lock}"))
            .await
            .expect_err(lock);
        assert!(err_text(&e).contains("outside_purpose"), "{lock}: {}", err_text(&e));
    }
}

/// Round 193 AD5 / 206 AQ3: `FOR UPDATE OF t` on a join (SQLAlchemy's `with_for_update(of=…)`)
/// locks only t's rows, so it needs the update grant on t alone; the joined table stays unlocked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_of_one_table_of_a_join_needs_only_its_grant() {
    let p = proxy().await;
    let mut wasser = p.connect("agent_wasser", "wasser").await;
    let su = superuser().await;
    let join = "SELECT t.ticket_id, c.customer_no FROM stadtwerke.tickets t \
                JOIN stadtwerke.customers c ON c.customer_no = t.customer_no WHERE t.ticket_id = 1";
    let tx = wasser.transaction().await.unwrap();
    let rows = tx
        .query(&format!("{join} FOR UPDATE OF t"), &[])
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    assert_eq!(rows.len(), 1);
    let customer: i32 = rows[0].get(1);
    // The ticket is locked, the customer is not.
    let e = su
        .simple_query("SELECT 1 FROM stadtwerke.tickets WHERE ticket_id = 1 FOR UPDATE NOWAIT")
        .await
        .expect_err("the ticket is locked");
    assert_eq!(e.code().map(|c| c.code()), Some("55P03"), "{e:?}");
    su.simple_query(&format!(
        "SELECT 1 FROM stadtwerke.customers WHERE customer_no = {customer} FOR UPDATE NOWAIT"
    ))
    .await
    .expect("the customer is not locked");
    tx.rollback().await.unwrap();
    // Locking the customer, or every table of the join, needs the grant wasser lacks.
    for lock in ["FOR UPDATE OF c", "FOR UPDATE", "FOR UPDATE OF t FOR SHARE"] {
        let e = wasser.simple_query(&format!("{join} {lock}")).await.expect_err(lock);
        assert!(err_text(&e).contains("outside_purpose"), "{lock}: {}", err_text(&e));
    }
}
