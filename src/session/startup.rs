//! The startup phase: SSL/GSS negotiation, the client's parameters, the authentication relay, the
//! identity probe (search_path and role memberships, read from the upstream) and purpose binding.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::core::{Core, Identity};
use super::errors::SessionError;
use super::options::client_params;
use crate::audit::{Decision, Record};
use crate::catalog::parse_search_path;
use crate::net::{read_frame, read_startup, write_all, Conn, ReadError};
use crate::policy::PolicySet;
use crate::server::{CancelTarget, Shared};
use crate::wire::backend as be;
use crate::wire::build;
use crate::wire::frontend::{self as fe, encode};
use crate::wire::startup::{parse_startup_packet, StartupMessage, StartupPacket};

/// What the client's first packets asked for.
pub enum Negotiated {
    Startup(StartupMessage),
    Cancel { pid: i32, secret: i32 },
}

fn read_err(e: ReadError, upstream: bool) -> SessionError {
    match (e, upstream) {
        (ReadError::Frame(f), _) => SessionError::Frame(f),
        (_, true) => SessionError::UpstreamGone,
        (_, false) => SessionError::ClientGone,
    }
}

/// Answers SSLRequest ('S' with TLS configured, else 'N') and GSSENCRequest ('N') until the client
/// sends a StartupMessage or CancelRequest.
/// The connection comes back with the answer, except after a failed TLS handshake, which consumes it.
pub async fn negotiate(
    mut client: Conn,
    buf: &mut BytesMut,
    shared: &Shared,
) -> (Option<Conn>, Result<Negotiated, SessionError>) {
    loop {
        let packet = match read_startup(&mut client, buf).await {
            Ok(p) => p,
            Err(e) => return (Some(client), Err(e.into())),
        };
        let parsed = match parse_startup_packet(&packet) {
            Ok(p) => p,
            Err(e) => return (Some(client), Err(e.into())),
        };
        match parsed {
            StartupPacket::SslRequest | StartupPacket::GssEncRequest => {
                // Bytes sent before our answer would bypass TLS (CVE-2021-23214 style buffer stuffing).
                if !buf.is_empty() {
                    return (
                        Some(client),
                        Err(SessionError::Protocol("data after SSLRequest before the answer".into())),
                    );
                }
                let tls = shared.tls.load_full();
                let acceptor = match (&parsed, &*tls, client) {
                    (StartupPacket::SslRequest, Some(a), Conn::Tcp(tcp)) => (a.acceptor.clone(), tcp),
                    (_, _, c) => {
                        client = c;
                        if let Err(e) = write_all(&mut client, b"N").await {
                            return (Some(client), Err(SessionError::Tls(e.to_string())));
                        }
                        continue;
                    }
                };
                let (acceptor, mut tcp) = acceptor;
                if let Err(e) = write_all(&mut tcp, b"S").await {
                    return (Some(Conn::Tcp(tcp)), Err(SessionError::Tls(e.to_string())));
                }
                match acceptor.accept(tcp).await {
                    Ok(tls) => client = Conn::Tls(Box::new(tls)),
                    // The handshake consumed the socket; nobody is left to tell.
                    Err(e) => return (None, Err(SessionError::Tls(e.to_string()))),
                }
            }
            StartupPacket::Cancel { pid, secret } => return (Some(client), Ok(Negotiated::Cancel { pid, secret })),
            StartupPacket::Startup(m) => return (Some(client), Ok(Negotiated::Startup(m))),
        }
    }
}

/// Forwards a client's CancelRequest for a proxy key to the upstream backend it stands for.
pub async fn cancel(shared: &Shared, pid: i32, secret: i32) {
    let Some(target) = shared.cancel_target((pid, secret)) else {
        return;
    };
    send_cancel(shared, target).await;
}

pub async fn send_cancel(shared: &Shared, target: CancelTarget) {
    let config = shared.state.load_full().config.clone();
    if let Ok(Ok(mut s)) = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        TcpStream::connect((config.upstream.host.as_str(), config.upstream.port)),
    )
    .await
    {
        let _ = s
            .write_all(&crate::wire::startup::cancel_request(target.pid, target.secret))
            .await;
        let _ = s.shutdown().await;
        // The server closes the connection once it has signalled the backend: waiting for that
        // lets the migration fence know its cancels landed before it lets the migration commit.
        let mut sink = [0u8; 64];
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
            while let Ok(n) = s.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
    }
}

