//! HTTP/2 PING keep-alive on served connections: a ping every interval, and the
//! connection closed when its PONG does not come within the timeout.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use h2::{Ping, PingPong};
use tokio::time::{Instant, Sleep, sleep};

use crate::config::H2KeepAlive;

/// hyper's default wait for a PONG.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// The pinger of one connection.
#[derive(Debug)]
pub struct KeepAlive {
    pings: PingPong,
    interval: Duration,
    timeout: Duration,
    timer: Pin<Box<Sleep>>,
    awaiting_pong: bool,
}

impl KeepAlive {
    /// A pinger when the settings ask for one.
    pub fn new(settings: H2KeepAlive, pings: Option<PingPong>) -> Option<KeepAlive> {
        let interval = settings.interval?;
        Some(KeepAlive {
            pings: pings?,
            interval,
            timeout: settings.timeout.unwrap_or(DEFAULT_TIMEOUT),
            timer: Box::pin(sleep(interval)),
            awaiting_pong: false,
        })
    }

    /// Sends pings and reads pongs; ready with an error when the peer stopped answering.
    pub fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), &'static str>> {
        loop {
            if self.awaiting_pong {
                match self.pings.poll_pong(cx) {
                    Poll::Ready(Ok(_)) => {
                        self.awaiting_pong = false;
                        self.timer.as_mut().reset(Instant::now() + self.interval);
                    }
                    Poll::Ready(Err(_)) => return Poll::Ready(Err("connection closed")),
                    Poll::Pending => {}
                }
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if self.awaiting_pong {
                return Poll::Ready(Err("keep-alive timed out"));
            }
            if self.pings.send_ping(Ping::opaque()).is_err() {
                return Poll::Ready(Err("connection closed"));
            }
            self.awaiting_pong = true;
            self.timer.as_mut().reset(Instant::now() + self.timeout);
        }
    }
}
