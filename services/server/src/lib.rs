//! The terse server as a library: configuration ([`config`]) and start-up/serving ([`server`]).
//! The `terse` binary is a thin command line over it; the CLI's local mode hosts the same
//! services in-process through [`server::start`].

pub mod auth;
pub mod config;
mod guard;
mod metrics;
pub mod server;
