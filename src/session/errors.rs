//! The one place session errors become what the client sees: a FATAL ErrorResponse with a SQLSTATE.

use bytes::Bytes;

use super::core::CoreError;
use crate::wire::build::{self, Severity};
use crate::wire::startup::StartupError;
use crate::wire::{FrameError, WireError};

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("invalid startup packet: {0}")]
    Startup(#[from] StartupError),
    #[error("{0}")]
    Params(String),
    #[error("sorry, too many clients already (unscharf's limit is {0} sessions)")]
    TooManyClients(usize),
    #[error("sorry, too many connections are starting at once (unscharf takes {0} at a time, and ends the longest-waiting one after a second); try again")]
    TooManyStartups(usize),
    #[error("sorry, too many logins are under way at once (unscharf authenticates {0} at a time); try again")]
    TooManyLogins(usize),
    #[error("authentication did not complete within {0} seconds")]
    StartupTimeout(u64),
    #[error("unscharf requires TLS: connect with sslmode=require or stronger")]
    TlsRequired,
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    #[error("cannot reach the database server: {0}")]
    UpstreamConnect(String),
    #[error("the database server closed the connection")]
    UpstreamGone,
    /// The server refused the client (e.g. wrong password); its own error was already relayed.
    #[error("the database server refused the connection")]
    UpstreamRefused,
    #[error("authentication method {0} is not supported through unscharf (use password, md5 or SCRAM-SHA-256)")]
    AuthMethod(i32),
    #[error("{0}")]
    Purpose(String),
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("protocol violation: {0}")]
    Protocol(String),
    #[error("terminating connection due to idle-session timeout")]
    IdleTimeout,
    #[error("terminating connection because unscharf is shutting down")]
    Shutdown,
    #[error("the client closed the connection")]
    ClientGone,
    #[error("the database's definitions changed (a migration committed) while a statement waited for its answer; unscharf does not pass on an answer it did not judge, so this session ends. Connect again and send it again")]
    Fenced,
    #[error("a migration has held this session's statements or answers in unscharf for {0} s, and the migration waits for this session's locks (or Postgres could not tell); the session ends so that both can go on")]
    FenceHeld(u64),
    #[error("the sessions of unscharf already hold {0} bytes in large messages under way (limits.max_buffered_bytes), and this session's next one would pass that: it ends; send large messages when fewer are under way")]
    Buffers(usize),
}

impl SessionError {
    pub fn sqlstate(&self) -> &'static str {
        match self {
            SessionError::Startup(_) | SessionError::Frame(_) | SessionError::Wire(_) | SessionError::Protocol(_) => {
                "08P01"
            }
            SessionError::Params(_) => "0A000",
            SessionError::TooManyClients(_) | SessionError::TooManyStartups(_) | SessionError::TooManyLogins(_) => {
                "53300"
            }
            SessionError::StartupTimeout(_) => "08006",
            SessionError::TlsRequired | SessionError::AuthMethod(_) | SessionError::Purpose(_) => "28000",
            SessionError::Tls(_) => "08P01",
            SessionError::UpstreamConnect(_) => "08001",
            SessionError::UpstreamGone | SessionError::UpstreamRefused | SessionError::ClientGone => "08006",
            SessionError::Core(CoreError::CutOff(_)) => "42501",
            SessionError::Core(CoreError::UnsafeSetting(_)) => "0A000",
            SessionError::Core(_) => "08P01",
            SessionError::IdleTimeout => "57P05",
            SessionError::Shutdown | SessionError::Fenced => "57P01",
            SessionError::FenceHeld(_) => "40P01",
            SessionError::Buffers(_) => "53200",
        }
    }

    /// The FATAL message for the client, or None when there is nobody to tell (or the server already did).
    pub fn fatal(&self) -> Option<Bytes> {
        match self {
            SessionError::ClientGone | SessionError::UpstreamRefused => None,
            other => Some(build::error(
                Severity::Fatal,
                other.sqlstate(),
                &format!("unscharf: {other}"),
                None,
            )),
        }
    }
}
