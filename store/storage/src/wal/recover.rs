//! Reading the WAL back: every segment of the newest run, in order, checked record by record.

use faultline_raft::{Entry, LogIndex};

use super::error::WalError;
use super::format::{parse_at, synced_evidence, Frame, Parsed, Record, SegmentHeader};
use super::segments::{newest_run, Segment, SegmentName};
use super::shape::{LogShape, Violation};
use crate::disk::Disk;

/// What recovery found.
pub(crate) struct Recovered {
    pub shape: LogShape,
    /// The entries after the snapshot marker, contiguous.
    pub entries: Vec<Entry>,
    /// The segments kept, oldest first.
    pub segments: Vec<Segment>,
}

/// The log being rebuilt: its shape, the entries, and the segment being read.
#[derive(Default)]
struct Fold {
    shape: Option<LogShape>,
    entries: Vec<Entry>,
}

/// The records of one segment, and how many of its bytes hold them.
struct SegmentRecords {
    frames: Vec<(usize, Frame<'static>)>,
    valid_len: usize,
}

/// Parses the records of segment `file`. Damage in the last segment is a torn tail (its
/// records are cut there) unless a later record proves the damaged bytes were synced; in any
/// other segment it is corruption, since a segment is synced before the next one begins.
///
/// `rot_as_torn` is the `RotTakenForTornTail` canary: every damaged record is taken for a torn
/// tail, wherever it lies.
fn read_records(
    file: &str,
    bytes: &[u8],
    is_last: bool,
    rot_as_torn: bool,
) -> Result<SegmentRecords, WalError> {
    let mut frames = Vec::new();
    let mut pos = 0;
    loop {
        match parse_at(bytes, pos) {
            Parsed::End => break,
            Parsed::Record { frame, next } => {
                frames.push((pos, frame));
                pos = next;
            }
            Parsed::Undecodable { reason, .. } => {
                return Err(invalid(file, pos, reason));
            }
            Parsed::Damaged { reason, next } => {
                let evidence = if rot_as_torn {
                    None
                } else if is_last {
                    synced_evidence(bytes, pos, next).map(|at| {
                        format!("a record written later at byte {at} proves it was synced")
                    })
                } else {
                    Some("a later segment exists, so it was synced".to_owned())
                };
                if let Some(evidence) = evidence {
                    return Err(WalError::Corrupt {
                        file: file.to_owned(),
                        offset_bytes: pos as u64,
                        reason,
                        evidence,
                    });
                }
                break;
            }
        }
    }
    Ok(SegmentRecords {
        frames,
        valid_len: pos,
    })
}

fn invalid(file: &str, offset: usize, reason: impl ToString) -> WalError {
    WalError::Invalid {
        file: file.to_owned(),
        offset_bytes: offset as u64,
        reason: reason.to_string(),
    }
}

impl Fold {
    /// Applies the records of one segment; returns the highest entry index written in it.
    fn segment(
        &mut self,
        name: SegmentName,
        file: &str,
        frames: Vec<(usize, Frame<'static>)>,
    ) -> Result<LogIndex, WalError> {
        let mut frames = frames.into_iter();
        match frames.next() {
            Some((
                _,
                Frame {
                    record: Record::Header(header),
                    ..
                },
            )) => self.header(name, file, &header)?,
            _ => return Err(invalid(file, 0, "the segment does not begin with a header")),
        }
        let shape = self.shape.as_mut().expect("set by the header");
        let mut max_entry_index = LogIndex(0);
        for (pos, frame) in frames {
            let at = |v: Violation| invalid(file, pos, v);
            match frame.record {
                Record::Header(_) => return Err(invalid(file, pos, "a header inside a segment")),
                Record::Save {
                    hard_state,
                    entries,
                } => {
                    shape.check(hard_state.as_ref(), &entries).map_err(at)?;
                    shape.apply(hard_state.as_ref(), &entries);
                    if let Some(first) = entries.first() {
                        let start = shape.start_index();
                        self.entries
                            .retain(|e| e.index > start && e.index < first.index);
                        max_entry_index =
                            max_entry_index.max(entries.last().expect("non-empty").index);
                        self.entries.extend(entries.into_owned());
                    }
                }
                Record::Marker {
                    at: point,
                    retained_last,
                } => {
                    shape
                        .check_recorded_marker(point, retained_last)
                        .map_err(at)?;
                    shape.apply_marker(point, retained_last);
                    self.entries
                        .retain(|e| e.index > point.index && e.index <= retained_last);
                }
            }
            debug_assert_eq!(
                self.entries.len() as u64,
                shape.last_index().0 - shape.start_index().0
            );
        }
        Ok(max_entry_index)
    }

    /// The first record of a segment: it starts the log if no segment came before, else it
    /// must agree with what they hold.
    fn header(
        &mut self,
        name: SegmentName,
        file: &str,
        header: &SegmentHeader,
    ) -> Result<(), WalError> {
        if header.seq != name.seq || header.last.index.next() != name.first_index {
            return Err(invalid(
                file,
                0,
                format!("header {header:?} does not match the file name"),
            ));
        }
        match &self.shape {
            None => self.shape = Some(LogShape::from_header(header)),
            Some(shape) => shape
                .check_header(header)
                .map_err(|v| invalid(file, 0, v))?,
        }
        Ok(())
    }
}

/// Recovers the log from the WAL segments on `disk`: a torn tail of the last segment is cut
/// off, a last segment left without a whole header is removed, and so are segments an
/// interrupted release left before a gap. Then everything kept is made durable.
pub(crate) fn recover<D: Disk>(disk: &mut D, rot_as_torn: bool) -> Result<Recovered, WalError> {
    let (run, leftovers) = newest_run(&disk.list()?);
    let mut fold = Fold::default();
    let mut segments = Vec::new();
    let mut removed = Vec::new();
    for (i, name) in run.iter().enumerate() {
        let is_last = i + 1 == run.len();
        let file = name.file();
        let bytes = disk.read(&file)?;
        let records = read_records(&file, &bytes, is_last, rot_as_torn)?;
        let cut = records.valid_len < bytes.len();
        if cut {
            disk.truncate(&file, records.valid_len as u64)?;
        }
        if records.frames.is_empty() && is_last {
            // Created, then lost its header to the power loss: as if never begun.
            removed.push(file);
            break;
        }
        let max_entry_index = fold.segment(*name, &file, records.frames)?;
        segments.push(Segment {
            len_bytes: records.valid_len as u64,
            max_entry_index,
            ..Segment::new(*name)
        });
        if cut && rot_as_torn && !is_last {
            // The canary's repair: the log ends where the damage is, as if it were the tail.
            removed.extend(run[i + 1..].iter().map(|n| n.file()));
            break;
        }
    }
    let shape = fold.shape.unwrap_or_default();
    if shape.has_released_gap() {
        let reason = format!(
            "entries {:?}..={:?} were released, but no snapshot marker covers them",
            shape.snapshot.index.next(),
            shape.start_index()
        );
        return Err(invalid(&segments[0].file, 0, reason));
    }
    removed.extend(leftovers.iter().map(|n| n.file()));
    make_durable(disk, &segments, &removed)?;
    Ok(Recovered {
        shape,
        entries: fold.entries,
        segments,
    })
}

/// Removes `removed`, then syncs the last segment (after a process crash without power loss
/// it may still sit in the page cache) and the directory.
fn make_durable<D: Disk>(
    disk: &mut D,
    segments: &[Segment],
    removed: &[String],
) -> Result<(), WalError> {
    for file in removed {
        disk.remove(file)?;
    }
    if let Some(last) = segments.last() {
        disk.sync(&last.file)?;
    }
    if !segments.is_empty() || !removed.is_empty() {
        disk.sync_dir()?;
    }
    Ok(())
}