/// The audit record of a connection refused after authentication.
fn connection_refusal(
    session: u64,
    user: &str,
    peer: SocketAddr,
    purpose: &str,
    (reason, detail): (&str, &str),
    policy_version: &str,
    catalog: &crate::catalog::Catalog,
) -> Record {
    // Names in the detail are what the client typed (round 204 AO2: ``option `Anna.Schmidt` is
    // not supported``): scrubbed as a statement's refusal detail is.
    let known = |w: &str| catalog.knows_word(w);
    Record {
        session,
        user: user.to_owned(),
        client_addr: peer.to_string(),
        purpose: purpose.to_owned(),
        campaigns: Vec::new(),
        decision: Decision::Refused,
        reason: reason.into(),
        detail: crate::audit::event::scrub_names(&crate::audit::event::scrub(detail), known),
        statement: "(connection)".into(),
        fingerprint: String::new(),
        policy_version: policy_version.to_owned(),
    }
}

/// A session after authentication and purpose binding.
pub struct Started {
    pub upstream: Conn,
    pub upstream_buf: BytesMut,
    pub core: Core,
    pub proxy_key: (i32, i32),
    pub upstream_key: CancelTarget,
}

/// Relays authentication and binds the purpose; on success the client has its own BackendKeyData
/// and ReadyForQuery.
pub async fn authenticate(
    client: &mut Conn,
    client_buf: &mut BytesMut,
    msg: StartupMessage,
    peer: SocketAddr,
    session: u64,
    shared: &Arc<Shared>,
) -> Result<Started, SessionError> {
    let state = shared.state.load_full();
    let config = &state.config;
    if let Some(tls) = &*shared.tls.load_full() {
        if tls.require && !client.is_tls() {
            return Err(SessionError::TlsRequired);
        }
    }
    // A connection refused for what it asks (another database, a setting it may not make) is
    // audited like one refused for its purpose (round 116), but only once the server has
    // authenticated the login: the trail names no one who merely claims a name, and a flood of
    // unauthenticated attempts cannot push real events out of its queue. Until then the login
    // connects with nothing but its name, so the refused settings never reach the server.
    let (params, refused) = match client_params(&msg, &config.upstream.database) {
        Ok(p) => (p, None),
        Err(e) => {
            let name_only = StartupMessage {
                major: msg.major,
                minor: msg.minor,
                params: msg.params.iter().filter(|(k, _)| k == "user").cloned().collect(),
            };
            let p =
                client_params(&name_only, &config.upstream.database).map_err(|_| SessionError::Params(e.clone()))?;
            let other_db = msg
                .params
                .iter()
                .any(|(k, v)| k == "database" && !v.is_empty() && *v != config.upstream.database);
            let reason = match other_db {
                true => crate::policy::Reason::OutsidePurpose,
                false => crate::policy::Reason::ForbiddenSetting,
            };
            (p, Some((reason, e)))
        }
    };
    tracing::Span::current().record("user", params.user.as_str());
    let addr = format!("{}:{}", config.upstream.host, config.upstream.port);
    let mut upstream = crate::tls::connect_upstream(config, state.upstream_tls.as_ref())
        .await
        .map_err(|e| SessionError::UpstreamConnect(format!("{addr}: {e}")))?;
    let mut ubuf = BytesMut::with_capacity(16 * 1024);
    let max = config.limits.max_frame_bytes;
    write_all(&mut upstream, &params.forward.encode())
        .await
        .map_err(|_| SessionError::UpstreamGone)?;

    // Authentication: relay challenges and answers; never offer channel binding, which cannot cross the proxy.
    loop {
        let f = read_frame(&mut upstream, &mut ubuf, max)
            .await
            .map_err(|e| read_err(e, true))?;
        match f.tag {
            be::AUTHENTICATION => {
                let code = be::auth_code(f.body())?;
                match code {
                    0 => {
                        write_all(client, &f.raw).await.map_err(|_| SessionError::ClientGone)?;
                        break;
                    }
                    3 | 5 | 11 => {
                        write_all(client, &f.raw).await.map_err(|_| SessionError::ClientGone)?;
                        relay_password(client, client_buf, &mut upstream, max).await?;
                    }
                    10 => {
                        let mechs: Vec<&str> = be::sasl_mechanisms(f.body())?
                            .into_iter()
                            .filter(|m| *m != "SCRAM-SHA-256-PLUS")
                            .collect();
                        if mechs.is_empty() {
                            return Err(SessionError::AuthMethod(code));
                        }
                        write_all(client, &build::auth_sasl(&mechs))
                            .await
                            .map_err(|_| SessionError::ClientGone)?;
                        relay_password(client, client_buf, &mut upstream, max).await?;
                    }
                    12 => write_all(client, &f.raw).await.map_err(|_| SessionError::ClientGone)?,
                    other => return Err(SessionError::AuthMethod(other)),
                }
            }
            be::ERROR_RESPONSE => {
                let reply = channel_binding_hint(f.body()).unwrap_or_else(|| f.raw.clone());
                write_all(client, &reply).await.map_err(|_| SessionError::ClientGone)?;
                return Err(SessionError::UpstreamRefused);
            }
            be::NEGOTIATE_PROTOCOL | be::NOTICE_RESPONSE => {
                write_all(client, &f.raw).await.map_err(|_| SessionError::ClientGone)?
            }
            other => {
                return Err(SessionError::Protocol(format!(
                    "unexpected '{}' during authentication",
                    other as char
                )))
            }
        }
    }

    // Parameters and the backend key, up to the first ReadyForQuery.
    let mut upstream_key = None;
    let mut to_client = BytesMut::new();
    let mut reported = Vec::new();
    let status = loop {
        let f = read_frame(&mut upstream, &mut ubuf, max)
            .await
            .map_err(|e| read_err(e, true))?;
        match f.tag {
            be::PARAMETER_STATUS => {
                let (name, value) = super::core::check_parameter(&f)?;
                reported.push((name.to_owned(), value.to_owned()));
                to_client.extend_from_slice(&f.raw);
            }
            be::BACKEND_KEY_DATA => upstream_key = Some(be::backend_key(f.body())?),
            // Rule 11 holds from the first message: the same redaction as in the session.
            be::NOTICE_RESPONSE => crate::mask::redact::forward(&f, true, &mut to_client)?,
            be::ERROR_RESPONSE => {
                to_client.extend_from_slice(&f.raw);
                let _ = write_all(client, &to_client).await;
                return Err(SessionError::UpstreamRefused);
            }
            be::READY_FOR_QUERY => break be::ready_status(f.body())?,
            other => {
                return Err(SessionError::Protocol(format!(
                    "unexpected '{}' before ReadyForQuery",
                    other as char
                )))
            }
        }
    };
    let (upid, usecret) = upstream_key.ok_or_else(|| SessionError::Protocol("no BackendKeyData".into()))?;
    let upstream_key = CancelTarget {
        pid: upid,
        secret: usecret,
    };

    if let Some((reason, e)) = refused {
        shared.audit.send(connection_refusal(
            session,
            &params.user,
            peer,
            "",
            (reason.code(), &e),
            &state.policy.version,
            &shared.catalog.load(),
        ));
        return Err(SessionError::Params(e));
    }
    // Who is this, as the upstream sees it: search_path and every role the login is a member of.
    let Probed {
        search_path: setting,
        roles,
        defaults,
    } = probe_identity(&mut upstream, &mut ubuf, max).await?;
    let catalog = shared.catalog.load();
    let path = parse_search_path(&setting)
        .ok_or_else(|| SessionError::Protocol("the server reported a search_path unscharf cannot read".into()))?;
    let policy = &state.policy;
    // The client chose the path itself, as a parameter or in `options`, in any spelling.
    let chosen_path = params.forward.params.iter().any(|(k, v)| {
        let (k, v) = (k.to_lowercase(), v.to_lowercase());
        ["search_path", "search-path"]
            .iter()
            .any(|s| k.contains(s) || v.contains(s))
    });
    let purpose = match bind_purpose(policy, &params.user, &roles, params.purpose.as_deref()) {
        Ok(p) => p,
        Err(msg) => {
            // A purpose no policy names is whatever the client typed: the trail shows `?`.
            let asked = params.purpose.as_deref().unwrap_or_default();
            let (purpose, detail) = match policy.purposes.contains_key(asked) || asked.is_empty() {
                true => (asked.to_owned(), msg.clone()),
                false => ("?".to_owned(), msg.replace(&format!("purpose {asked}"), "purpose ?")),
            };
            shared.audit.send(connection_refusal(
                session,
                &params.user,
                peer,
                &purpose,
                ("no_purpose", &detail),
                &policy.version,
                &catalog,
            ));
            return Err(SessionError::Purpose(msg));
        }
    };
    // `RESET search_path` brings this value back where unscharf does not know the path any more,
    // so it may not name another campaign's schema either (round 144).
    if let Some(why) = policy
        .purposes
        .get(&purpose)
        .and_then(|p| crate::policy::decide::foreign_path(policy, p, &catalog, &path, chosen_path))
    {
        shared.audit.send(connection_refusal(
            session,
            &params.user,
            peer,
            &purpose,
            ("forbidden_setting", &why),
            &policy.version,
            &catalog,
        ));
        return Err(SessionError::Params(why));
    }
    tracing::Span::current().record("purpose", purpose.as_str());
    let proxy_key = shared.new_cancel_key(upstream_key);
    to_client.extend_from_slice(&build::backend_key_data(proxy_key.0, proxy_key.1));
    to_client.extend_from_slice(&build::ready_for_query(status));
    if let Err(_e) = write_all(client, &to_client).await {
        shared.forget_cancel_key(proxy_key);
        return Err(SessionError::ClientGone);
    }
    let mut core = Core::new(
        Identity {
            session,
            user: params.user,
            client_addr: peer.to_string(),
            purpose,
        },
        path,
        chosen_path,
        status,
    );
    core.started(catalog.generation, roles, policy.generation);
    for (name, value) in &reported {
        core.clock.report(name, value);
    }
    // Settings a filter computes with that the server does not report (lc_time,
    // default_text_search_config, …): their values are the client's from the start. pgjdbc's
    // extra_float_digits=3 writes floats as the server's default 1 does.
    let given = params.given.clone();
    core.clock
        .set_baseline(&given.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>());
    // The role's and the database's defaults too: a listed function may have set one for the
    // login's next sessions (round 227 BL3: `ALTER ROLE CURRENT_USER SET bytea_output = escape`).
    // A planner lever, the client's or a default, moves only the order a plan reads rows in.
    for (name, value) in given.into_iter().chain(defaults) {
        let same_digits = name == "extra_float_digits" && value.trim().parse::<i32>().is_ok_and(|d| d >= 1);
        let pinned = matches!(name.as_str(), "client_encoding" | "standard_conforming_strings");
        let reported = crate::policy::decide::REPORTED_SETTINGS.contains(&name.as_str());
        let moves = crate::policy::decide::moves_values(&name, |p| catalog.setting_prefixes.contains(p));
        if moves && !same_digits && !pinned && !reported {
            match crate::policy::decide::is_planner_lever(&name) {
                true => core.clock.lever_at_start(&name),
                false => core.clock.set_at_start(&name),
            }
        }
    }
    Ok(Started {
        upstream,
        upstream_buf: ubuf,
        core,
        proxy_key,
        upstream_key,
    })
}

