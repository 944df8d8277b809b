//! The blocking bridge: a thread of its own running a one-thread tokio runtime, on which
//! every etcd call runs.
//!
//! The store's interface ([`KeySpace`](governance::store::engine::KeySpace)) is
//! blocking, and it is called both from plain threads and from the node's tokio
//! workers. `Handle::block_on` would panic on a worker, and waiting on a task of the
//! caller's own runtime could deadlock it, so the client lives on a runtime nobody else
//! blocks: a call is spawned there and its answer waited for on a std channel.

use std::future::Future;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

/// The runtime thread. Dropping it stops the runtime and joins the thread.
#[derive(Debug)]
pub(crate) struct Bridge {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Bridge {
    /// Starts the thread and its runtime.
    pub(crate) fn start() -> std::io::Result<Bridge> {
        let runtime = Builder::new_current_thread().enable_all().build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("etcd-client".into())
            .spawn(move || {
                // Runs every spawned call until the bridge is dropped.
                let _ = runtime.block_on(stopped);
            })?;
        Ok(Bridge {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The runtime's handle, to spawn background tasks (the lease's keep-alive).
    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Runs `future` on the bridge's runtime and waits for it, at most `wait`; `None`
    /// if it did not finish by then (it is then cancelled at its next await).
    pub(crate) fn block<T, F>(&self, wait: Duration, future: F) -> Option<T>
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        let (answer, answered) = mpsc::sync_channel(1);
        let task = self.handle.spawn(async move {
            let _ = answer.send(future.await);
        });
        let outcome = answered.recv_timeout(wait).ok();
        if outcome.is_none() {
            task.abort();
        }
        outcome
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            // Never join from the bridge's own thread (a task dropping the last handle).
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_runs_on_the_bridge_and_a_slow_one_times_out() {
        let bridge = Bridge::start().expect("runtime");
        assert_eq!(bridge.block(Duration::from_secs(5), async { 7 }), Some(7));
        let slow = bridge.block(Duration::from_millis(50), async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            1
        });
        assert_eq!(slow, None);
        // The bridge still answers after a call timed out.
        assert_eq!(bridge.block(Duration::from_secs(5), async { 8 }), Some(8));
    }

    #[test]
    fn blocking_from_inside_another_runtime_does_not_panic() {
        let bridge = Bridge::start().expect("runtime");
        let outer = Builder::new_current_thread().build().expect("runtime");
        let got = outer.block_on(async { bridge.block(Duration::from_secs(5), async { 9 }) });
        assert_eq!(got, Some(9));
    }
}
