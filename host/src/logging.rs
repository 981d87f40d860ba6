//! The log: what `pipewright` writes to stderr (JSON lines with `serve --log-json`, else text),
//! filtered by `RUST_LOG`.
//!
//! A line written while a request is served carries that request (its id, method, path, route
//! and, once authenticated, user): `"request": {…}` in JSON, `request={…}` at the end of a text
//! line. The request is read from its task ([`crate::api::request_id`]) when a line is written,
//! not kept in a tracing span: a span per request cost about a tenth of a warm run's time, for
//! lines that nearly no request writes.

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// Logs to stderr (stdout is for command output), filtered by `RUST_LOG` (else `default_filter`).
pub fn init_tracing(json: bool, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder
            .json()
            .event_format(WithRequest {
                inner: format().json(),
                json: true,
            })
            .try_init()
    } else {
        builder
            .event_format(WithRequest {
                inner: format(),
                json: false,
            })
            .try_init()
    };
}

fn format() -> format::Format {
    format::Format::default()
}

/// A line format (`inner`) with the request being served, if any, added to each line.
struct WithRequest<F> {
    inner: F,
    json: bool,
}

impl<S, N, F> FormatEvent<S, N> for WithRequest<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some(request) = crate::api::request_id::log_context() else {
            return self.inner.format_event(context, writer, event);
        };
        // The line is made whole, then the request goes in before its end. (Text lines inside
        // a request lose their colours: a writer of our own cannot ask for them.)
        let mut line = String::new();
        self.inner
            .format_event(context, Writer::new(&mut line), event)?;
        let line = line.trim_end_matches('\n');
        match line.strip_suffix('}') {
            Some(object) if self.json => writeln!(writer, "{object},\"request\":{request}}}"),
            _ => writeln!(writer, "{line} request={request}"),
        }
    }
}
