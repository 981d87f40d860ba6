//! What a guest writes to stdout and stderr, kept in memory up to a bound per stream.
//!
//! A [`CapturedStream`] never refuses a write: a guest that prints more than the bound keeps
//! running (Rust's `println!` panics when its stream fails, so refusing would turn chattiness
//! into a failure). It keeps the first `limit` bytes and counts the rest; [`CapturedStream::text`]
//! ends with a marker saying how many bytes were not kept. Memory grows with what is written,
//! never past the bound: a guest that prints nothing costs nothing.
//!
//! A guest that outlives one call (a warm Python instance, [`super::python`]) has its streams
//! made once; [`CapturedStream::forward_to`] sends what it writes to each call's own stream.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// How much a guest may hand over in one write: a permit, not a bound on what is kept.
const WRITE_PERMIT: usize = 64 << 10;

/// One output stream of one guest, shared by the handles WASI makes of it.
#[derive(Clone)]
pub struct CapturedStream {
    kept: Arc<Mutex<Kept>>,
}

struct Kept {
    bytes: Vec<u8>,
    limit: usize,
    /// Bytes written past `limit`, and not kept.
    dropped: u64,
    /// Where writes go instead, while set.
    forward: Option<CapturedStream>,
}

impl CapturedStream {
    /// A stream keeping at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        CapturedStream {
            kept: Arc::new(Mutex::new(Kept {
                bytes: Vec::new(),
                limit,
                dropped: 0,
                forward: None,
            })),
        }
    }

    /// Sends what is written from now on to `target` (None: keep it here again).
    pub fn forward_to(&self, target: Option<CapturedStream>) {
        self.kept.lock().unwrap().forward = target;
    }

    /// Sends what this stream kept, and all it is written from now on, to `target`: an
    /// instance made before its run ([`super::runnable`]) hands over to the run's stream.
    pub fn hand_over_to(&self, target: &CapturedStream) {
        let mut kept = self.kept.lock().unwrap();
        target.keep(&kept.bytes);
        target.kept.lock().unwrap().dropped += kept.dropped;
        kept.bytes = Vec::new();
        kept.dropped = 0;
        kept.forward = Some(target.clone());
    }

    fn keep(&self, bytes: &[u8]) {
        let mut kept = self.kept.lock().unwrap();
        if let Some(target) = kept.forward.clone() {
            drop(kept);
            return target.keep(bytes);
        }
        let room = kept.limit.saturating_sub(kept.bytes.len());
        let (now, past) = bytes.split_at(bytes.len().min(room));
        kept.bytes.extend_from_slice(now);
        kept.dropped += past.len() as u64;
    }

    /// The bytes kept (the first `limit` written).
    pub fn bytes(&self) -> Vec<u8> {
        self.kept.lock().unwrap().bytes.clone()
    }

    /// How many bytes were written past the bound and not kept.
    pub fn dropped(&self) -> u64 {
        self.kept.lock().unwrap().dropped
    }

    /// The bytes kept as text (invalid UTF-8 replaced), ending with a line saying how much was
    /// not kept when the guest wrote past the bound.
    pub fn text(&self) -> String {
        let kept = self.kept.lock().unwrap();
        let mut text = String::from_utf8_lossy(&kept.bytes).into_owned();
        if kept.dropped > 0 {
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!(
                "[output truncated: {} more bytes were written and not kept; the first {} are above]\n",
                kept.dropped, kept.limit
            ));
        }
        text
    }
}

impl IsTerminal for CapturedStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for CapturedStream {
    /// Always ready: a write never waits.
    async fn ready(&mut self) {}
}

impl OutputStream for CapturedStream {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.keep(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

impl tokio::io::AsyncWrite for CapturedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.keep(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A guest's stdout and stderr, each kept up to the same bound. Cheap to clone: clones share
/// the streams, so a caller holding one reads what the guest wrote even when the call that ran
/// it was dropped midway.
#[derive(Clone)]
pub struct CapturedOutput {
    pub stdout: CapturedStream,
    pub stderr: CapturedStream,
}

impl CapturedOutput {
    /// Both streams, each keeping at most `limit_per_stream` bytes.
    pub fn new(limit_per_stream: usize) -> Self {
        CapturedOutput {
            stdout: CapturedStream::new(limit_per_stream),
            stderr: CapturedStream::new(limit_per_stream),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_keeps_the_first_bytes_up_to_its_bound_and_says_how_many_it_dropped() {
        let mut stream = CapturedStream::new(8);
        stream.write(bytes::Bytes::from_static(b"hello ")).unwrap();
        stream.write(bytes::Bytes::from_static(b"world\n")).unwrap();
        assert_eq!(stream.bytes(), b"hello wo");
        assert_eq!(stream.dropped(), 4);
        assert_eq!(
            stream.text(),
            "hello wo\n[output truncated: 4 more bytes were written and not kept; the first 8 are above]\n"
        );
        // Past the bound, writes are still accepted (and counted).
        assert!(stream.check_write().unwrap() > 0);
        stream.write(bytes::Bytes::from_static(b"!!")).unwrap();
        assert_eq!(stream.dropped(), 6);
    }

    #[test]
    fn a_stream_within_its_bound_reads_back_unmarked() {
        let mut stream = CapturedStream::new(1 << 20);
        stream.write(bytes::Bytes::from_static(b"line\n")).unwrap();
        assert_eq!(stream.text(), "line\n");
        assert_eq!(CapturedStream::new(4).text(), "");
    }
}
