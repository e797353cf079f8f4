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
