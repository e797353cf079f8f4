//! Issue 5: TLS on both legs, with a throwaway CA and certificates generated at run time.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::rustls;
use unscharf::cluster::ClusterOptions;

use crate::harness::*;

/// A CA and a certificate for localhost/127.0.0.1 signed by it.
pub struct Pki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

pub fn pki(name: &str) -> Pki {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, format!("{name} test CA"));
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let mut leaf = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    leaf.distinguished_name.push(rcgen::DnType::CommonName, "localhost");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// A throwaway cluster that serves TLS with `server`'s certificate.
fn tls_cluster(server: &Pki) -> unscharf::cluster::Cluster {
    new_cluster_with(ClusterOptions {
        settings: vec![
            ("ssl".into(), "on".into()),
            ("ssl_cert_file".into(), "'server.crt'".into()),
            ("ssl_key_file".into(), "'server.key'".into()),
        ],
        files: vec![
            ("server.crt".into(), server.cert_pem.clone().into_bytes()),
            ("server.key".into(), server.key_pem.clone().into_bytes()),
        ],
        ..Default::default()
    })
}

fn pki_files(p: &Pki) -> Vec<(String, String)> {
    vec![
        ("server.crt".into(), p.cert_pem.clone()),
        ("server.key".into(), p.key_pem.clone()),
        ("ca.pem".into(), p.ca_pem.clone()),
    ]
}

fn write_pki(dir: &Path, p: &Pki) -> PathBuf {
    std::fs::write(dir.join("server.crt"), &p.cert_pem).unwrap();
    std::fs::write(dir.join("server.key"), &p.key_pem).unwrap();
    std::fs::write(dir.join("ca.pem"), &p.ca_pem).unwrap();
    dir.join("ca.pem")
}

