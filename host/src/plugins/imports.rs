//! The host side of the `host` interface that plugins import.
//!
//! `config` and `http-fetch` answer from the calling plugin's [`super::grants::PluginGrants`]
//! (set per call, see `PluginState::begin_call`): `config` reads only the plain config values,
//! never a grant's secret headers; `http-fetch` goes out only under a granted base URL and within
//! the call's deadline. Errors name the plugin and version. A fetch that fails once the call's
//! deadline has passed traps with `Trap::Interrupt`, so running out of time is reported as the
//! call's timeout whether the guest was computing, sleeping or waiting on the network.

use std::time::Instant;

use super::bindings::v0_1_0::policy::pipewright::plugin::{host, types};
use super::grants::FetchRequest;
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

    fn config(&mut self, key: String) -> Option<String> {
        self.grants.config.get(&key).cloned()
    }

    fn http_fetch(
        &mut self,
        request: host::HttpRequest,
    ) -> wasmtime::Result<Result<host::HttpResponse, String>> {
        let request = FetchRequest {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body,
        };
        let outcome = self
            .grants
            .fetch(&self.plugin.to_string(), request, self.deadline);
        if let Err(reason) = &outcome {
            if self
                .deadline
                .is_some_and(|deadline| Instant::now() >= deadline)
            {
                return Err(wasmtime::Trap::Interrupt.into());
            }
            tracing::info!(plugin = %self.plugin, %reason, "plugin http-fetch refused or failed");
        }
        Ok(outcome.map(|response| host::HttpResponse {
            status: response.status,
            headers: response.headers,
            body: response.body,
        }))
    }
}
