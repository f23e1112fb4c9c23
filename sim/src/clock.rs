//! Skewed and jumping member clocks: the nemesis makes a member's clock run faster or slower
//! than the simulated time (a VM's clock drifting or being throttled), or jump (a VM resumed
//! or migrated, a clock source corrected). The member's lease expiry and its Raft ticks
//! follow its own clock (`faultline_node::Clock`); everything else (network, disks, clients)
//! keeps the simulator's time.
//!
//! The member's clock is monotonic, as etcd's lease expiry is (Go's `time.Now` carries a
//! monotonic reading, and the lessor only subtracts such readings), so a step of the wall
//! clock would not reach it at all. What does reach a monotonic clock: a forward leap (the
//! guest's clock catching up after the host stalled it), and a source that stepped back,
//! which a monotonic clock shows as standing still until the source has caught up.

use std::sync::Mutex;

use faultline_node::Clock;

/// One member's clock. It outlives the member's incarnations, as a machine's clock outlives
/// a process, and never goes backwards: a rate change re-anchors it at the current reading.
pub struct SkewClock {
    start: madsim::time::Instant,
    state: Mutex<Anchor>,
}

#[derive(Clone, Copy)]
struct Anchor {
    sim_us: u64,
    local_us: u64,
    rate_percent: u32,
    /// Local time the clock still stands still for, from the anchor (a step back).
    standstill_us: u64,
    /// `Clock::jumped_ms` in microseconds: forward jumps minus standstills.
    jumped_us: i64,
}

impl SkewClock {
    pub fn new() -> SkewClock {
        SkewClock {
            start: madsim::time::Instant::now(),
            state: Mutex::new(Anchor {
                sim_us: 0,
                local_us: 0,
                rate_percent: 100,
                standstill_us: 0,
                jumped_us: 0,
            }),
        }
    }

    fn sim_us(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Local time that passed since the anchor at its rate, before the standstill is taken.
    fn elapsed_us(anchor: Anchor, sim_us: u64) -> u64 {
        (sim_us - anchor.sim_us) * u64::from(anchor.rate_percent) / 100
    }

    fn local_us(anchor: Anchor, sim_us: u64) -> u64 {
        anchor.local_us + Self::elapsed_us(anchor, sim_us).saturating_sub(anchor.standstill_us)
    }

    /// The anchor moved to now, keeping the reading and what is left of a standstill.
    fn reanchored(anchor: Anchor, sim_us: u64) -> Anchor {
        Anchor {
            sim_us,
            local_us: Self::local_us(anchor, sim_us),
            standstill_us: anchor
                .standstill_us
                .saturating_sub(Self::elapsed_us(anchor, sim_us)),
            ..anchor
        }
    }

    /// From now on the clock runs at `rate_percent` of simulated time.
    pub fn set_rate(&self, rate_percent: u32) {
        assert!(rate_percent > 0, "a clock must move forward");
        let sim_us = self.sim_us();
        let mut anchor = self.state.lock().expect("clock lock");
        *anchor = Anchor {
            rate_percent,
            ..Self::reanchored(*anchor, sim_us)
        };
    }

    /// The clock jumps by `jump_ms` of its own time: forward at once, or (negative) back,
    /// which the monotonic clock shows as standing still until it would have caught up.
    pub fn jump(&self, jump_ms: i64) {
        let sim_us = self.sim_us();
        let mut anchor = self.state.lock().expect("clock lock");
        let mut next = Self::reanchored(*anchor, sim_us);
        let jump_us = jump_ms.saturating_mul(1000);
        let magnitude_us = jump_us.unsigned_abs();
        if jump_us >= 0 {
            next.local_us += magnitude_us;
        } else {
            next.standstill_us += magnitude_us;
        }
        next.jumped_us = next.jumped_us.saturating_add(jump_us);
        *anchor = next;
    }

    /// A standstill ends now, whatever is left of it (the window of the step back closed,
    /// or the run heals); what it did not use is given back to `jumped_ms`.
    pub fn end_standstill(&self) {
        let sim_us = self.sim_us();
        let mut anchor = self.state.lock().expect("clock lock");
        if anchor.standstill_us == 0 {
            return;
        }
        let mut next = Self::reanchored(*anchor, sim_us);
        let left_us = i64::try_from(next.standstill_us).unwrap_or(i64::MAX);
        next.jumped_us = next.jumped_us.saturating_add(left_us);
        next.standstill_us = 0;
        *anchor = next;
    }
}

impl Default for SkewClock {
    fn default() -> Self {
        SkewClock::new()
    }
}

impl Clock for SkewClock {
    fn now_ms(&self) -> u64 {
        let anchor = *self.state.lock().expect("clock lock");
        Self::local_us(anchor, self.sim_us()) / 1000
    }

    fn rate_percent(&self) -> u32 {
        self.state.lock().expect("clock lock").rate_percent
    }

    fn jumped_ms(&self) -> i64 {
        self.state.lock().expect("clock lock").jumped_us / 1000
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_forward_jump_moves_the_reading_and_the_tally() {
        madsim::runtime::Runtime::new().block_on(async {
            let clock = SkewClock::new();
            madsim::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(clock.now_ms(), 100);
            clock.jump(2000);
            assert_eq!((clock.now_ms(), clock.jumped_ms()), (2100, 2000));
            clock.end_standstill(); // nothing to end
            madsim::time::sleep(Duration::from_millis(50)).await;
            assert_eq!((clock.now_ms(), clock.jumped_ms()), (2150, 2000));
        });
    }

    #[test]
    fn a_step_back_stands_still_until_caught_up_or_ended() {
        madsim::runtime::Runtime::new().block_on(async {
            let clock = SkewClock::new();
            madsim::time::sleep(Duration::from_millis(100)).await;
            clock.jump(-300);
            assert_eq!((clock.now_ms(), clock.jumped_ms()), (100, -300));
            madsim::time::sleep(Duration::from_millis(200)).await;
            assert_eq!(clock.now_ms(), 100, "still standing");
            // At half speed the rest (100 ms of its own time) takes 200 ms.
            clock.set_rate(50);
            madsim::time::sleep(Duration::from_millis(150)).await;
            assert_eq!(clock.now_ms(), 100);
            madsim::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(clock.now_ms(), 125, "caught up, then 50 ms at half speed");
            clock.set_rate(100);
            clock.jump(-1000);
            madsim::time::sleep(Duration::from_millis(400)).await;
            clock.end_standstill();
            // 600 ms of the standstill unused: given back.
            assert_eq!((clock.now_ms(), clock.jumped_ms()), (125, -700));
            madsim::time::sleep(Duration::from_millis(10)).await;
            assert_eq!(clock.now_ms(), 135);
        });
    }
}
