//! Reads: a key or a range as of a revision (for Range requests, txn compares and reads
//! inside a write txn), and the stored history rebuilt as watch events.

use faultline_api::{
    EtcdError, Event, EventType, KeyValue, RangeRequest, RangeResponse, Revision, SortOrder,
    SortTarget,
};

use super::check::check_range_request;
use super::{header, KvStore, Record, Rev};

fn sort_kvs(kvs: &mut [KeyValue], order: SortOrder, target: SortTarget) {
    // etcd: a non-KEY target with order NONE sorts ascending; KEY ascending is the natural
    // order already. Ties keep key order (Go's sort is stable for etcd-sized small inputs).
    let order = match (target, order) {
        (SortTarget::Key, SortOrder::Ascend) => SortOrder::None,
        (SortTarget::Key, o) => o,
        (_, SortOrder::None) => SortOrder::Ascend,
        (_, o) => o,
    };
    let cmp = |a: &KeyValue, b: &KeyValue| match target {
        SortTarget::Key => a.key.cmp(&b.key),
        SortTarget::Version => a.version.cmp(&b.version),
        SortTarget::Create => a.create_revision.cmp(&b.create_revision),
        SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
        SortTarget::Value => a.value.cmp(&b.value),
    };
    match order {
        SortOrder::None => {}
        SortOrder::Ascend => kvs.sort_by(cmp),
        SortOrder::Descend => kvs.sort_by(|a, b| cmp(b, a)),
    }
}

impl KvStore {
    /// etcd's Range (§2): header.revision is the current revision, whatever was asked for.
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse, EtcdError> {
        check_range_request(req)?;
        self.range_at(req, self.current_rev)
    }

    /// Events of revisions `from..=to` rebuilt from the stored history, as `take_events` would
    /// have produced them, except that `prev_kv` is only filled when `with_prev_kv` is set and
    /// the revision before the event is not compacted (etcd's watch reads it the same way).
    /// `from < compact_revision()` => `ErrCompacted`; `to > current_revision()` => `ErrFutureRev`.
    /// Complete for every revision >= the compact revision: compaction keeps the records of the
    /// compact revision itself, tombstones included (the fix of etcd #18089/#19179).
    pub fn history(
        &self,
        from: Revision,
        to: Revision,
        with_prev_kv: bool,
    ) -> Result<Vec<(Revision, Vec<Event>)>, EtcdError> {
        if to > self.current_rev {
            return Err(EtcdError::FutureRev);
        }
        if from < self.compact_rev {
            return Err(EtcdError::Compacted);
        }
        let mut out: Vec<(Revision, Vec<Event>)> = Vec::new();
        if from > to {
            return Ok(out);
        }
        let range = Rev::first_of(from.max(0))..=Rev::last_of(to);
        for record in self.backend.range(range).map(|(_, r)| r) {
            let event = self.record_event(record, with_prev_kv);
            match out.last_mut() {
                Some((rev, events)) if *rev == record.rev.main => events.push(event),
                _ => out.push((record.rev.main, vec![event])),
            }
        }
        Ok(out)
    }

    fn record_event(&self, record: &Record, with_prev_kv: bool) -> Event {
        let (kind, kv, is_create) = match &record.kv {
            Some(kv) => (EventType::Put, kv.clone(), kv.version == 1),
            None => (
                EventType::Delete,
                KeyValue {
                    key: record.key.clone(),
                    mod_revision: record.rev.main,
                    ..KeyValue::default()
                },
                false,
            ),
        };
        let prev_rev = record.rev.main - 1;
        let prev_kv = if with_prev_kv && !is_create && prev_rev >= self.compact_rev {
            self.live_kv(&record.key, prev_rev).cloned()
        } else {
            None
        };
        Event { kind, kv, prev_kv }
    }

    /// The key's KV as of `rev`, if it was live then (callers check compaction).
    pub(super) fn live_kv(&self, key: &[u8], rev: Revision) -> Option<&KeyValue> {
        let revs = self.index.get(key)?;
        let pos = revs.partition_point(|r| r.main <= rev);
        if pos == 0 {
            return None;
        }
        self.backend
            .get(&revs[pos - 1])
            .expect("indexed revision is stored")
            .kv
            .as_ref()
    }

    /// Every KV live at `rev` in etcd's range [key, range_end), ascending by key.
    pub(super) fn live_range(&self, key: &[u8], range_end: &[u8], rev: Revision) -> Vec<&KeyValue> {
        if range_end.is_empty() {
            return self.live_kv(key, rev).into_iter().collect();
        }
        let keys: Box<dyn Iterator<Item = &Vec<u8>>> = if range_end == [0] {
            Box::new(self.index.range(key.to_vec()..).map(|(k, _)| k))
        } else if range_end <= key {
            Box::new(std::iter::empty())
        } else {
            Box::new(
                self.index
                    .range(key.to_vec()..range_end.to_vec())
                    .map(|(k, _)| k),
            )
        };
        keys.filter_map(|k| self.live_kv(k, rev)).collect()
    }

    /// etcd's applier Range over mvcc's rangeKeys, with `current` the revision the reader is
    /// at (the store's, or a write txn's view). Header = `current`.
    pub(super) fn range_at(
        &self,
        req: &RangeRequest,
        current: Revision,
    ) -> Result<RangeResponse, EtcdError> {
        if req.revision > current {
            return Err(EtcdError::FutureRev);
        }
        let rev = if req.revision <= 0 {
            current
        } else {
            req.revision
        };
        if rev < self.compact_rev {
            return Err(EtcdError::Compacted);
        }
        let mut live = self.live_range(&req.key, &req.range_end, rev);
        let count = live.len() as i64;
        if req.count_only {
            return Ok(RangeResponse {
                header: header(current),
                kvs: Vec::new(),
                more: false,
                count,
            });
        }
        // etcd's rangeLimit (3.4 and 3.6): only an explicit sort order or a min/max filter
        // makes etcd read every key before sorting; otherwise it reads limit + 1 keys in key
        // order, so a sort target with order NONE sorts just those (found by difftest/).
        let reads_everything = req.sort_order != SortOrder::None
            || req.min_mod_revision != 0
            || req.max_mod_revision != 0
            || req.min_create_revision != 0
            || req.max_create_revision != 0;
        if !reads_everything && req.limit > 0 {
            live.truncate(
                usize::try_from(req.limit)
                    .unwrap_or(usize::MAX)
                    .saturating_add(1),
            );
        }
        let mut kvs: Vec<KeyValue> = live
            .into_iter()
            .filter(|kv| req.max_mod_revision == 0 || kv.mod_revision <= req.max_mod_revision)
            .filter(|kv| req.min_mod_revision == 0 || kv.mod_revision >= req.min_mod_revision)
            .filter(|kv| {
                req.max_create_revision == 0 || kv.create_revision <= req.max_create_revision
            })
            .filter(|kv| {
                req.min_create_revision == 0 || kv.create_revision >= req.min_create_revision
            })
            .cloned()
            .collect();
        sort_kvs(&mut kvs, req.sort_order, req.sort_target);
        let mut more = false;
        if req.limit > 0 && kvs.len() as i64 > req.limit {
            kvs.truncate(req.limit as usize);
            more = true;
        }
        if req.keys_only {
            for kv in &mut kvs {
                kv.value = Vec::new();
            }
        }
        Ok(RangeResponse {
            header: header(current),
            kvs,
            more,
            count,
        })
    }
}