/// Relays one password / SASL message from the client to the upstream.
async fn relay_password(
    client: &mut Conn,
    buf: &mut BytesMut,
    upstream: &mut Conn,
    max: usize,
) -> Result<(), SessionError> {
    let f = read_frame(client, buf, max.min(64 * 1024))
        .await
        .map_err(|e| read_err(e, false))?;
    match f.tag {
        fe::PASSWORD => write_all(upstream, &f.raw)
            .await
            .map_err(|_| SessionError::UpstreamGone),
        fe::TERMINATE => Err(SessionError::ClientGone),
        other => Err(SessionError::Protocol(format!(
            "expected a password message, got '{}'",
            other as char
        ))),
    }
}

/// search_path, then the login's roles: a superuser counts only as itself (see
/// catalog::queries::MEMBERSHIPS); then the settings the session started with from the role's or
/// the database's defaults (`ALTER ROLE … SET`, also `ALTER ROLE ALL`: round 231 BP3), which
/// Postgres reports only for a few.
const IDENTITY_PROBE: &str = "SELECT pg_catalog.current_setting('search_path'), (current_user = session_user)::pg_catalog.text; \
     SELECT r.rolname::text FROM pg_catalog.pg_roles r WHERE pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER') \
     AND (r.rolname = session_user OR NOT (SELECT s.rolsuper FROM pg_catalog.pg_roles s WHERE s.rolname = session_user)); \
     SELECT pg_catalog.lower(name), setting FROM pg_catalog.pg_settings WHERE source IN ('global', 'database', 'user', 'database user')";

