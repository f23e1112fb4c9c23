//! The WAL against a model, under random saves, snapshot markers, releases, syncs, clean
//! restarts and power losses, with segments of random size (1 byte: a segment per record).
//!
//! The property, for every run: let the records be the non-empty `save`s and the markers in
//! order, and at a power loss let S be the records written before the last sync (a release,
//! a new segment and a recovery sync too) and U1..Um the records written since, whose ends
//! lie at byte offsets e1 < .. < em of the newest segment's unsynced tail. The crash leaves
//! the first L bytes of that tail intact (L = 0 if lost, or if the segment was created since
//! the last sync and its creation is lost; all if kept; the kept length if torn; the first
//! flipped byte if corrupted). Then `Wal::open` succeeds and recovers exactly
//! fold(S ++ U1..Uk), where k = #{j : ej <= L} and fold replays the records (last hard state
//! wins; entries at index i replace the log from i on; a marker at (i, t) keeps the entries
//! after i if the log holds i with term t, else none), and the segment is cut to exactly those
//! records. So everything synced is there, in order, and of the unsynced part a prefix of
//! whole records survives, possibly none. Synced bytes never change; only the newest segment
//! ever has unsynced bytes. A restart without power loss keeps (and syncs) everything written.

use faultline_raft::{Entry, HardState, LogIndex, NodeId, Term};
use faultline_storage::{ByteFlip, CrashFault, Disk, MemDisk, TailFate, Wal, WalOptions, WalState};
use proptest::prelude::*;
use proptest::sample::Index;

#[derive(Clone, Debug)]
enum Rec {
    Save(Option<HardState>, Vec<Entry>),
    Marker(LogIndex, Term),
}

/// The log as the records describe it, folded independently of the WAL's code.
#[derive(Clone, Debug, Default)]
struct LogModel {
    hard_state: HardState,
    snapshot: Option<(LogIndex, Term)>,
    entries: Vec<Entry>,
}

impl LogModel {
    fn base(&self) -> (u64, Term) {
        self.snapshot.map_or((0, Term(0)), |(i, t)| (i.0, t))
    }
    fn last(&self) -> u64 {
        self.entries.last().map_or(self.base().0, |e| e.index.0)
    }
    /// The term at `index`, between the snapshot and the last entry.
    fn term_at(&self, index: u64) -> Term {
        let (base, base_term) = self.base();
        match index.checked_sub(base + 1) {
            None => base_term,
            Some(offset) => self.entries[offset as usize].term,
        }
    }
    fn apply(&mut self, rec: &Rec) {
        match rec {
            Rec::Save(hard_state, entries) => {
                if let Some(hs) = hard_state {
                    self.hard_state = *hs;
                }
                if let Some(first) = entries.first() {
                    self.entries.retain(|e| e.index < first.index);
                    self.entries.extend(entries.iter().cloned());
                }
            }
            Rec::Marker(index, term) => {
                let holds = index.0 <= self.last() && self.term_at(index.0) == *term;
                self.entries.retain(|e| holds && e.index > *index);
                self.snapshot = Some((*index, *term));
            }
        }
    }
}

#[derive(Debug, Default)]
struct Model {
    synced: Vec<Rec>,
    /// Records written since the last sync, with their end offsets in the unsynced tail.
    unsynced: Vec<(Rec, u64)>,
}

impl Model {
    fn written(&self) -> LogModel {
        let mut log = LogModel::default();
        let unsynced = self.unsynced.iter().map(|(r, _)| r);
        for rec in self.synced.iter().chain(unsynced) {
            log.apply(rec);
        }
        log
    }
    fn make_durable(&mut self, k: usize) {
        let kept: Vec<Rec> = self.unsynced.drain(..).take(k).map(|(r, _)| r).collect();
        self.synced.extend(kept);
    }
    fn make_all_durable(&mut self) {
        self.make_durable(self.unsynced.len());
    }
}

#[derive(Debug, Clone)]
enum FateSpec {
    Lost,
    Kept,
    Torn(Index),
    Corrupted {
        keep: Index,
        flip: Index,
        xor_mask: u8,
    },
}

