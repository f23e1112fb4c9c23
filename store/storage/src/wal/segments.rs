//! WAL segment files: `wal-<seq:016x>-<first_index:016x>.log`, numbered from 0 without gaps.
//! `first_index` is the index the segment's first entry would have (the log's last index + 1
//! when it began).

use faultline_raft::LogIndex;

const PREFIX: &str = "wal-";
const SUFFIX: &str = ".log";

/// A segment's name, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SegmentName {
    pub seq: u64,
    pub first_index: LogIndex,
}

impl SegmentName {
    pub fn file(self) -> String {
        format!(
            "{PREFIX}{:016x}-{:016x}{SUFFIX}",
            self.seq, self.first_index.0
        )
    }

    pub fn parse(file: &str) -> Option<SegmentName> {
        let middle = file.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
        let (seq, first_index) = middle.split_once('-')?;
        let hex = |s: &str| {
            (s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| u64::from_str_radix(s, 16).ok())
                .flatten()
        };
        Some(SegmentName {
            seq: hex(seq)?,
            first_index: LogIndex(hex(first_index)?),
        })
    }
}

/// What the WAL knows of one of its segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Segment {
    pub name: SegmentName,
    pub file: String,
    /// Bytes in the file, all whole records.
    pub len_bytes: u64,
    /// The highest index of any entry written to it (even if later overwritten); 0 if none.
    pub max_entry_index: LogIndex,
}

impl Segment {
    pub fn new(name: SegmentName) -> Segment {
        Segment {
            name,
            file: name.file(),
            len_bytes: 0,
            max_entry_index: LogIndex(0),
        }
    }
}

/// The segments among `files`, by sequence number, split into the newest run without a gap
/// and the older ones before a gap (left behind by a release a power loss interrupted: it
/// removes the oldest first, but the removals may reach the platter in any order).
pub(crate) fn newest_run(files: &[String]) -> (Vec<SegmentName>, Vec<SegmentName>) {
    let mut names: Vec<SegmentName> = files.iter().filter_map(|f| SegmentName::parse(f)).collect();
    names.sort();
    let mut run_start = names.len();
    while run_start > 0 {
        let contiguous = run_start == names.len()
            || names[run_start - 1].seq.checked_add(1) == Some(names[run_start].seq);
        if !contiguous {
            break;
        }
        run_start -= 1;
    }
    let run = names.split_off(run_start);
    (run, names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(seq: u64, first_index: u64) -> SegmentName {
        SegmentName {
            seq,
            first_index: LogIndex(first_index),
        }
    }

    #[test]
    fn names_round_trip() {
        let n = name(0x1f, 0x2a);
        assert_eq!(n.file(), "wal-000000000000001f-000000000000002a.log");
        assert_eq!(SegmentName::parse(&n.file()), Some(n));
        for bad in [
            "wal-1-2.log",
            "snap-0000000000000001-0000000000000002.snap",
            "raft.wal",
        ] {
            assert_eq!(SegmentName::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_newest_run_without_a_gap_is_used() {
        let files = |names: &[SegmentName]| -> Vec<String> {
            let mut files: Vec<String> = names.iter().map(|n| n.file()).collect();
            files.push("snap-0000000000000001-0000000000000002.snap".to_owned());
            files.reverse(); // order does not matter
            files
        };
        let (run, older) = newest_run(&files(&[name(0, 1), name(1, 5), name(2, 9)]));
        assert_eq!((run.len(), older.len()), (3, 0));
        let (run, older) = newest_run(&files(&[name(0, 1), name(2, 9), name(3, 12)]));
        assert_eq!(run, vec![name(2, 9), name(3, 12)]);
        assert_eq!(older, vec![name(0, 1)]);
        assert_eq!(newest_run(&[]), (vec![], vec![]));
    }
}
