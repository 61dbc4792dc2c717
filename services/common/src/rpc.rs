//! [`rpcs!`](crate::rpcs): the tonic glue of a service, written once. A service states each
//! RPC as its request message, its answer and a body; the macro writes the `async fn` with
//! tonic's `Request`/`Response`/`Status` wrapping around it.

/// Implements a generated tonic service trait from one body per RPC.
///
/// Each RPC reads `fn name(self, request: Message) -> Answer { body }`: `request` is the
/// request's message (already taken out of its `tonic::Request`), the body evaluates to the
/// answer message, and `?` in it returns a `tonic::Status`. A server-streaming RPC reads
/// `-> stream StreamType of Item`: its body evaluates to a [`Download`](crate::Download) of
/// `Item` messages, and the macro declares the trait's `StreamType` as that.
///
/// ```
/// use terse_service_common::{Download, download, rpcs};
/// use tonic::Status;
///
/// /// A stand-in for a generated service trait (tonic writes these with `async_trait`).
/// #[tonic::async_trait]
/// trait Echo: Send + Sync + 'static {
///     async fn echo(
///         &self,
///         request: tonic::Request<String>,
///     ) -> Result<tonic::Response<String>, Status>;
///
///     type EchoBytesStream;
///
///     async fn echo_bytes(
///         &self,
///         request: tonic::Request<String>,
///     ) -> Result<tonic::Response<Self::EchoBytesStream>, Status>;
/// }
///
/// struct Loud;
///
/// rpcs! {
///     impl Echo for Loud {
///         fn echo(self, text: String) -> String {
///             if text.is_empty() {
///                 return Err(Status::invalid_argument("nothing to echo"));
///             }
///             text.to_uppercase()
///         }
///
///         fn echo_bytes(self, text: String) -> stream EchoBytesStream of usize {
///             download(text.as_bytes(), |chunk| chunk.data.len())
///         }
///     }
/// }
///
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let answer = runtime.block_on(Loud.echo(tonic::Request::new("hi".into()))).unwrap();
/// assert_eq!(answer.into_inner(), "HI");
/// let refused = runtime.block_on(Loud.echo(tonic::Request::new(String::new())));
/// assert_eq!(refused.unwrap_err().code(), tonic::Code::InvalidArgument);
/// assert!(runtime.block_on(Loud.echo_bytes(tonic::Request::new("hi".into()))).is_ok());
/// ```
#[macro_export]
macro_rules! rpcs {
    (impl $($service_trait:ident)::+ for $service:ty { $($rpcs:tt)* }) => {
        $crate::rpcs!(@rpc [$($service_trait)::+] [$service] [] $($rpcs)*);
    };
    // A server-streaming RPC: declares its stream type, then reads on as a unary RPC
    // answering it.
    (@rpc [$($service_trait:ident)::+] [$service:ty] [$($written:tt)*]
        fn $rpc:ident($self:ident, $request:ident: $message:ty $(,)?)
            -> stream $stream:ident of $item:ty $body:block
        $($rest:tt)*
    ) => {
        $crate::rpcs!(@rpc [$($service_trait)::+] [$service] [
            $($written)*
            type $stream = $crate::Download<$item>;
        ] fn $rpc($self, $request: $message) -> Self::$stream $body $($rest)*);
    };
    // A unary (or client-streaming) RPC.
    (@rpc [$($service_trait:ident)::+] [$service:ty] [$($written:tt)*]
        fn $rpc:ident($self:ident, $request:ident: $message:ty $(,)?) -> $answer:ty $body:block
        $($rest:tt)*
    ) => {
        $crate::rpcs!(@rpc [$($service_trait)::+] [$service] [
            $($written)*
            async fn $rpc(
                &$self,
                request: $crate::tonic::Request<$message>,
            ) -> ::core::result::Result<
                $crate::tonic::Response<$answer>,
                $crate::tonic::Status,
            > {
                let $request = request.into_inner();
                ::core::result::Result::Ok($crate::tonic::Response::new($body))
            }
        ] $($rest)*);
    };
    // All RPCs read: the impl.
    (@rpc [$($service_trait:ident)::+] [$service:ty] [$($written:tt)*]) => {
        #[$crate::tonic::async_trait]
        impl $($service_trait)::+ for $service {
            $($written)*
        }
    };
}
