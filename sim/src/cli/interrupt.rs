//! Ctrl-C and SIGTERM during a campaign: the handler only records the signal; the fuzz
//! workers check the flag between seeds, finish the seed they run, and the summary of what
//! ran is printed as usual. Found seeds are written the moment they are found, so none is lost.

use std::sync::atomic::{AtomicI32, Ordering};

/// The signal that asked us to stop, or 0.
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);

#[cfg(unix)]
extern "C" fn record_signal(signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP_SIGNAL.store(signal, Ordering::SeqCst);
}

/// Route SIGINT and SIGTERM to the flag (called once, before the workers start).
pub(crate) fn install() {
    #[cfg(unix)]
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores into an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(signal, record_signal as *const () as libc::sighandler_t);
        }
    }
}

/// The signal received so far, if any.
pub(crate) fn received() -> Option<i32> {
    match STOP_SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// The name of a stop signal, for the summary.
pub(crate) fn signal_name(signal: i32) -> &'static str {
    #[cfg(unix)]
    {
        if signal == libc::SIGINT {
            return "SIGINT";
        }
        if signal == libc::SIGTERM {
            return "SIGTERM";
        }
    }
    let _ = signal;
    "a signal"
}
