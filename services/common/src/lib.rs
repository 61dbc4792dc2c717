//! Helpers shared by the terse gRPC services.

#![warn(missing_docs)]

use tonic::Status;

/// Runs CPU-bound request work on the blocking pool so it never stalls the async runtime; a
/// panic in the work becomes INTERNAL instead of taking the connection down.
pub async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Status::internal(format!("worker failed: {e}")))?
}