/// What the identity probe read.
struct Probed {
    search_path: String,
    roles: Vec<String>,
    /// Settings from the role's or the database's defaults, lower-cased, with their values.
    defaults: Vec<(String, String)>,
}

async fn probe_identity(upstream: &mut Conn, buf: &mut BytesMut, max: usize) -> Result<Probed, SessionError> {
    write_all(upstream, &encode::query(IDENTITY_PROBE))
        .await
        .map_err(|_| SessionError::UpstreamGone)?;
    let mut result = 0;
    let mut path = None;
    let mut roles = Vec::new();
    let mut defaults = Vec::new();
    loop {
        let f = read_frame(upstream, buf, max).await.map_err(|e| read_err(e, true))?;
        match f.tag {
            be::ROW_DESCRIPTION | be::NOTICE_RESPONSE | be::PARAMETER_STATUS => {}
            be::DATA_ROW => {
                let mut fields = be::data_row(f.body())?;
                let mut text = || match fields.next() {
                    Some(Ok(Some(v))) => String::from_utf8(v.to_vec()).ok(),
                    _ => None,
                };
                if result == 0 {
                    path = text();
                    // `ALTER ROLE agent SET role = …` makes every session of the login act as
                    // another role from its start: not the identity the purpose was bound to.
                    if text().as_deref() != Some("true") {
                        return Err(SessionError::Protocol(
                            "the login's sessions start as another role (ALTER ROLE … SET role); unscharf serves sessions that act as their login"
                                .into(),
                        ));
                    }
                } else if result == 1 {
                    roles.extend(text());
                } else if let (Some(name), Some(value)) = (text(), text()) {
                    defaults.push((name, value));
                }
            }
            be::COMMAND_COMPLETE => result += 1,
            be::ERROR_RESPONSE => return Err(SessionError::Protocol("the identity probe failed".into())),
            be::READY_FOR_QUERY => break,
            other => {
                return Err(SessionError::Protocol(format!(
                    "unexpected '{}' in the identity probe",
                    other as char
                )))
            }
        }
    }
    let search_path = path.ok_or_else(|| SessionError::Protocol("no search_path".into()))?;
    Ok(Probed {
        search_path,
        roles,
        defaults,
    })
}

