//! The bounded inference pool: a fixed set of OS threads that run detection
//! and embedding, fed by a queue of fixed length. When the queue is full a
//! job is refused at once (the caller answers 503 with Retry-After) instead
//! of waiting in memory, so load beyond capacity costs no memory and the
//! async runtime never runs inference itself.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread;

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// The queue was full: try again later.
#[derive(Debug)]
pub struct Busy;

pub struct Pool {
    sender: Mutex<Option<SyncSender<Job>>>,
    waiting: Arc<AtomicUsize>,
    pub workers: usize,
    pub capacity: usize,
}

impl Pool {
    /// `workers` threads; at most `capacity` jobs waiting for one.
    pub fn new(workers: usize, capacity: usize) -> Pool {
        let (sender, receiver) = sync_channel::<Job>(capacity);
        let receiver = Arc::new(Mutex::new(receiver));
        let waiting = Arc::new(AtomicUsize::new(0));
        for i in 0..workers.max(1) {
            let receiver = Arc::clone(&receiver);
            let waiting = Arc::clone(&waiting);
            let spawned = thread::Builder::new().name(format!("faces-worker-{i}")).spawn(move || loop {
                // The lock is held only while taking a job, not while running it.
                let job = match receiver.lock() {
                    Ok(r) => r.recv(),
                    Err(_) => return,
                };
                let Ok(job) = job else { return };
                waiting.fetch_sub(1, Ordering::Relaxed);
                job();
            });
            if spawned.is_err() {
                break;
            }
        }
        Pool { sender: Mutex::new(Some(sender)), waiting, workers: workers.max(1), capacity }
    }

    /// Jobs queued and not yet started.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Queues `f`; its result arrives on the receiver. Refused when the queue is full.
    pub fn submit<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<oneshot::Receiver<T>, Busy> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        let guard = self.sender.lock().map_err(|_| Busy)?;
        let Some(sender) = guard.as_ref() else { return Err(Busy) };
        self.waiting.fetch_add(1, Ordering::Relaxed);
        match sender.try_send(job) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                Err(Busy)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    #[test]
    fn a_full_queue_refuses_instead_of_growing() {
        let pool = Pool::new(1, 2);
        let (release, wait) = channel::<()>();
        let wait = Arc::new(Mutex::new(wait));
        let hold = |w: Arc<Mutex<std::sync::mpsc::Receiver<()>>>| move || w.lock().map(|r| r.recv().is_ok()).unwrap_or(false);
        let first = pool.submit(hold(Arc::clone(&wait))).expect("the worker takes the first job");
        // Let the worker take it, then fill the two queue places.
        while pool.waiting() > 0 {
            thread::yield_now();
        }
        let queued: Vec<_> = (0..2).map(|_| pool.submit(hold(Arc::clone(&wait))).expect("queue has room")).collect();
        assert!(pool.submit(|| true).is_err(), "a third waiting job is refused");
        for _ in 0..3 {
            release.send(()).unwrap();
        }
        assert!(first.blocking_recv().unwrap());
        for rx in queued {
            assert!(rx.blocking_recv().unwrap());
        }
        assert!(pool.submit(|| true).is_ok(), "room again once the jobs ran");
    }
}