fn psql(url: &str, sql: &str) -> (bool, String) {
    let out = tool("psql", "postgresql-client")
        .args(["-X", "-At", url, "-c", sql])
        .env("PGCLIENTENCODING", "UTF8")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn rustls_client(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(cfg)
}

#[tokio::test]
async fn clients_connect_over_tls_and_untrusted_certificates_fail_cleanly() {
    let proxy_pki = pki("proxy");
    let p = proxy_with(ProxyOptions {
        extra: "tls:\n  cert: server.crt\n  key: server.key\n".into(),
        files: pki_files(&proxy_pki),
        ..Default::default()
    })
    .await;
    let ca = p.dir.join("ca.pem");
    let port = p.addr.port();
    let ca_s = ca.display().to_string();
    let (ok, out) = tokio::task::spawn_blocking(move || {
        let base = format!("host=localhost port={port} dbname=crm user=agent_wasser password=wasser");
        let r1 = psql(
            &format!("{base} sslmode=require"),
            "SELECT phone FROM stadtwerke.customers WHERE customer_no = 1001",
        );
        let r2 = psql(
            &format!("{base} sslmode=verify-full sslrootcert={ca_s}"),
            "SELECT 'verified'",
        );
        let r3 = psql(&format!("{base} sslmode=disable"), "SELECT 'plaintext still allowed'");
        (r1.0 && r2.0 && r3.0, format!("{}|{}|{}", r1.1, r2.1, r3.1))
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    assert!(out.contains("+** ** ****567") && out.contains("verified"), "{out}");
    // A client that does not trust the certificate fails cleanly; the proxy serves the next one.
    let other = pki("someone else");
    let wrong_ca = p.dir.join("other-ca.pem");
    std::fs::write(&wrong_ca, &other.ca_pem).unwrap();
    let w = wrong_ca.display().to_string();
    let (ok, out) = tokio::task::spawn_blocking(move || {
        psql(&format!("host=localhost port={port} dbname=crm user=agent_wasser password=wasser sslmode=verify-full sslrootcert={w}"), "SELECT 1")
    })
    .await
    .unwrap();
    assert!(!ok && out.contains("certificate verify failed"), "{out}");
    // tokio-postgres over rustls, verifying the certificate.
    let mut cfg: tokio_postgres::Config =
        format!("host=localhost port={port} dbname=crm user=agent_wasser password=wasser")
            .parse()
            .unwrap();
    cfg.ssl_mode(tokio_postgres::config::SslMode::Require);
    let (c, conn) = cfg
        .connect(unscharf::tls::PgTls(rustls_client(&proxy_pki.ca_pem)))
        .await
        .unwrap();
    tokio::spawn(conn);
    let v: String = c
        .query_one("SELECT iban FROM stadtwerke.customers WHERE customer_no = 1002", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, "DE12 **** **** **** **98 90");
    // The handshake negotiates ALPN `postgresql`, as Postgres 17 and its clients expect.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(p.addr).await.unwrap();
        s.write_all(&[0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f]).await.unwrap();
        let mut answer = [0u8; 1];
        s.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"S");
        let mut cfg = (*rustls_client(&proxy_pki.ca_pem)).clone();
        cfg.alpn_protocols = vec![b"postgresql".to_vec()];
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(name, s)
            .await
            .unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"postgresql"[..]));
    }
    // psycopg with verify-full.
    let url = format!(
        "host=localhost port={port} dbname=crm user=tester password=tester sslmode=verify-full sslrootcert={}",
        ca.display()
    );
    let out = tokio::process::Command::new(python())
        .args(["-c", "import sys, psycopg; c = psycopg.connect(sys.argv[1]); print(c.info.pgconn.ssl_in_use, c.execute('select count(*) from lab.items').fetchone()[0])", &url])
        .output()
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "True 2000",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn tls_require_refuses_plaintext_and_certificates_reload_on_sighup() {
    let first = pki("first");
    let p = proxy_with(ProxyOptions {
        extra: "tls:\n  cert: server.crt\n  key: server.key\n  require: true\n".into(),
        files: pki_files(&first),
        ..Default::default()
    })
    .await;
    let e = p
        .try_connect("sslmode=disable", "agent_wasser", "wasser")
        .await
        .unwrap_err();
    let msg = e.as_db_error().map(|d| d.message().to_owned()).unwrap_or_default();
    assert!(msg.contains("requires TLS"), "{msg}");
    let connect = |ca: String| {
        let port = p.addr.port();
        async move {
            let mut cfg: tokio_postgres::Config =
                format!("host=localhost port={port} dbname=crm user=agent_wasser password=wasser")
                    .parse()
                    .unwrap();
            cfg.ssl_mode(tokio_postgres::config::SslMode::Require);
            cfg.connect(unscharf::tls::PgTls(rustls_client(&ca)))
                .await
                .map(|(c, conn)| {
                    tokio::spawn(conn);
                    c
                })
        }
    };
    connect(first.ca_pem.clone()).await.unwrap();
    // New certificate from another CA; reload; new sessions see it.
    let second = pki("second");
    write_pki(&p.dir, &second);
    p.shared.reload().await.unwrap();
    assert!(
        connect(first.ca_pem.clone()).await.is_err(),
        "the old certificate is gone"
    );
    let c = connect(second.ca_pem.clone()).await.unwrap();
    c.simple_query("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn the_upstream_leg_uses_tls_with_verification() {
    let server = pki("postgres");
    let cluster = tls_cluster(&server);
    let dir = std::env::temp_dir().join(format!("unscharf-upstream-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("pg-ca.pem");
    std::fs::write(&ca, &server.ca_pem).unwrap();
    for (mode, extra) in [
        ("require", String::new()),
        ("verify-full", format!("  ca: {}\n", ca.display())),
    ] {
        let p = proxy_with(ProxyOptions {
            upstream_port: Some(cluster.port),
            ..Default::default()
        })
        .await;
        // Rewrite the upstream section with TLS and localhost (the certificate's name).
        let path = p.dir.join("unscharf.yaml");
        let text = std::fs::read_to_string(&path).unwrap().replace(
            "  host: 127.0.0.1\n",
            &format!("  host: localhost\n  tls: {mode}\n{extra}"),
        );
        std::fs::write(&path, text).unwrap();
        p.shared.reload().await.unwrap();
        let c = p.connect("tester", "tester").await;
        let row = c
            .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
            .await
            .unwrap();
        assert!(row.get::<_, bool>(0), "{mode}: the upstream connection is encrypted");
        // SCRAM went over that TLS without channel binding; the catalog connection uses TLS too.
        p.shared
            .refresh_catalog_now()
            .await
            .unwrap_or_else(|e| panic!("{mode}: catalog over TLS: {e}"));
    }
    // verify-full against a CA that did not sign the server's certificate: a clear error, no hang.
    let other = pki("not the postgres CA");
    std::fs::write(&ca, &other.ca_pem).unwrap();
    let p = proxy_with(ProxyOptions {
        upstream_port: Some(cluster.port),
        ..Default::default()
    })
    .await;
    let path = p.dir.join("unscharf.yaml");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "  host: 127.0.0.1\n",
        &format!("  host: localhost\n  tls: verify-full\n  ca: {}\n", ca.display()),
    );
    std::fs::write(&path, text).unwrap();
    p.shared.reload().await.unwrap();
    let e = p.try_connect("", "tester", "tester").await.unwrap_err();
    let msg = e.as_db_error().map(|d| d.message().to_owned()).unwrap_or_default();
    assert!(
        msg.contains("cannot reach the database server") && msg.to_lowercase().contains("certificate"),
        "{msg}"
    );
    // Round 190 AA2: the proxy's own connections (catalog, fence, LISTEN, tools) verify the same
    // way; before, they went in clear and succeeded.
    let e = p
        .shared
        .refresh_catalog_now()
        .await
        .expect_err("catalog over unverified TLS");
    assert!(format!("{e}").to_lowercase().contains("certificate"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}

/// SCRAM channel binding cannot cross a proxy. With TLS on both legs, libpq announces it could bind
/// and Postgres (which offers binding over TLS) refuses; `channel_binding=disable` is the documented
/// client setting, and the refusal says so.
#[tokio::test]
async fn tls_on_both_legs_works_with_channel_binding_disabled() {
    let server = pki("postgres");
    let cluster = tls_cluster(&server);
    let proxy_pki = pki("proxy");
    let p = proxy_with(ProxyOptions {
        upstream_port: Some(cluster.port),
        extra: "tls:\n  cert: server.crt\n  key: server.key\n".into(),
        files: pki_files(&proxy_pki),
        ..Default::default()
    })
    .await;
    let path = p.dir.join("unscharf.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("  host: 127.0.0.1\n", "  host: localhost\n  tls: require\n");
    std::fs::write(&path, text).unwrap();
    p.shared.reload().await.unwrap();
    let port = p.addr.port();
    let (with, without) = tokio::task::spawn_blocking(move || {
        let base = format!("host=localhost port={port} dbname=crm user=tester password=tester sslmode=require");
        let sql = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
        (psql(&format!("{base} channel_binding=disable"), sql), psql(&base, sql))
    })
    .await
    .unwrap();
    assert!(with.0 && with.1.trim() == "t", "{}", with.1);
    assert!(
        !without.0 && without.1.contains("channel_binding=disable"),
        "{}",
        without.1
    );
}
