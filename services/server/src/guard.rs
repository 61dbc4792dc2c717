//! The tower layer in front of every gRPC service: bearer-token authentication, services that
//! could not start answering UNAVAILABLE, a global concurrency limit with load shedding, request
//! deadlines, and per-method metrics (calls by code, latency, bytes in and out).

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use http::{HeaderMap, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use prometheus::IntCounter;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Code, Status, body::Body};
use tower::{Layer, Service};

use terse_service_common::CallScope;

use crate::{auth::TokenSet, metrics::Metrics};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Finishing the timer a little before the deadline lets our DEADLINE_EXCEEDED reach the
/// client before the client's own timer (which answers CANCELLED) fires on the same deadline:
/// a tenth of the deadline, at least 5 ms and at most 250 ms, so a loaded machine still makes it.
fn deadline_margin(deadline: Duration) -> Duration {
    (deadline / 10).clamp(Duration::from_millis(5), Duration::from_millis(250))
}

/// What the guard enforces.
pub struct GuardSettings {
    /// Most calls at once (health and reflection exempt).
    pub limit: usize,
    /// Server-side deadline; the client's wins when shorter.
    pub timeout: Option<Duration>,
    /// Accepted bearer tokens; `None`: no authentication.
    pub tokens: Option<Arc<TokenSet>>,
    /// gRPC service names callable without a token.
    pub auth_exempt: Vec<String>,
    /// Services configured but not serving (gRPC name, why): their calls get UNAVAILABLE.
    pub unavailable: Vec<(String, String)>,
}

/// Settings and shared state of the guard.
pub struct GuardState {
    permits: Arc<Semaphore>,
    limit: usize,
    timeout: Option<Duration>,
    tokens: Option<Arc<TokenSet>>,
    /// `/service/` prefixes callable without a token.
    auth_exempt: Vec<String>,
    /// `/service/` prefixes of services that are not serving, with the reason.
    unavailable: Vec<(String, String)>,
    metrics: Arc<Metrics>,
}

impl GuardState {
    /// The status a call to `path` gets before it reaches its service, if any.
    fn refusal(&self, path: &str, headers: &HeaderMap) -> Option<Status> {
        if let Some(tokens) = &self.tokens
            && !self
                .auth_exempt
                .iter()
                .any(|prefix| path.starts_with(prefix))
            && let Err(status) = tokens.check(headers)
        {
            return Some(status);
        }
        self.unavailable
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix))
            .map(|(prefix, reason)| {
                Status::unavailable(format!(
                    "{} is not serving on this instance: {reason}",
                    prefix.trim_matches('/')
                ))
            })
    }
}

/// Layer that wraps services in a [`Guard`].
#[derive(Clone)]
pub struct GuardLayer {
    state: Arc<GuardState>,
}

