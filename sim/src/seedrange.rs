//! The seeds of a fuzz campaign, lazily: a start, a stride and an optional end, so that
//! `0..18446744073709551615` costs no memory, and a shard `I/N` is the same range with a
//! larger stride (shards are disjoint and together are exactly the range).

use std::time::Duration;

/// Seeds `start, start + step, start + 2 step, …` below `end` (exclusive); without an end, up
/// to `u64::MAX` inclusive (a time budget ends such a campaign).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange {
    pub start: u64,
    pub end: Option<u64>,
    pub step: u64,
}

/// One of `count` disjoint parts of a campaign (`--shard index/count`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl SeedRange {
    /// The half-open range `start..end`.
    pub fn new(start: u64, end: u64) -> SeedRange {
        assert!(start < end, "an empty seed range");
        SeedRange {
            start,
            end: Some(end),
            step: 1,
        }
    }

    /// Every seed from `start` on.
    pub fn from(start: u64) -> SeedRange {
        SeedRange {
            start,
            end: None,
            step: 1,
        }
    }

    /// The `i`-th seed (0-based), or `None` past the end. Never overflows.
    pub fn nth(&self, i: u64) -> Option<u64> {
        let seed = self.start.checked_add(i.checked_mul(self.step)?)?;
        match self.end {
            Some(end) if seed >= end => None,
            _ => Some(seed),
        }
    }

    /// How many seeds the range holds; `None` when it has no end (or the count exceeds u64).
    pub fn len(&self) -> Option<u64> {
        let end = self.end?;
        if self.start >= end {
            return Some(0);
        }
        Some((end - self.start - 1) / self.step + 1)
    }

    /// True when the range holds no seed.
    pub fn is_empty(&self) -> bool {
        self.nth(0).is_none()
    }

    /// The part of this range that shard `shard` runs: every `count`-th seed from the
    /// `index`-th on. The shards `0/N … N-1/N` are disjoint and their union is the range.
    pub fn shard(self, shard: Shard) -> SeedRange {
        assert!(shard.index < shard.count, "shard index out of range");
        let start = self.nth(shard.index);
        SeedRange {
            // An empty shard (fewer seeds than shards): start at the end.
            start: start.unwrap_or(self.end.unwrap_or(u64::MAX)),
            end: if start.is_none() {
                Some(self.end.unwrap_or(u64::MAX))
            } else {
                self.end
            },
            step: self.step.saturating_mul(shard.count),
        }
    }

    /// The range in words, e.g. `0..200` or `7.. step 4`.
    pub fn describe(&self) -> String {
        let end = self.end.map(|e| e.to_string()).unwrap_or_default();
        if self.step == 1 {
            format!("{}..{end}", self.start)
        } else {
            format!("{}..{end} step {}", self.start, self.step)
        }
    }
}

/// `A..B`: a non-empty half-open range of seeds.
pub fn parse_seed_range(text: &str) -> Result<(u64, u64), String> {
    let (a, b) = text
        .split_once("..")
        .ok_or_else(|| format!("{text:?} is not a range A..B (for example 0..200)"))?;
    let a: u64 = a
        .parse()
        .map_err(|e| format!("start {a:?} of {text:?} is not a seed: {e}"))?;
    let b: u64 = b
        .parse()
        .map_err(|e| format!("end {b:?} of {text:?} is not a seed: {e}"))?;
    if a >= b {
        return Err(format!(
            "range {text:?} is empty: the end must exceed the start"
        ));
    }
    Ok((a, b))
}

/// `I/N` with `I < N`.
pub fn parse_shard(text: &str) -> Result<Shard, String> {
    let (i, n) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not a shard I/N (for example 0/4)"))?;
    let index: u64 = i
        .parse()
        .map_err(|e| format!("shard index {i:?} of {text:?} is not a number: {e}"))?;
    let count: u64 = n
        .parse()
        .map_err(|e| format!("shard count {n:?} of {text:?} is not a number: {e}"))?;
    if count == 0 {
        return Err(format!("shard {text:?}: the count must be at least 1"));
    }
    if index >= count {
        return Err(format!(
            "shard {text:?}: the index must be below the count (0/{count} … {}/{count})",
            count - 1
        ));
    }
    Ok(Shard { index, count })
}

