//! End-to-end tests: a real server on a loopback port, real SQLite and PostgreSQL, real plugins.
//!
//! PostgreSQL tests take the server from `PIPEWRIGHT_TEST_POSTGRES_URL` and create a fresh
//! database per test. Without it they are skipped with a note, except under CI (`CI=true`),
//! where a missing peer fails the run.

mod acumos;
mod api_v1;
mod bindings;
mod cli;
mod console;
mod cross_account;
mod gbdx;
mod guests;
mod harness;
mod kit;
mod launch;
mod mystic;
mod openapi;
mod ops;
mod peers;
mod plugin_host;
mod plugins;
mod readme;
mod replicas;
mod tenancy;
mod v1_paging;
