//! A test server on a thread of its own with its own tokio runtime, until it is stopped.
//! Stopping drops the runtime, which closes the listener and every connection and stream at
//! once, as a crashed pod or control plane would.

use std::future::Future;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

pub struct ServerThread {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    /// Runs the future that `serve` makes (inside the runtime, so that it can take over
    /// listeners) until it ends or the server is stopped.
    pub fn spawn<F>(serve: impl FnOnce() -> F + Send + 'static) -> ServerThread
    where
        F: Future<Output = ()>,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                tokio::select! {
                    _ = serve() => {}
                    _ = stopped => {}
                }
            });
        });
        ServerThread {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Stops it: the listener and every connection are closed when this returns.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let joined = thread.join();
            // A test that is already failing keeps its own message.
            if joined.is_err() && !std::thread::panicking() {
                panic!("a test server's thread panicked");
            }
        }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        self.stop();
    }
}
