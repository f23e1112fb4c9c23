//! Text for the page: escaping, clipping, times and axis ticks.

use crate::linearizability::TimeUnit;

/// Escape text for HTML element content and attribute values. Control characters (other than
/// tab and newline) become U+FFFD: they are not allowed in HTML text.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// At most `max_chars` characters of `text`, with an ellipsis when cut.
pub(super) fn clip(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

pub(super) fn fmt_time(unit: TimeUnit, t: Option<u64>) -> String {
    match (unit, t) {
        (_, None) => "never".to_string(),
        (TimeUnit::Nanoseconds, Some(t)) => format!("{:.3} ms", t as f64 / 1e6),
        (TimeUnit::Position, Some(t)) => format!("line {t}"),
    }
}

pub(super) fn fmt_axis(unit: TimeUnit, t: u64, step: u64) -> String {
    match unit {
        TimeUnit::Nanoseconds if step >= 1_000_000 => format!("{} ms", t / 1_000_000),
        TimeUnit::Nanoseconds => format!("{:.3} ms", t as f64 / 1e6),
        TimeUnit::Position => format!("{t}"),
    }
}

/// A round tick step (1, 2 or 5 times a power of ten) giving about `target` ticks over `span`.
pub(super) fn tick_step(span: u64, target: u64) -> u64 {
    let raw = (span / target.max(1)).max(1);
    let mut power = 1u64;
    while power.saturating_mul(10) <= raw {
        power *= 10;
    }
    for m in [1, 2, 5, 10] {
        if power.saturating_mul(m) >= raw {
            return power.saturating_mul(m);
        }
    }
    power.saturating_mul(10)
}
