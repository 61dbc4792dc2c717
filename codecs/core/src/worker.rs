//! Where blocking work runs: the server's blocking pool (with the call's cancellation flag),
//! or the calling thread in tools and tests.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
    thread::Thread,
};

use crate::{Classify, Error};

/// A boxed future that can move between threads.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A unit of blocking work.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// Runs blocking (CPU-bound) work off the async threads.
pub trait Worker: Send + Sync {
    /// Runs `job`; resolves when it has run, with an error when it could not (the call ended
    /// before it started: [`crate::ErrorKind::Cancelled`]; it panicked: internal).
    fn run(&self, job: Job) -> BoxFuture<'static, Result<(), Error>>;
}

/// Runs work on the calling thread at once: for tools, tests and benches.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inline;

impl Worker for Inline {
    fn run(&self, job: Job) -> BoxFuture<'static, Result<(), Error>> {
        job();
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Runs work at once like [`Inline`] and counts the jobs: the declared test double for
/// checking that blocking work goes to the worker rather than the async task.
#[derive(Debug, Default)]
pub struct CountingInline(AtomicUsize);

impl CountingInline {
    /// Jobs run so far.
    pub fn jobs(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Worker for CountingInline {
    fn run(&self, job: Job) -> BoxFuture<'static, Result<(), Error>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Inline.run(job)
    }
}

/// Runs `work` on `worker` and returns what it returned.
pub async fn on_worker<T: Send + 'static>(
    worker: &dyn Worker,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Error> {
    let slot = Arc::new(Mutex::new(None));
    let filled = Arc::clone(&slot);
    worker
        .run(Box::new(move || {
            let value = work();
            *filled.lock().unwrap_or_else(|p| p.into_inner()) = Some(value);
        }))
        .await?;
    let value = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
    value.ok_or_else(|| Error::internal("blocking work returned nothing"))
}

/// Runs fallible `work` on `worker`; its domain error becomes an [`Error`] of the kind it
/// classifies as.
pub async fn on_worker_classified<T: Send + 'static, E: Classify + Send + 'static>(
    worker: &dyn Worker,
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, Error> {
    on_worker(worker, work)
        .await?
        .map_err(|e| Error::from_classified(&e))
}

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on this thread (parking while it waits): for tools and tests
/// that call async code without an async runtime. Futures that need one (the model runtime's
/// `LoadedModel`) must run inside it instead.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    loop {
        match future.as_mut().poll(&mut context) {
            Poll::Ready(output) => return output,
            Poll::Pending => std::thread::park(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_work_returns_its_value() {
        let n = block_on(on_worker(&Inline, || 6 * 7)).unwrap();
        assert_eq!(n, 42);
    }

    #[test]
    fn block_on_waits_for_a_wake_from_another_thread() {
        /// Ready once another thread has set the value and woken the task.
        struct Later(Arc<Mutex<Option<u32>>>, bool);
        impl Future for Later {
            type Output = u32;
            fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
                if let Some(v) = *self.0.lock().unwrap() {
                    return Poll::Ready(v);
                }
                if !self.1 {
                    self.1 = true;
                    let (slot, waker) = (Arc::clone(&self.0), cx.waker().clone());
                    std::thread::spawn(move || {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        *slot.lock().unwrap() = Some(7);
                        waker.wake();
                    });
                }
                Poll::Pending
            }
        }
        assert_eq!(block_on(Later(Arc::default(), false)), 7);
    }
}
