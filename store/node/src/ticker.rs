//! `Ticker`: the member's tick timer, `tokio::time::Interval`'s behaviour (the same first
//! deadline, `Burst` after a late tick, `reset`), without re-arming a timer it already armed.
//!
//! The member loop polls its ticker every time an input wakes it. A pending madsim `Sleep`
//! cannot be cancelled, and every poll of one adds another timer (a boxed callback in the
//! runtime's heap that later wakes the task for nothing): half of a seed's timers were these
//! duplicates. The ticker polls its sleep once per deadline; later polls before the deadline
//! return `Pending` at once. The timer it armed wakes the same task (only the member's loop
//! polls it), at the same instant, so the run's schedule is the same.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

pub(crate) struct Ticker {
    sleep: Pin<Box<Sleep>>,
    period: Duration,
    /// The sleep was polled (and armed a timer) for its current deadline.
    armed: bool,
}

impl Ticker {
    /// `tokio::time::interval_at(start, period)`; `interval(period)` is `start` = now.
    pub(crate) fn new(start: Instant, period: Duration) -> Ticker {
        assert!(!period.is_zero(), "a ticker's period must be non-zero");
        Ticker {
            sleep: Box::pin(tokio::time::sleep_until(start)),
            period,
            armed: false,
        }
    }

    /// `Interval::reset`: the next tick one period from now.
    pub(crate) fn reset(&mut self) {
        self.set_deadline(Instant::now() + self.period);
    }

    /// `Interval::tick`.
    pub(crate) async fn tick(&mut self) -> Instant {
        std::future::poll_fn(|cx| self.poll_tick(cx)).await
    }

    fn set_deadline(&mut self, deadline: Instant) {
        self.sleep.as_mut().reset(deadline);
        self.armed = false;
    }

    fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        let deadline = self.sleep.deadline();
        if self.armed && Instant::now() < deadline {
            // The timer armed for this deadline will wake this task.
            return Poll::Pending;
        }
        if self.sleep.as_mut().poll(cx).is_pending() {
            self.armed = true;
            return Poll::Pending;
        }
        // `Interval::poll_tick` with `MissedTickBehavior::Burst`, tokio's default: the next
        // deadline is one period after this one, whether or not this tick was late.
        self.set_deadline(deadline + self.period);
        Poll::Ready(deadline)
    }
}