impl GuardLayer {
    /// A guard enforcing `settings`, reporting to `metrics`.
    pub fn new(settings: GuardSettings, metrics: Arc<Metrics>) -> Self {
        let prefix = |name: &String| format!("/{name}/");
        Self {
            state: Arc::new(GuardState {
                permits: Arc::new(Semaphore::new(settings.limit)),
                limit: settings.limit,
                timeout: settings.timeout,
                tokens: settings.tokens,
                auth_exempt: settings.auth_exempt.iter().map(prefix).collect(),
                unavailable: settings
                    .unavailable
                    .iter()
                    .map(|(name, reason)| (prefix(name), reason.clone()))
                    .collect(),
                metrics,
            }),
        }
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Guard<S> {
        Guard {
            inner,
            state: Arc::clone(&self.state),
        }
    }
}

/// See the module documentation.
#[derive(Clone)]
pub struct Guard<S> {
    inner: S,
    state: Arc<GuardState>,
}

/// Parses a `grpc-timeout` header (`<digits><unit>`, unit one of H M S m u n).
pub fn parse_grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// Runs `call` until `ends`; `None` when the deadline came first.
///
/// tonic answers CANCELLED ("Timeout expired") when its own `grpc-timeout` timer, which wraps
/// this layer, fires first. Two timers on the same millisecond tick fire in no fixed order
/// (tokio shards its timer wheel across workers), so this one does not rely on its timer
/// alone: every poll first reads the clock, and `ends` is never later than tonic's deadline.
/// When tonic's timer has fired and polls us, the clock is past `ends` and the answer here is
/// DEADLINE_EXCEEDED. A deadline inside the margin ends the call before its work starts.
async fn within_deadline<F: Future>(ends: tokio::time::Instant, call: F) -> Option<F::Output> {
    let mut call = std::pin::pin!(call);
    let mut timer = std::pin::pin!(tokio::time::sleep_until(ends));
    std::future::poll_fn(|cx| {
        if tokio::time::Instant::now() >= ends {
            return Poll::Ready(None);
        }
        if let Poll::Ready(output) = call.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}

fn is_exempt(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.") || path.starts_with("/grpc.reflection.")
}

/// Everything needed to account for one call when its response body ends (or is dropped).
struct CallRecord {
    method: String,
    started: Instant,
    code: Code,
    /// False until the response body has ended; a body dropped before that was cancelled.
    finished: bool,
    metrics: Arc<Metrics>,
    /// The call's concurrency permit, also held by blocking work it started (see `scope`).
    _permit: Option<Arc<OwnedSemaphorePermit>>,
    /// Shared with the call's blocking work: marked ended when this record goes.
    scope: Option<CallScope>,
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        if let Some(scope) = &self.scope {
            scope.end();
        }
        if !self.finished {
            self.code = Code::Cancelled;
        }
        let code = format!("{:?}", self.code);
        self.metrics
            .requests
            .with_label_values(&[&self.method, &code])
            .inc();
        self.metrics
            .latency
            .with_label_values(&[&self.method])
            .observe(self.started.elapsed().as_secs_f64());
        self.metrics.in_flight.dec();
        let elapsed_ms = self.started.elapsed().as_secs_f64() * 1e3;
        if matches!(self.code, Code::Internal | Code::Unknown | Code::DataLoss) {
            tracing::warn!(method = %self.method, code = %code, elapsed_ms, "call failed");
        } else {
            tracing::debug!(method = %self.method, code = %code, elapsed_ms, "call finished");
        }
    }
}

/// tonic answers OUT_OF_RANGE for a message over the size limit; gRPC (and every other gRPC
/// server) says RESOURCE_EXHAUSTED. Rewrites that one status in response headers or trailers.
fn normalize_size_limit_status(headers: &mut HeaderMap) {
    let over_limit = headers.get("grpc-status").is_some_and(|v| v == "11")
        && headers
            .get("grpc-message")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|m| {
                m.contains("message length too large")
                    || m.contains("message%20length%20too%20large")
            });
    if over_limit {
        headers.insert("grpc-status", http::HeaderValue::from_static("8"));
    }
}

fn code_in(headers: &HeaderMap) -> Option<Code> {
    let value = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .parse::<i32>()
        .ok()?;
    Some(Code::from_i32(value))
}

pin_project_lite::pin_project! {
    /// A body that counts data bytes and, for responses, finishes the call record with the
    /// status from the trailers when it ends.
    pub struct MeteredBody {
        #[pin]
        inner: Body,
        bytes: IntCounter,
        record: Option<CallRecord>,
    }
}

impl MeteredBody {
    fn new(inner: Body, bytes: IntCounter, record: Option<CallRecord>) -> Self {
        Self {
            inner,
            bytes,
            record,
        }
    }
}

impl HttpBody for MeteredBody {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let mut polled = this.inner.poll_frame(cx);
        match &mut polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes.inc_by(data.len() as u64);
                } else if let Some(trailers) = frame.trailers_mut() {
                    // Trailers end a gRPC response: hyper does not poll again after them.
                    normalize_size_limit_status(trailers);
                    if let Some(mut record) = this.record.take() {
                        record.code = code_in(trailers).unwrap_or(record.code);
                        record.finished = true;
                    }
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(mut record) = this.record.take() {
                    record.code = Code::Internal;
                    record.finished = true;
                }
            }
            Poll::Ready(None) => {
                if let Some(mut record) = this.record.take() {
                    record.finished = true;
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn status_response(status: Status, record: CallRecord) -> Response<MeteredBody> {
    let bytes = record
        .metrics
        .bytes_out
        .with_label_values(&[&record.method]);
    let mut record = record;
    record.code = status.code();
    record.finished = true;
    status
        .into_http::<Body>()
        .map(|body| MeteredBody::new(body, bytes, Some(record)))
}

impl<S, B> Service<Request<Body>> for Guard<S>
where
    S: Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<MeteredBody>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // Taken now, before tonic's own `grpc-timeout` timer (outside this layer) starts, so
        // our deadline never falls after tonic's (see `within_deadline`).
        let arrived = tokio::time::Instant::now();
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let state = Arc::clone(&self.state);
        Box::pin(async move {
            let metrics = Arc::clone(&state.metrics);
            let method = metrics.method_label(request.uri().path()).to_string();
            metrics.in_flight.inc();
            let mut record = CallRecord {
                method: method.clone(),
                started: Instant::now(),
                code: Code::Ok,
                finished: false,
                metrics: Arc::clone(&metrics),
                _permit: None,
                scope: None,
            };
            if let Some(status) = state.refusal(request.uri().path(), request.headers()) {
                return Ok(status_response(status, record));
            }
            if !is_exempt(request.uri().path()) {
                match Arc::clone(&state.permits).try_acquire_owned() {
                    Ok(permit) => {
                        // Blocking work started by the call keeps the permit until it ends,
                        // even when the call ends first (deadline, cancellation).
                        let permit = Arc::new(permit);
                        record.scope = Some(CallScope::new(Arc::clone(&permit) as _));
                        record._permit = Some(permit);
                    }
                    Err(_) => {
                        let status = Status::resource_exhausted(format!(
                            "server is at its limit of {} concurrent requests; retry with backoff",
                            state.limit
                        ));
                        return Ok(status_response(status, record));
                    }
                }
            }
            let deadline = match (parse_grpc_timeout(request.headers()), state.timeout) {
                (Some(client), Some(server)) => Some(client.min(server)),
                (client, server) => client.or(server),
            };
            let bytes_in = metrics.bytes_in.with_label_values(&[&method]);
            let request = request.map(|body| Body::new(MeteredBody::new(body, bytes_in, None)));
            let scope = record.scope.clone().unwrap_or_default();
            let call = scope.run(inner.call(request));
            let response = match deadline {
                None => call.await.map_err(Into::into)?,
                Some(deadline) => {
                    let ends = arrived + deadline.saturating_sub(deadline_margin(deadline));
                    match within_deadline(ends, call).await {
                        Some(response) => response.map_err(Into::into)?,
                        None => {
                            let status = Status::deadline_exceeded(format!(
                                "deadline of {} ms exceeded",
                                deadline.as_millis()
                            ));
                            return Ok(status_response(status, record));
                        }
                    }
                }
            };
            let mut response = response;
            normalize_size_limit_status(response.headers_mut());
            if let Some(code) = code_in(response.headers()) {
                // Trailers-only response: the status is final and the body is empty.
                record.code = code;
                record.finished = true;
            }
            let bytes_out = metrics.bytes_out.with_label_values(&[&method]);
            Ok(response.map(|body| MeteredBody::new(Body::new(body), bytes_out, Some(record))))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_headers_parse() {
        let mut headers = HeaderMap::new();
        for (value, expected) in [
            ("100m", Some(Duration::from_millis(100))),
            ("2S", Some(Duration::from_secs(2))),
            ("1H", Some(Duration::from_secs(3600))),
            ("5u", Some(Duration::from_micros(5))),
            ("10", None),
            ("m", None),
            ("1234567890S", None),
            ("-1S", None),
        ] {
            headers.insert("grpc-timeout", value.parse().unwrap());
            assert_eq!(parse_grpc_timeout(&headers), expected, "{value}");
        }
    }
}
