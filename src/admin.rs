//! The admin endpoint: GET /metrics (Prometheus text) and GET /healthz (upstream, catalog, audit).
//! A few lines of HTTP/1.1 over tokio; it serves operators, not the internet.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::server::Shared;

/// Binds the admin listener (when configured) and serves it until shutdown.
pub async fn spawn(
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<Option<std::net::SocketAddr>> {
    let Some(admin) = shared.state.load().config.admin.clone() else {
        return Ok(None);
    };
    let listener = TcpListener::bind(&admin.listen).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                accepted = listener.accept() => {
                    if let Ok((stream, _)) = accepted {
                        let shared = shared.clone();
                        tokio::spawn(async move { let _ = handle(stream, &shared).await; });
                    }
                }
            }
        }
    });
    Ok(Some(addr))
}

async fn handle(mut s: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut buf = vec![0u8; 2048];
    let mut n = 0;
    // Read the request head (bounded); the body, if any, is ignored.
    while n < buf.len() {
        let r = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf[n..]))
            .await
            .map_err(|_| std::io::ErrorKind::TimedOut)??;
        if r == 0 {
            break;
        }
        n += r;
        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf[..n]);
    let mut parts = head.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, ctype, body) = match (method, path) {
        ("GET", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4",
            shared.metrics.render(&shared.audit.state),
        ),
        ("GET", "/healthz") => {
            let (ok, body) = health(shared).await;
            (
                if ok { "200 OK" } else { "503 Service Unavailable" },
                "application/json",
                body,
            )
        }
        _ => ("404 Not Found", "text/plain", "not found\n".to_owned()),
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(resp.as_bytes()).await?;
    s.shutdown().await
}

/// Whether the upstream accepts connections, the catalog can be read, and the audit trail written.
pub async fn health(shared: &Shared) -> (bool, String) {
    let config = shared.state.load().config.clone();
    let upstream = tokio::time::timeout(
        Duration::from_secs(2),
        TcpStream::connect((config.upstream.host.as_str(), config.upstream.port)),
    )
    .await
    .map(|r| r.is_ok())
    .unwrap_or(false);
    let catalog = match tokio::time::timeout(Duration::from_secs(3), crate::catalog::live::connect(&config)).await {
        Ok(Ok(client)) => client.simple_query("SELECT 1").await.is_ok(),
        _ => false,
    };
    let audit = shared.audit.healthy();
    let word = |b: bool| if b { "ok" } else { "unavailable" };
    let ok = upstream && catalog && audit;
    let body = format!(
        "{{\"status\":\"{}\",\"upstream\":\"{}\",\"catalog\":\"{}\",\"audit\":\"{}\",\"catalog_generation\":{}}}\n",
        word(ok),
        word(upstream),
        word(catalog),
        word(audit),
        shared.catalog.load().generation
    );
    (ok, body)
}
