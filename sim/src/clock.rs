//! Skewed member clocks: the nemesis makes a member's clock run faster or slower than the
//! simulated time (a VM's clock drifting or being throttled). The member's lease expiry and
//! its Raft ticks follow its own clock (`faultline_node::Clock`); everything else (network,
//! disks, clients) keeps the simulator's time.

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
}

impl SkewClock {
    pub fn new() -> SkewClock {
        SkewClock {
            start: madsim::time::Instant::now(),
            state: Mutex::new(Anchor {
                sim_us: 0,
                local_us: 0,
                rate_percent: 100,
            }),
        }
    }

    fn sim_us(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn local_us(anchor: Anchor, sim_us: u64) -> u64 {
        anchor.local_us + (sim_us - anchor.sim_us) * u64::from(anchor.rate_percent) / 100
    }

    /// From now on the clock runs at `rate_percent` of simulated time.
    pub fn set_rate(&self, rate_percent: u32) {
        assert!(rate_percent > 0, "a clock must move forward");
        let sim_us = self.sim_us();
        let mut anchor = self.state.lock().expect("clock lock");
        *anchor = Anchor {
            sim_us,
            local_us: Self::local_us(*anchor, sim_us),
            rate_percent,
        };
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
}