/// A duration: a number with a unit `s`, `m` or `h` (e.g. `90s`, `10m`, `2h`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} has no unit: write e.g. 60s, 10m or 2h"))?;
    let (number, unit) = text.split_at(split);
    let amount: u64 = number
        .parse()
        .map_err(|e| format!("{text:?}: {number:?} is not a number: {e}"))?;
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (use s, m or h)")),
    };
    let seconds = amount
        .checked_mul(seconds_per_unit)
        .ok_or_else(|| format!("{text:?} is too long"))?;
    if seconds == 0 {
        return Err(format!("{text:?}: the time budget must be positive"));
    }
    Ok(Duration::from_secs(seconds))
}

/// A worker count of at least 1.
pub fn parse_workers(text: &str) -> Result<usize, String> {
    let workers: usize = text
        .parse()
        .map_err(|e| format!("{text:?} is not a number of workers: {e}"))?;
    if workers == 0 {
        return Err("at least 1 worker is needed (0 would run no seed)".to_string());
    }
    Ok(workers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn seeds(range: SeedRange) -> Vec<u64> {
        (0..).map_while(|i| range.nth(i)).collect()
    }

    #[test]
    fn shards_are_disjoint_and_together_are_the_range() {
        for (start, end) in [(0, 100), (5, 6), (3, 10), (0, 3)] {
            let whole = SeedRange::new(start, end);
            let mut union = BTreeSet::new();
            let mut total = 0;
            for index in 0..4 {
                let part = whole.shard(Shard { index, count: 4 });
                let part_seeds = seeds(part);
                assert_eq!(part.len(), Some(part_seeds.len() as u64), "{part:?}");
                total += part_seeds.len();
                union.extend(part_seeds);
            }
            assert_eq!(total, union.len(), "shards of {start}..{end} overlap");
            assert_eq!(union.into_iter().collect::<Vec<_>>(), seeds(whole));
        }
    }

    #[test]
    fn huge_ranges_are_lazy_and_never_overflow() {
        let (a, b) = parse_seed_range("0..18446744073709551615").unwrap();
        let range = SeedRange::new(a, b);
        assert_eq!(range.len(), Some(u64::MAX));
        assert_eq!(range.nth(u64::MAX - 1), Some(u64::MAX - 1));
        assert_eq!(range.nth(u64::MAX), None);
        let unbounded = SeedRange::from(u64::MAX - 1).shard(Shard { index: 1, count: 3 });
        assert_eq!(seeds(unbounded), vec![u64::MAX]);
        assert_eq!(unbounded.len(), None);
        let empty = SeedRange::new(0, 2).shard(Shard { index: 3, count: 4 });
        assert!(empty.is_empty());
        assert_eq!(empty.len(), Some(0));
    }

    #[test]
    fn bad_arguments_are_named() {
        assert!(parse_seed_range("5..5").unwrap_err().contains("empty"));
        assert!(parse_seed_range("0..x").unwrap_err().contains("end"));
        assert!(parse_seed_range("0..18446744073709551616")
            .unwrap_err()
            .contains("not a seed"));
        assert!(parse_workers("0").unwrap_err().contains("at least 1"));
        assert_eq!(parse_workers("3"), Ok(3));
        assert!(parse_shard("4/4").unwrap_err().contains("below the count"));
        assert!(parse_shard("0/0").unwrap_err().contains("at least 1"));
        assert!(parse_shard("1").unwrap_err().contains("I/N"));
        assert_eq!(parse_shard("2/4"), Ok(Shard { index: 2, count: 4 }));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("10").unwrap_err().contains("no unit"));
        assert!(parse_duration("3d").unwrap_err().contains("unit"));
        assert!(parse_duration("0s").unwrap_err().contains("positive"));
    }
}