/// Rule 2: the one purpose the login belongs to, or the one it names; else a message listing choices.
pub fn bind_purpose(policy: &PolicySet, user: &str, roles: &[String], asked: Option<&str>) -> Result<String, String> {
    let mine: Vec<&str> = policy.purposes_for(user, roles).map(|p| p.name.as_str()).collect();
    match asked {
        Some(p) if mine.contains(&p) => Ok(p.to_owned()),
        Some(p) if mine.is_empty() => Err(format!("user {user} may not act under purpose {p}: it is a member of no purpose")),
        Some(p) => Err(format!("user {user} may not act under purpose {p}; choose one of: {}", mine.join(", "))),
        None => match mine.as_slice() {
            [one] => Ok((*one).to_owned()),
            [] => Err(format!("user {user} is a member of no purpose, so unscharf admits no statement from it")),
            many => Err(format!(
                "user {user} is a member of several purposes; name one with the startup parameter unscharf.purpose (e.g. options='-c unscharf.purpose=NAME'): {}",
                many.join(", ")
            )),
        },
    }
}

/// Postgres refuses a client that could bind the SCRAM channel but was offered no binding, which is
/// what libpq sees through unscharf when both legs use TLS. The refusal blames the client, so say
/// what to change.
fn channel_binding_hint(body: &[u8]) -> Option<bytes::Bytes> {
    let fields = be::error_fields(body).ok()?;
    // Postgres 15 sends SQLSTATE 28000 here, other versions 08P01; the message is stable.
    let is_it = fields
        .iter()
        .any(|(k, v)| *k == b'M' && v.starts_with("SCRAM channel binding"));
    if !is_it || fields.iter().any(|(k, _)| *k == b'H') {
        return None;
    }
    let mut fields: Vec<(u8, String)> = fields.into_iter().map(|(k, v)| (k, v.to_owned())).collect();
    fields.push((
        b'H',
        "unscharf relays SCRAM without channel binding, which cannot cross a proxy; connect with channel_binding=disable".into(),
    ));
    Some(build::error_or_notice(false, fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_binding_refusals_get_a_hint_and_others_pass_unchanged() {
        let refusal = build::error(
            build::Severity::Fatal,
            "28000",
            "SCRAM channel binding negotiation error",
            None,
        );
        let hinted = channel_binding_hint(&refusal[5..]).expect("a hint");
        let fields = be::error_fields(&hinted[5..]).unwrap();
        assert!(fields
            .iter()
            .any(|(k, v)| *k == b'H' && v.contains("channel_binding=disable")));
        assert!(fields.contains(&(b'M', "SCRAM channel binding negotiation error")));
        let other = build::error(build::Severity::Fatal, "28P01", "password authentication failed", None);
        assert!(channel_binding_hint(&other[5..]).is_none());
    }
}
