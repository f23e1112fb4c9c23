//! Ticks owed by a member's clock jumps (`Clock::jumped_ms`).
//!
//! The member's ticker runs on the runtime's time at its clock's rate; a jump of its clock
//! does not move that ticker, so the loop settles the difference here. A forward jump is
//! ticks that all came due at once: they run in a burst, as tokio's `Interval` (whose default
//! `MissedTickBehavior` is `Burst`) catches up after the monotonic clock leapt. A step back is
//! seen through a monotonic clock as a standstill (`Clock::now_ms` never goes back), during
//! which no tick comes due: the ticker's ticks are skipped until the debt is paid.

/// What this incarnation has settled of its clock's jumps.
pub(crate) struct JumpTicks {
    tick_interval_ms: i64,
    /// `Clock::jumped_ms` as last seen.
    seen_ms: i64,
    /// Jumped milliseconds not yet turned into ticks: positive, ticks to burst; negative,
    /// ticker ticks to skip.
    owed_ms: i64,
}

impl JumpTicks {
    /// Jumps before the incarnation started are not its to settle.
    pub(crate) fn new(tick_interval_ms: u64, jumped_ms: i64) -> JumpTicks {
        assert!(tick_interval_ms > 0, "a tick takes time");
        JumpTicks {
            tick_interval_ms: i64::try_from(tick_interval_ms).unwrap_or(i64::MAX),
            seen_ms: jumped_ms,
            owed_ms: 0,
        }
    }

    /// The clock now shows `jumped_ms` of jumps in all: how many ticks to run at once.
    pub(crate) fn burst(&mut self, jumped_ms: i64) -> u64 {
        self.owed_ms = self.owed_ms.saturating_add(jumped_ms - self.seen_ms);
        self.seen_ms = jumped_ms;
        if self.owed_ms < self.tick_interval_ms {
            return 0;
        }
        let ticks = self.owed_ms / self.tick_interval_ms;
        self.owed_ms -= ticks * self.tick_interval_ms;
        assert!(self.owed_ms >= 0 && self.owed_ms < self.tick_interval_ms);
        u64::try_from(ticks).unwrap_or(0)
    }

    /// The ticker ticked: does the member tick, or is the tick skipped for a standstill?
    pub(crate) fn ticker_ticked(&mut self) -> bool {
        if self.owed_ms >= 0 {
            return true;
        }
        self.owed_ms += self.tick_interval_ms;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::JumpTicks;

    #[test]
    fn a_forward_jump_bursts_its_ticks_and_keeps_the_remainder() {
        let mut ticks = JumpTicks::new(10, 500);
        assert_eq!(ticks.burst(500), 0, "jumps before the start are settled");
        assert_eq!(ticks.burst(535), 3);
        assert_eq!(ticks.burst(540), 1, "5 left over + 5");
        assert!(ticks.ticker_ticked());
    }

    #[test]
    fn a_step_back_skips_ticks_until_paid() {
        let mut ticks = JumpTicks::new(10, 0);
        assert_eq!(ticks.burst(-25), 0);
        let skipped = (0..5).filter(|_| !ticks.ticker_ticked()).count();
        assert_eq!(skipped, 3, "25 ms of standstill, rounded up to ticks");
        // A standstill cut short gives back what it did not use.
        assert_eq!(ticks.burst(-45), 0);
        assert!(!ticks.ticker_ticked());
        assert_eq!(ticks.burst(-5), 3);
        assert!(ticks.ticker_ticked());
    }
}
