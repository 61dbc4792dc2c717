//! In-process mode: the services the command needs, started on an ephemeral loopback port
//! exactly as the `terse` binary starts them, and stopped when the command is done.

use std::net::SocketAddr;

use terse_server::{
    config::Config,
    server::{self, Running},
};

use crate::Connection;

/// Services running in this process.
pub struct Local {
    running: Running,
}

impl Local {
    /// Starts `services` with the config file (or defaults) and the connection's overrides.
    pub async fn start(connection: &Connection, services: &[&str]) -> anyhow::Result<Self> {
        let mut config = match &connection.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.server.metrics_listen = String::new();
        config.server.services = services.iter().map(|s| s.to_string()).collect();
        if let Some(repository) = &connection.model_repository {
            config.runtime.repository = repository.clone();
        }
        if let Some(library) = &connection.ort_library {
            config.runtime.library = Some(library.clone());
        }
        let resolved = config.resolve()?;
        let running = server::start(resolved)
            .await
            .map_err(|e| e.context("starting the services in-process (or pass --server)"))?;
        Ok(Self { running })
    }

    /// The loopback address the services listen on.
    pub fn address(&self) -> SocketAddr {
        self.running.grpc_addr
    }

    /// Drains and stops the services.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.running.shutdown().await
    }
}
