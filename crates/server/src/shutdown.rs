//! Clean shutdown: one signal seen by every task, and a way to wait until they have all ended.
//!
//! The same shape as tokio's mini-redis: a `watch` channel announces shutdown, and every task
//! holds a clone of an `mpsc` sender that it drops when it ends, so the receiver learns when the
//! last task is gone.

use std::time::Duration;

use tokio::sync::{mpsc, watch};

/// Starts shutdown and waits for the tasks to finish.
#[derive(Debug)]
pub struct ShutdownController {
    notify: watch::Sender<bool>,
    done_tx: Option<mpsc::Sender<()>>,
    done_rx: mpsc::Receiver<()>,
}

/// A task's view of the shutdown signal. While any clone lives, shutdown waits for it.
#[derive(Debug, Clone)]
pub struct Shutdown {
    notify: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
}

impl ShutdownController {
    pub fn new() -> ShutdownController {
        let (notify, _) = watch::channel(false);
        let (done_tx, done_rx) = mpsc::channel(1);
        ShutdownController { notify, done_tx: Some(done_tx), done_rx }
    }

    /// A handle for a new task. After [`ShutdownController::shutdown`] it is already signalled.
    pub fn handle(&self) -> Shutdown {
        let alive = self.done_tx.clone().unwrap_or_else(|| mpsc::channel(1).0);
        Shutdown { notify: self.notify.subscribe(), _alive: alive }
    }

    /// Signals every task and waits up to `grace` for all of them to end.
    /// Returns false when some task was still running at the deadline.
    pub async fn shutdown(mut self, grace: Duration) -> bool {
        self.notify.send_replace(true);
        self.done_tx = None;
        tokio::time::timeout(grace, self.done_rx.recv()).await.is_ok()
    }
}

impl Default for ShutdownController {
    fn default() -> Self {
        ShutdownController::new()
    }
}

/// A [`Shutdown`] that does not hold shutdown up: for something that makes tasks later (the
/// dialer of outgoing connections), each of which gets a handle of its own.
#[derive(Debug, Clone)]
pub struct WeakShutdown {
    notify: watch::Receiver<bool>,
    alive: mpsc::WeakSender<()>,
}

impl WeakShutdown {
    /// A handle for a new task; `None` once shutdown has been signalled or is over.
    pub fn upgrade(&self) -> Option<Shutdown> {
        if *self.notify.borrow() {
            return None;
        }
        Some(Shutdown { notify: self.notify.clone(), _alive: self.alive.upgrade()? })
    }
}

impl Shutdown {
    /// This handle, without holding shutdown up.
    pub fn downgrade(&self) -> WeakShutdown {
        WeakShutdown { notify: self.notify.clone(), alive: self._alive.downgrade() }
    }

    /// Completes once shutdown has been signalled (at once if it already was). Cancel safe.
    pub async fn wait(&mut self) {
        // An error means the controller is gone, which is shutdown too.
        let _ = self.notify.wait_for(|stop| *stop).await;
    }

    /// True once shutdown has been signalled.
    pub fn is_signalled(&self) -> bool {
        *self.notify.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_for_tasks_then_returns() {
        let controller = ShutdownController::new();
        let mut handle = controller.handle();
        let task = tokio::spawn(async move {
            handle.wait().await;
        });
        assert!(controller.shutdown(Duration::from_secs(5)).await);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_weak_handle_does_not_hold_shutdown_up() {
        let controller = ShutdownController::new();
        let weak = controller.handle().downgrade();
        let task = weak.upgrade().expect("before shutdown");
        let running = tokio::spawn(async move {
            let mut task = task;
            task.wait().await;
        });
        assert!(controller.shutdown(Duration::from_secs(5)).await);
        running.await.unwrap();
        assert!(weak.upgrade().is_none(), "no new task after shutdown");
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_grace() {
        let controller = ShutdownController::new();
        let stuck = controller.handle();
        assert!(!controller.shutdown(Duration::from_secs(1)).await);
        drop(stuck);
    }
}
