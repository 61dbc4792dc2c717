//! [`HostedService`]: what the server needs of each service it can host. Each service's
//! config section (its limits, read straight from the `[<service>]` table of the config file)
//! implements it, so the server's start-up is one loop over the configured services.

use std::sync::Arc;

use terse_runtime::{ModelRegistry, OnnxRuntime};
use tonic::service::RoutesBuilder;

use crate::MemoryBudget;

/// What the host gives a service to build itself from.
pub struct Host<'a> {
    /// The loaded model repository.
    pub registry: &'a Arc<ModelRegistry>,
    /// The ONNX Runtime the models run on.
    pub runtime: &'a OnnxRuntime,
    /// The server's working-memory budget, shared by every service.
    pub memory: &'a MemoryBudget,
    /// Largest request message the service accepts, in bytes.
    pub max_request_bytes: usize,
    /// Largest response message it sends, in bytes.
    pub max_response_bytes: usize,
}

/// A service the server can host, built from its config section.
///
/// ```
/// use terse_service_common::{Host, HostedService};
/// use tonic::service::RoutesBuilder;
///
/// /// A service with no model and nothing to serve (a real one adds its tonic server).
/// struct Nothing;
///
/// impl HostedService for Nothing {
///     fn add_to(&self, _host: &Host, _routes: &mut RoutesBuilder) -> Result<String, String> {
///         Ok("nothing hosted".into())
///     }
/// }
///
/// assert!(Nothing.model_tasks().is_empty());
/// ```
pub trait HostedService {
    /// The model tasks it runs (their models are loaded for it; a failed one makes it
    /// NOT_SERVING). None by default: a service without models, or the model-repository
    /// service, which serves any model and names none.
    fn model_tasks(&self) -> &'static [&'static str] {
        &[]
    }

    /// Builds the service from `host` and adds its gRPC server to `routes`, with the host's
    /// message limits; returns what it hosts, for the start-up log. An error (say, a model
    /// asset that does not parse) leaves the service out: it answers UNAVAILABLE.
    fn add_to(&self, host: &Host, routes: &mut RoutesBuilder) -> Result<String, String>;
}

/// Adds the generated tonic server `$server` of `$service` to `$routes` with `$host`'s message
/// limits, and answers `Ok($hosted)` (what it hosts, evaluated before `$service` moves): the one
/// way a [`HostedService::add_to`] registers itself.
#[macro_export]
macro_rules! add_service {
    ($routes:expr, $host:expr, $server:ident, $service:expr, $hosted:expr) => {{
        let hosted: String = $hosted;
        $routes.add_service(
            $server::new($service)
                .max_decoding_message_size($host.max_request_bytes)
                .max_encoding_message_size($host.max_response_bytes),
        );
        Ok(hosted)
    }};
}
