//! Cooperative interruption of long coding work.
//!
//! A host (the gRPC services) runs a request's work on a worker thread with [`run_with_flag`];
//! when the request ends early (deadline, cancelled client, shutdown) it sets the flag, and
//! the codecs, which call [`check`] between sections, slices and channels, stop with
//! [`EntropyError::Interrupted`] instead of finishing work nobody will read. Without a flag
//! (tools, tests) [`check`] never fails.

use std::{
    cell::RefCell,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use crate::error::{EntropyError, Result};

thread_local! {
    static FLAG: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Runs `work` on this thread with `flag` as its interruption flag (restoring the previous
/// one afterwards, also on panic).
pub fn run_with_flag<T>(flag: Arc<AtomicBool>, work: impl FnOnce() -> T) -> T {
    struct Restore(Option<Arc<AtomicBool>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            FLAG.with(|f| *f.borrow_mut() = self.0.take());
        }
    }
    let _restore = Restore(FLAG.with(|f| f.borrow_mut().replace(flag)));
    work()
}

/// Whether the work running on this thread has been asked to stop.
pub fn is_interrupted() -> bool {
    FLAG.with(|f| {
        f.borrow()
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::Relaxed))
    })
}

/// `Err(Interrupted)` once the work running on this thread has been asked to stop.
pub fn check() -> Result<()> {
    if is_interrupted() {
        Err(EntropyError::Interrupted)
    } else {
        Ok(())
    }
}

/// This thread's interruption state, to hand to threads the work fans out to (a rayon pool
/// does not inherit the thread-local flag).
#[derive(Debug, Clone, Default)]
pub struct Handle(Option<Arc<AtomicBool>>);

impl Handle {
    /// Runs `work` on this thread under the handle's flag, so that [`check`] sees it (for
    /// work fanned out to threads of its own).
    pub fn run<T>(&self, work: impl FnOnce() -> T) -> T {
        match &self.0 {
            Some(flag) => run_with_flag(Arc::clone(flag), work),
            None => work(),
        }
    }

    /// `Err(Interrupted)` once the work the handle was taken in has been asked to stop.
    pub fn check(&self) -> Result<()> {
        match &self.0 {
            Some(flag) if flag.load(Ordering::Relaxed) => Err(EntropyError::Interrupted),
            _ => Ok(()),
        }
    }
}

/// The [`Handle`] of the work running on this thread.
pub fn handle() -> Handle {
    Handle(FLAG.with(|f| f.borrow().clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_carries_the_flag_to_other_threads() {
        let flag = Arc::new(AtomicBool::new(false));
        let handle = run_with_flag(Arc::clone(&flag), handle);
        let check = || std::thread::scope(|s| s.spawn(|| handle.check()).join().unwrap());
        assert!(check().is_ok());
        flag.store(true, Ordering::Relaxed);
        assert!(matches!(check(), Err(EntropyError::Interrupted)));
        assert!(super::handle().check().is_ok(), "no flag outside the scope");
    }

    #[test]
    fn a_handle_installs_the_flag_on_the_thread_it_runs_work_on() {
        let flag = Arc::new(AtomicBool::new(true));
        let handle = run_with_flag(Arc::clone(&flag), handle);
        let checked = std::thread::scope(|s| s.spawn(|| handle.run(check)).join().unwrap());
        assert!(matches!(checked, Err(EntropyError::Interrupted)));
        assert!(
            Handle::default().run(check).is_ok(),
            "no flag, no interruption"
        );
    }

    #[test]
    fn the_flag_applies_inside_its_scope_only() {
        assert!(check().is_ok());
        let flag = Arc::new(AtomicBool::new(false));
        run_with_flag(Arc::clone(&flag), || {
            assert!(check().is_ok());
            flag.store(true, Ordering::Relaxed);
            assert!(matches!(check(), Err(EntropyError::Interrupted)));
        });
        assert!(check().is_ok(), "the flag is removed after its scope");
    }
}