#[derive(Debug, Clone)]
enum MarkerSpec {
    /// At the commit index minus `back` (a node compacting its own log).
    Compact { back: u8 },
    /// Past the commit index (a follower installing the leader's snapshot): keeps the entries
    /// after it if it matches one, else empties the log, possibly jumping past its end.
    Install { ahead: u8, term_bump: u8 },
}

#[derive(Debug, Clone)]
enum Op {
    Save {
        /// (term bump, vote, commit step)
        hard_state: Option<(u8, Option<u8>, u8)>,
        /// (how far back from the end to start, how many entries, payload length)
        entries: Option<(u8, u8, u8)>,
    },
    Marker(MarkerSpec),
    /// Release up to the marker minus this much.
    Release(u8),
    Sync,
    Restart,
    /// The fate of the newest segment's unsynced tail, and whether its creation survives if
    /// it is not yet durable.
    Crash(FateSpec, bool),
}

fn fate() -> impl Strategy<Value = FateSpec> {
    prop_oneof![
        Just(FateSpec::Lost),
        Just(FateSpec::Kept),
        any::<Index>().prop_map(FateSpec::Torn),
        (any::<Index>(), any::<Index>(), 1u8..=255).prop_map(|(keep, flip, xor_mask)| {
            FateSpec::Corrupted {
                keep,
                flip,
                xor_mask,
            }
        }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let save = (
        proptest::option::of((0u8..3, proptest::option::of(1u8..4), 0u8..4)),
        proptest::option::of((0u8..4, 1u8..4, 0u8..40)),
    )
        .prop_map(|(hard_state, entries)| Op::Save {
            hard_state,
            entries,
        });
    let marker = prop_oneof![
        (0u8..3).prop_map(|back| MarkerSpec::Compact { back }),
        (0u8..4, 0u8..2).prop_map(|(ahead, term_bump)| MarkerSpec::Install { ahead, term_bump }),
    ];
    prop_oneof![
        6 => save,
        1 => marker.prop_map(Op::Marker),
        1 => (0u8..3).prop_map(Op::Release),
        3 => Just(Op::Sync),
        1 => Just(Op::Restart),
        2 => (fate(), any::<bool>()).prop_map(|(f, keep)| Op::Crash(f, keep)),
    ]
}

/// Turns the abstract save into a valid Raft record for the current log.
fn concretize_save(
    cur: &LogModel,
    hard_state: Option<(u8, Option<u8>, u8)>,
    entries: Option<(u8, u8, u8)>,
) -> Rec {
    let old = cur.hard_state;
    let last = cur.last();
    let term = Term(old.term.0 + hard_state.map_or(0, |(bump, _, _)| u64::from(bump)));
    let mut new_entries = Vec::new();
    if let Some((back, count, data_len)) = entries {
        let first = (last + 1 - u64::from(back).min(last))
            .max(old.commit.0 + 1)
            .max(cur.base().0 + 1);
        let entry_term = cur.term_at(first - 1).max(term);
        for index in first..first + u64::from(count) {
            new_entries.push(Entry {
                term: entry_term,
                index: LogIndex(index),
                data: vec![index as u8; usize::from(data_len)],
                kind: faultline_raft::EntryKind::Normal,
            });
        }
    }
    let new_last = new_entries.last().map_or(last, |e| e.index.0);
    let new_hard_state = hard_state.map(|(bump, vote, step)| {
        let vote = vote.map(|v| NodeId(u64::from(v)));
        HardState {
            term,
            vote: if bump > 0 || old.vote.is_none() {
                vote
            } else {
                old.vote
            },
            commit: LogIndex((old.commit.0 + u64::from(step)).min(new_last)),
        }
    });
    Rec::Save(new_hard_state, new_entries)
}

/// A valid marker for the current log, if there is one.
fn concretize_marker(cur: &LogModel, spec: &MarkerSpec) -> Option<Rec> {
    let (base, base_term) = cur.base();
    let commit = cur.hard_state.commit.0;
    let (index, term) = match *spec {
        MarkerSpec::Compact { back } => {
            let index = commit.saturating_sub(u64::from(back)).max(base);
            (index, cur.term_at(index))
        }
        MarkerSpec::Install { ahead, term_bump } => {
            let index = commit.max(base) + 1 + u64::from(ahead);
            let term = cur.term_at(index.min(cur.last())).max(base_term);
            (index, Term(term.0 + u64::from(term_bump)))
        }
    };
    (index > 0).then_some(Rec::Marker(LogIndex(index), term))
}

fn assert_state_eq(actual: &WalState, expected: &LogModel) {
    assert_eq!(actual.hard_state, expected.hard_state);
    assert_eq!(actual.snapshot, expected.snapshot);
    assert_eq!(actual.entries, expected.entries);
}

fn newest_segment(wal: &Wal<MemDisk>) -> Option<String> {
    wal.segment_files().last().cloned()
}

fn unsynced_len(disk: &MemDisk, file: Option<&String>) -> u64 {
    file.and_then(|f| disk.unsynced_lengths().get(f).copied())
        .unwrap_or(0)
}

/// Writes `rec`; returns whether a new segment began (which synced the one before).
fn write(wal: &mut Wal<MemDisk>, rec: &Rec) -> bool {
    let before = newest_segment(wal);
    match rec {
        Rec::Save(hs, entries) => wal.save(*hs, entries).unwrap(),
        Rec::Marker(index, term) => wal.save_snapshot_marker(*index, *term).unwrap(),
    }
    before.is_some() && before != newest_segment(wal)
}

/// The crash fault for `spec` and how many bytes of the unsynced tail it leaves intact.
fn draw_fate(spec: FateSpec, tail: u64) -> (TailFate, u64) {
    match spec {
        FateSpec::Lost => (TailFate::Lost, 0),
        FateSpec::Kept => (TailFate::Kept, tail),
        FateSpec::Torn(keep) => {
            let keep_bytes = keep.index(tail as usize + 1) as u64;
            (TailFate::Torn { keep_bytes }, keep_bytes)
        }
        FateSpec::Corrupted {
            keep,
            flip,
            xor_mask,
        } => {
            let keep_bytes = keep.index(tail as usize + 1) as u64;
            let flips: Vec<ByteFlip> = if keep_bytes == 0 {
                Vec::new()
            } else {
                vec![ByteFlip {
                    offset: flip.index(keep_bytes as usize) as u64,
                    xor_mask,
                }]
            };
            let intact = flips.first().map_or(keep_bytes, |f| f.offset);
            (TailFate::Corrupted { keep_bytes, flips }, intact)
        }
    }
}

fn crash(
    wal: Wal<MemDisk>,
    model: &mut Model,
    spec: FateSpec,
    keep_creation: bool,
    options: WalOptions,
) -> Wal<MemDisk> {
    let file = newest_segment(&wal);
    let mut disk = wal.into_disk();
    let tail = unsynced_len(&disk, file.as_ref());
    assert_eq!(tail, model.unsynced.last().map_or(0, |(_, end)| *end));
    // Only the newest segment's creation can be pending: releases sync the directory.
    let pending = disk.pending_dir_ops();
    assert!(pending.len() <= 1, "{pending:?}");
    let synced_len = file.as_ref().and_then(|f| disk.synced_len(f)).unwrap_or(0);
    let read = |disk: &MemDisk| {
        file.as_ref()
            .and_then(|f| disk.read(f).ok())
            .unwrap_or_default()
    };
    let synced_bytes = read(&disk)[..synced_len as usize].to_vec();
    let (fate, intact) = draw_fate(spec, tail);
    let mut fault = CrashFault::default();
    if keep_creation {
        fault.dir_ops_kept = (0..pending.len() as u64).collect();
    }
    let intact = if pending.is_empty() || keep_creation {
        intact
    } else {
        0
    };
    if let (true, Some(file)) = (tail > 0, &file) {
        fault.tails.insert(file.clone(), fate);
    }
    disk.crash(&fault);
    assert_eq!(
        &read(&disk)[..synced_bytes.len().min(read(&disk).len())],
        &synced_bytes[..]
    );

    let k = model
        .unsynced
        .iter()
        .filter(|(_, end)| *end <= intact)
        .count();
    let kept_len = if k == 0 { 0 } else { model.unsynced[k - 1].1 };
    let first_end = model.unsynced.first().map(|(_, end)| *end);
    let (wal, state) = Wal::open_with_options(disk, options).unwrap();
    model.make_durable(k);
    assert_state_eq(&state, &model.written());
    let len = read(wal.disk()).len() as u64;
    if let (0, 0, Some(first_end)) = (k, synced_len, first_end) {
        // A new segment: its header alone may survive (it precedes the first record).
        assert!(len < first_end, "{len}");
    } else {
        assert_eq!(len, synced_len + kept_len);
    }
    wal
}

fn write_and_model(wal: &mut Wal<MemDisk>, model: &mut Model, rec: Rec) {
    let empty_save = matches!(&rec, Rec::Save(None, e) if e.is_empty());
    if write(wal, &rec) {
        model.make_all_durable();
    }
    let tail = unsynced_len(wal.disk(), newest_segment(wal).as_ref());
    if !empty_save {
        model.unsynced.push((rec, tail));
    }
    assert_eq!(wal.unsynced_bytes(), tail);
}

fn run(options: WalOptions, ops: Vec<Op>) {
    let mut model = Model::default();
    let (mut wal, state) = Wal::open_with_options(MemDisk::new(), options).unwrap();
    assert_state_eq(&state, &model.written());
    for op in ops {
        let rec = match &op {
            Op::Save {
                hard_state,
                entries,
            } => Some(concretize_save(&model.written(), *hard_state, *entries)),
            Op::Marker(spec) => concretize_marker(&model.written(), spec),
            _ => None,
        };
        match op {
            Op::Save { .. } | Op::Marker(_) => {
                // No marker fits an empty log with nothing committed.
                if let Some(rec) = rec {
                    write_and_model(&mut wal, &mut model, rec);
                }
            }
            Op::Release(back) => {
                let marker = model.written().base().0;
                let segments = wal.segment_files().len();
                wal.release_to(LogIndex(marker.saturating_sub(u64::from(back))))
                    .unwrap();
                assert!(wal.segment_files().len() <= segments);
                model.make_all_durable();
            }
            Op::Sync => {
                wal.sync().unwrap();
                model.make_all_durable();
            }
            Op::Restart => {
                let (reopened, state) = Wal::open_with_options(wal.into_disk(), options).unwrap();
                wal = reopened;
                model.make_all_durable();
                assert_state_eq(&state, &model.written());
            }
            Op::Crash(spec, keep_creation) => {
                wal = crash(wal, &mut model, spec, keep_creation, options);
            }
        }
        let written = model.written();
        assert_eq!(wal.hard_state(), written.hard_state);
        assert_eq!(wal.last_index(), LogIndex(written.last()));
        assert_eq!(wal.snapshot(), written.snapshot);
        let at_risk: Vec<String> = wal.disk().unsynced_lengths().into_keys().collect();
        assert!(
            at_risk
                .iter()
                .all(|f| Some(f) == newest_segment(&wal).as_ref()),
            "{at_risk:?}"
        );
    }
    // Whatever happened, a final sync and power loss keeps everything written.
    wal.sync().unwrap();
    let mut disk = wal.into_disk();
    disk.crash(&CrashFault::lose_all_unsynced());
    let (_, state) = Wal::open_with_options(disk, options).unwrap();
    model.make_all_durable();
    assert_state_eq(&state, &model.written());
}

fn options() -> impl Strategy<Value = WalOptions> {
    prop_oneof![Just(1u64), 60u64..400, Just(64 << 20)]
        .prop_map(|segment_size_bytes| WalOptions { segment_size_bytes })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn recovery_matches_the_model(options in options(), ops in proptest::collection::vec(op(), 0..60)) {
        run(options, ops);
    }
}
