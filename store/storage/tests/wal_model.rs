//! The WAL against a model, under random saves, syncs, clean restarts and power losses.
//!
//! The property, for every run: let the records be the non-empty `save`s in order, and at a
//! power loss let S be the records written before the last sync (or recovery) and U1..Um the
//! records written since, whose ends lie at byte offsets e1 < .. < em of the unsynced tail.
//! The crash fate leaves the first L bytes of the tail intact (L = 0 if lost, all if kept, the
//! kept length if torn, the first flipped byte if corrupted). Then `Wal::open` succeeds and
//! recovers exactly fold(S ++ U1..Uk), where k = #{j : ej <= L} and fold replays the records
//! (last hard state wins; entries at index i replace the log from i on), and the file is cut
//! to exactly those records. So everything synced is there, in order, and of the unsynced part
//! a prefix of whole records survives, possibly none. Synced bytes never change. A restart
//! without power loss keeps (and syncs) everything written.

use faultline_raft::{Entry, HardState, LogIndex, NodeId, PersistedState, Term};
use faultline_storage::{ByteFlip, CrashFault, Disk, FileDisk, MemDisk, TailFate, Wal, WAL_FILE};
use proptest::prelude::*;
use proptest::sample::Index;

type Rec = (Option<HardState>, Vec<Entry>);

fn fold<'a>(records: impl IntoIterator<Item = &'a Rec>) -> PersistedState {
    let mut state = PersistedState {
        hard_state: HardState::default(),
        entries: Vec::new(),
    };
    for (hard_state, entries) in records {
        if let Some(hs) = hard_state {
            state.hard_state = *hs;
        }
        if let Some(first) = entries.first() {
            state.entries.truncate(first.index.0 as usize - 1);
            state.entries.extend(entries.iter().cloned());
        }
    }
    state
}

#[derive(Debug, Default)]
struct Model {
    synced: Vec<Rec>,
    /// Records written since the last sync, with their end offsets in the unsynced tail.
    unsynced: Vec<(Rec, u64)>,
}

