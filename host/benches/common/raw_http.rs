//! A bare HTTP/1.1 client for timing one request at a time: one keep-alive connection, a request
//! written out once in advance, the answer read back with `Content-Length`. It runs on the
//! bench's own thread, so a timed request pays the server's work and the loopback, not an HTTP
//! client's (reqwest on the server's runtime cost as much as the server's own handling, and
//! took the server's threads to do it). `wrk` does the same for the load comparisons.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use anyhow::{bail, Context};

/// One request, ready to send again and again on one connection.
pub struct RawRequest {
    stream: BufReader<TcpStream>,
    request: Vec<u8>,
}

impl RawRequest {
    /// `method path` on `base` (`http://host:port`), with `headers` and a JSON `body`.
    pub fn new(
        base: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> anyhow::Result<Self> {
        let host = base.strip_prefix("http://").context("an http:// base")?;
        let stream = TcpStream::connect(host)?;
        stream.set_nodelay(true)?;
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
        Ok(RawRequest {
            stream: BufReader::new(stream),
            request: request.into_bytes(),
        })
    }

    /// Sends the request and reads its answer: (status, body).
    pub fn send(&mut self) -> anyhow::Result<(u16, String)> {
        self.stream.get_mut().write_all(&self.request)?;
        let mut line = String::new();
        self.stream.read_line(&mut line)?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .with_context(|| format!("not an HTTP status line: {line:?}"))?;
        let mut length = None;
        loop {
            line.clear();
            self.stream.read_line(&mut line)?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = Some(value.trim().parse::<usize>()?);
                }
            }
        }
        let Some(length) = length else {
            bail!("an answer without Content-Length");
        };
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body)?;
        Ok((status, String::from_utf8(body)?))
    }
}
