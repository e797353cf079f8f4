//! A raw protocol client for byte-level tests: build messages by hand, read frames back.

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use unscharf::wire::startup::StartupMessage;
use unscharf::wire::{next_frame, Frame};

pub struct Raw {
    pub stream: TcpStream,
    pub buf: BytesMut,
    pub key: (i32, i32),
}

pub fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn cstr(b: &mut BytesMut, s: &str) {
    b.put_slice(s.as_bytes());
    b.put_u8(0);
}

pub fn query(sql: &str) -> Vec<u8> {
    let mut b = BytesMut::new();
    cstr(&mut b, sql);
    msg(b'Q', &b)
}

pub fn parse(name: &str, sql: &str, types: &[u32]) -> Vec<u8> {
    let mut b = BytesMut::new();
    cstr(&mut b, name);
    cstr(&mut b, sql);
    b.put_i16(types.len() as i16);
    types.iter().for_each(|t| b.put_u32(*t));
    msg(b'P', &b)
}

/// Bind with text parameters (None = NULL) and result formats.
pub fn bind(portal: &str, stmt: &str, params: &[Option<&str>], results: &[i16]) -> Vec<u8> {
    let mut b = BytesMut::new();
    cstr(&mut b, portal);
    cstr(&mut b, stmt);
    b.put_i16(0);
    b.put_i16(params.len() as i16);
    for p in params {
        match p {
            Some(v) => {
                b.put_i32(v.len() as i32);
                b.put_slice(v.as_bytes());
            }
            None => b.put_i32(-1),
        }
    }
    b.put_i16(results.len() as i16);
    results.iter().for_each(|f| b.put_i16(*f));
    msg(b'B', &b)
}

pub fn describe(kind: u8, name: &str) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_u8(kind);
    cstr(&mut b, name);
    msg(b'D', &b)
}

pub fn execute(portal: &str, max_rows: i32) -> Vec<u8> {
    let mut b = BytesMut::new();
    cstr(&mut b, portal);
    b.put_i32(max_rows);
    msg(b'E', &b)
}

pub fn close(kind: u8, name: &str) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_u8(kind);
    cstr(&mut b, name);
    msg(b'C', &b)
}

pub fn sync() -> Vec<u8> {
    msg(b'S', &[])
}

pub fn terminate() -> Vec<u8> {
    msg(b'X', &[])
}

pub fn flush() -> Vec<u8> {
    msg(b'H', &[])
}

impl Raw {
    /// Connects and completes startup for a trust-authenticated user.
    pub async fn connect(port: u16, user: &str, extra: &[(&str, &str)]) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        Raw::start(stream, user, extra).await
    }

    /// A connection that has sent a startup packet of `params` on `stream`.
    async fn opened(stream: TcpStream, params: Vec<(String, String)>) -> Raw {
        let startup = StartupMessage {
            major: 3,
            minor: 0,
            params,
        };
        let mut r = Raw {
            stream,
            buf: BytesMut::new(),
            key: (0, 0),
        };
        r.send(&startup.encode()).await;
        r
    }

    async fn start(stream: TcpStream, user: &str, extra: &[(&str, &str)]) -> Raw {
        let mut params = vec![
            ("user".to_string(), user.to_string()),
            ("database".to_string(), "crm".to_string()),
        ];
        params.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut r = Raw::opened(stream, params).await;
        loop {
            let f = r.frame().await;
            match f.tag {
                b'K' => {
                    let b = f.body();
                    r.key = (
                        i32::from_be_bytes(b[0..4].try_into().unwrap()),
                        i32::from_be_bytes(b[4..8].try_into().unwrap()),
                    );
                }
                b'Z' => break,
                b'E' => panic!("startup failed: {}", String::from_utf8_lossy(f.body())),
                _ => {}
            }
        }
        r
    }

    /// How the proxy ends a startup of `params` (trust authentication): the error's text, or
    /// `Z` once the session is ready.
    pub async fn startup_answer(port: u16, params: &[(&str, &str)]) -> String {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let params = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut r = Raw::opened(stream, params).await;
        loop {
            let f = r.frame().await;
            match f.tag {
                b'E' => return format!("E{}", String::from_utf8_lossy(f.body())),
                b'Z' => return "Z".into(),
                _ => {}
            }
        }
    }

    /// A connection that has sent `user`'s startup packet on `stream` and read nothing yet.
    pub async fn startup_sent(stream: TcpStream, user: &str) -> Raw {
        Raw::opened(
            stream,
            vec![("user".into(), user.into()), ("database".into(), "crm".into())],
        )
        .await
    }

    /// A session of the trust-authenticated `u_trust` under the lab's `transparency` purpose.
    pub async fn lab(port: u16) -> Raw {
        Raw::connect(port, "u_trust", &[("options", "-c unscharf.purpose=transparency")]).await
    }

    /// Like `lab`, with a small fixed receive window: the kernel's autotuning would otherwise
    /// take in up to `tcp_rmem`'s maximum (32 MiB on these machines) of an answer the test does
    /// not read, and what the proxy still holds would depend on the machine.
    pub async fn lab_small_window(port: u16) -> Raw {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(128 * 1024).unwrap();
        let stream = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
        Raw::start(stream, "u_trust", &[("options", "-c unscharf.purpose=transparency")]).await
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next frame, or panics after 10 s.
    pub async fn frame(&mut self) -> Frame {
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                if let Some(f) = next_frame(&mut self.buf, 1 << 30).unwrap() {
                    return f;
                }
                let n = self.stream.read_buf(&mut self.buf).await.unwrap();
                assert!(n > 0, "connection closed while waiting for a frame");
            }
        })
        .await
        .expect("no frame within 10 s")
    }

    /// The next frame, or None if the connection closes.
    pub async fn try_frame(&mut self) -> Option<Frame> {
        loop {
            if let Ok(Some(f)) = next_frame(&mut self.buf, 1 << 30) {
                return Some(f);
            }
            match tokio::time::timeout(std::time::Duration::from_secs(10), self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return None,
            }
        }
    }

    /// Frames up to and including the next ReadyForQuery.
    pub async fn until_ready(&mut self) -> Vec<Frame> {
        let mut out = Vec::new();
        loop {
            let f = self.frame().await;
            let done = f.tag == b'Z';
            out.push(f);
            if done {
                return out;
            }
        }
    }

    /// All bytes of frames up to and including the next ReadyForQuery.
    pub async fn bytes_until_ready(&mut self) -> Vec<u8> {
        self.until_ready().await.iter().flat_map(|f| f.raw.to_vec()).collect()
    }
}

/// The tags of a frame list, e.g. "TDDCZ".
pub fn tags(frames: &[Frame]) -> String {
    frames.iter().map(|f| f.tag as char).collect()
}

/// The text of the M field of an ErrorResponse frame.
pub fn error_message(f: &Frame) -> String {
    unscharf::wire::backend::error_fields(f.body())
        .unwrap()
        .into_iter()
        .find(|(c, _)| *c == b'M')
        .map(|(_, m)| m.to_owned())
        .unwrap_or_default()
}

pub fn error_code(f: &Frame) -> String {
    unscharf::wire::backend::error_fields(f.body())
        .unwrap()
        .into_iter()
        .find(|(c, _)| *c == b'C')
        .map(|(_, m)| m.to_owned())
        .unwrap_or_default()
}