impl Model {
    fn written(&self) -> PersistedState {
        fold(
            self.synced
                .iter()
                .chain(self.unsynced.iter().map(|(r, _)| r)),
        )
    }
    fn make_durable(&mut self, k: usize) {
        let kept: Vec<Rec> = self.unsynced.drain(..).take(k).map(|(r, _)| r).collect();
        self.synced.extend(kept);
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
enum Op {
    Save {
        /// (term bump, vote, commit step)
        hard_state: Option<(u8, Option<u8>, u8)>,
        /// (how far back from the end to start, how many entries, payload length)
        entries: Option<(u8, u8, u8)>,
    },
    Sync,
    Restart,
    Crash(FateSpec),
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
    let fate = prop_oneof![
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
    ];
    prop_oneof![
        6 => save,
        3 => Just(Op::Sync),
        1 => Just(Op::Restart),
        2 => fate.prop_map(Op::Crash),
    ]
}

/// Turns the abstract save into a valid Raft record for the current log.
fn concretize(
    cur: &PersistedState,
    hard_state: Option<(u8, Option<u8>, u8)>,
    entries: Option<(u8, u8, u8)>,
) -> Rec {
    let old = cur.hard_state;
    let last = cur.entries.len() as u64;
    let term = Term(old.term.0 + hard_state.map_or(0, |(bump, _, _)| u64::from(bump)));
    let mut new_entries = Vec::new();
    if let Some((back, count, data_len)) = entries {
        let first = (last + 1 - u64::from(back).min(last)).max(old.commit.0 + 1);
        let prev_term = match first {
            1 => Term(0),
            i => cur.entries[i as usize - 2].term,
        };
        let entry_term = prev_term.max(term);
        for index in first..first + u64::from(count) {
            new_entries.push(Entry {
                term: entry_term,
                index: LogIndex(index),
                data: vec![index as u8; usize::from(data_len)],
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
    (new_hard_state, new_entries)
}

fn assert_state_eq(actual: &PersistedState, expected: &PersistedState) {
    assert_eq!(actual.hard_state, expected.hard_state);
    assert_eq!(actual.entries, expected.entries);
}

fn unsynced_len(disk: &MemDisk) -> u64 {
    disk.unsynced_lengths().get(WAL_FILE).copied().unwrap_or(0)
}

fn run(ops: Vec<Op>) {
    let mut model = Model::default();
    let (mut wal, state) = Wal::open(MemDisk::new()).unwrap();
    assert_state_eq(&state, &model.written());
    for op in ops {
        match op {
            Op::Save {
                hard_state,
                entries,
            } => {
                let (hs, entries) = concretize(&model.written(), hard_state, entries);
                wal.save(hs, &entries).unwrap();
                if hs.is_some() || !entries.is_empty() {
                    model
                        .unsynced
                        .push(((hs, entries), unsynced_len(wal.disk())));
                }
                assert_eq!(wal.unsynced_bytes(), unsynced_len(wal.disk()));
            }
            Op::Sync => {
                wal.sync().unwrap();
                let k = model.unsynced.len();
                model.make_durable(k);
                assert_eq!(unsynced_len(wal.disk()), 0);
            }
            Op::Restart => {
                let (reopened, state) = Wal::open(wal.into_disk()).unwrap();
                wal = reopened;
                let k = model.unsynced.len();
                model.make_durable(k);
                assert_state_eq(&state, &model.written());
            }
            Op::Crash(spec) => {
                let mut disk = wal.into_disk();
                let tail = unsynced_len(&disk);
                assert_eq!(tail, model.unsynced.last().map_or(0, |(_, end)| *end));
                let synced_len = disk.synced_len(WAL_FILE).unwrap_or(0);
                let synced_bytes = disk
                    .read(WAL_FILE)
                    .map(|b| b[..synced_len as usize].to_vec())
                    .unwrap_or_default();
                let (fate, intact) = match spec {
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
                };
                // A file whose creation is not durable vanishes with all of its tail.
                let intact = if disk.pending_dir_ops().is_empty() {
                    intact
                } else {
                    0
                };
                let mut fault = CrashFault::default();
                if tail > 0 {
                    fault.tails.insert(WAL_FILE.to_owned(), fate);
                }
                disk.crash(&fault);
                let after = disk.read(WAL_FILE).unwrap_or_default();
                assert_eq!(&after[..synced_bytes.len()], &synced_bytes[..]);

                let k = model
                    .unsynced
                    .iter()
                    .filter(|(_, end)| *end <= intact)
                    .count();
                let kept_len = if k == 0 { 0 } else { model.unsynced[k - 1].1 };
                let (reopened, state) = Wal::open(disk).unwrap();
                wal = reopened;
                model.make_durable(k);
                assert_state_eq(&state, &model.written());
                let file_len = wal.disk().read(WAL_FILE).map_or(0, |b| b.len() as u64);
                assert_eq!(file_len, synced_len + kept_len);
            }
        }
        let written = model.written();
        assert_eq!(wal.hard_state(), written.hard_state);
        assert_eq!(wal.last_index(), LogIndex(written.entries.len() as u64));
    }
    // Whatever happened, a final sync and power loss keeps everything written.
    wal.sync().unwrap();
    let mut disk = wal.into_disk();
    disk.crash(&CrashFault::lose_all_unsynced());
    let (_, state) = Wal::open(disk).unwrap();
    let k = model.unsynced.len();
    model.make_durable(k);
    assert_state_eq(&state, &model.written());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn recovery_matches_the_model(ops in proptest::collection::vec(op(), 0..60)) {
        run(ops);
    }
}

/// A fresh directory named after the test, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(test_name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "faultline-storage-{test_name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn wal_round_trip_on_real_files() {
    let tmp = TempDir::new("wal_round_trip_on_real_files");
    let hard_state = HardState {
        term: Term(2),
        vote: Some(NodeId(1)),
        commit: LogIndex(2),
    };
    let entries: Vec<Entry> = (1..=3)
        .map(|i| Entry {
            term: Term(2),
            index: LogIndex(i),
            data: vec![i as u8; 100],
        })
        .collect();
    {
        let (mut wal, state) = Wal::open(FileDisk::open(&tmp.0).unwrap()).unwrap();
        assert!(state.entries.is_empty());
        wal.save(Some(hard_state), &entries).unwrap();
        wal.sync().unwrap();
    }
    // A torn record at the end, as a crash mid-write leaves it.
    let mut disk = FileDisk::open(&tmp.0).unwrap();
    let len = disk.read(WAL_FILE).unwrap().len() as u64;
    disk.append(WAL_FILE, &[7, 0, 0]).unwrap();
    disk.sync(WAL_FILE).unwrap();

    let (wal, state) = Wal::open(disk).unwrap();
    assert_eq!(state.hard_state, hard_state);
    assert_eq!(state.entries, entries);
    assert_eq!(wal.disk().read(WAL_FILE).unwrap().len() as u64, len);
    assert_eq!(wal.disk().list().unwrap(), vec![WAL_FILE.to_owned()]);
}
