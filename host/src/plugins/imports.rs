//! The host side of the `host` interface that plugins import.
//!
//! `http-fetch` is granted per plugin as a list of base URLs, with credentials the host adds;
//! no grants are configured yet, so every request is refused with a message saying so.

use super::bindings::v0_1_0::policy::pipewright::plugin::{host, types};
use super::limits::PluginState;

impl types::Host for PluginState {}

impl host::Host for PluginState {
    fn log(&mut self, level: host::LogLevel, message: String) {
        match level {
            host::LogLevel::Trace => tracing::trace!(plugin = %self.plugin, "{message}"),
            host::LogLevel::Debug => tracing::debug!(plugin = %self.plugin, "{message}"),
            host::LogLevel::Info => tracing::info!(plugin = %self.plugin, "{message}"),
            host::LogLevel::Warn => tracing::warn!(plugin = %self.plugin, "{message}"),
            host::LogLevel::Error => tracing::error!(plugin = %self.plugin, "{message}"),
        }
    }

    fn config(&mut self, _key: String) -> Option<String> {
        None
    }

    fn http_fetch(&mut self, request: host::HttpRequest) -> Result<host::HttpResponse, String> {
        Err(format!(
            "plugin {} is not granted HTTP access to {}",
            self.plugin, request.url
        ))
    }
}
