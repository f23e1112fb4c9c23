//! The write path: one request's changes as a `WriteTxn`, committed as one new revision or
//! rolled back completely (`abort`), so that an error met while executing leaves the store as
//! it was, on every member alike.

use faultline_api::{
    DeleteRangeRequest, DeleteRangeResponse, EtcdError, Event, EventType, KeyValue, LeaseId,
    PutRequest, PutResponse,
};

use super::check::{check_delete_request, check_put_request};
use super::{header, KvCanary, KvStore, Record, Rev, Revision};

/// A change to a lease's key set, kept so that `abort` can undo it.
#[derive(Debug)]
struct LeaseChange {
    lease: LeaseId,
    key: Vec<u8>,
    attached: bool,
}

/// A write in progress: changes go straight into the store at revision `begin + 1`;
/// `current_rev` moves only at commit. `abort` undoes them.
pub(super) struct WriteTxn {
    begin: Revision,
    changes: i64,
    events: Vec<Event>,
    /// Every attach and detach, in order (undone in reverse by `abort`).
    lease_changes: Vec<LeaseChange>,
}

impl WriteTxn {
    pub(super) fn new(begin: Revision) -> WriteTxn {
        WriteTxn {
            begin,
            changes: 0,
            events: Vec::new(),
            lease_changes: Vec::new(),
        }
    }
    /// The revision reads inside the txn see (etcd: beginRev, or beginRev + 1 after a change).
    pub(super) fn view_rev(&self) -> Revision {
        if self.changes > 0 {
            self.begin + 1
        } else {
            self.begin
        }
    }
    fn next_rev(&self) -> Rev {
        Rev {
            main: self.begin + 1,
            sub: self.changes,
        }
    }
}

impl KvStore {
    /// Run `exec` in a new write txn: commit what it wrote if it succeeds, undo all of it if
    /// it fails. Either way the result is the same on every member (the store is
    /// deterministic), so a failure is a per-request error, never a crash or a divergence.
    pub(super) fn write<T>(
        &mut self,
        exec: impl FnOnce(&mut KvStore, &mut WriteTxn) -> Result<T, EtcdError>,
    ) -> Result<T, EtcdError> {
        let mut tx = WriteTxn::new(self.current_rev);
        match exec(self, &mut tx) {
            Ok(response) => {
                self.commit(tx);
                Ok(response)
            }
            Err(error) => {
                self.abort(tx);
                Err(error)
            }
        }
    }

    pub(super) fn commit(&mut self, tx: WriteTxn) {
        assert_eq!(tx.begin, self.current_rev);
        assert_eq!(tx.changes, tx.events.len() as i64);
        if tx.changes > 0 {
            self.current_rev = tx.begin + 1;
            self.pending_events.push((self.current_rev, tx.events));
        }
    }

    /// Undo every change of `tx`: its records (all at `begin + 1`, the newest of each key)
    /// and its lease attachments, in reverse order. No event leaves.
    fn abort(&mut self, tx: WriteTxn) {
        assert_eq!(tx.begin, self.current_rev);
        let written = self.backend.split_off(&Rev::first_of(tx.begin + 1));
        assert_eq!(written.len() as i64, tx.changes);
        for (rev, record) in written.iter().rev() {
            let revs = self
                .index
                .get_mut(&record.key)
                .expect("a written key is indexed");
            assert_eq!(revs.pop(), Some(*rev));
            if revs.is_empty() {
                self.index.remove(&record.key);
            }
        }
        for change in tx.lease_changes.iter().rev() {
            let keys = &mut self
                .leases
                .get_mut(&change.lease)
                .expect("a txn neither grants nor revokes leases")
                .keys;
            let undone = if change.attached {
                keys.remove(&change.key)
            } else {
                keys.insert(change.key.clone())
            };
            assert!(undone);
        }
    }

    fn write_record(&mut self, tx: &mut WriteTxn, key: &[u8], kv: Option<KeyValue>) -> Rev {
        let rev = tx.next_rev();
        let revs = self.index.entry(key.to_vec()).or_default();
        if let Some(last) = revs.last() {
            assert!(*last < rev);
        }
        revs.push(rev);
        let previous = self.backend.insert(
            rev,
            Record {
                rev,
                key: key.to_vec(),
                kv,
            },
        );
        assert!(previous.is_none());
        tx.changes += 1;
        rev
    }

    fn attach(&mut self, tx: &mut WriteTxn, lease: LeaseId, key: &[u8]) -> Result<(), EtcdError> {
        if lease == 0 {
            return Ok(());
        }
        // Checked before execution (`check_put_state`); an error here, not a panic, keeps
        // apply total should that check ever miss a case.
        let l = self
            .leases
            .get_mut(&lease)
            .ok_or(EtcdError::LeaseNotFound)?;
        let attached = l.keys.insert(key.to_vec());
        assert!(
            attached,
            "a key is attached once (its old lease was detached first)"
        );
        tx.lease_changes.push(LeaseChange {
            lease,
            key: key.to_vec(),
            attached: true,
        });
        Ok(())
    }

    fn detach(&mut self, tx: &mut WriteTxn, lease: LeaseId, key: &[u8]) {
        if lease == 0 {
            return;
        }
        if let Some(l) = self.leases.get_mut(&lease) {
            let removed = l.keys.remove(key);
            assert!(removed, "a leased key is in its lease's key set");
            tx.lease_changes.push(LeaseChange {
                lease,
                key: key.to_vec(),
                attached: false,
            });
        }
    }

    /// mvcc's put inside a write txn. `value`/`lease` are the final ones (ignore_* resolved).
    fn put_kv(
        &mut self,
        tx: &mut WriteTxn,
        key: &[u8],
        value: Vec<u8>,
        lease: LeaseId,
    ) -> Result<(), EtcdError> {
        let prev = self.live_kv(key, tx.view_rev()).cloned();
        let main = tx.begin + 1;
        let kv = KeyValue {
            key: key.to_vec(),
            create_revision: prev.as_ref().map_or(main, |p| p.create_revision),
            mod_revision: main,
            version: prev.as_ref().map_or(1, |p| p.version + 1),
            value,
            lease,
        };
        self.write_record(tx, key, Some(kv.clone()));
        if let Some(p) = &prev {
            self.detach(tx, p.lease, key);
        }
        self.attach(tx, lease, key)?;
        // A watch event's prev_kv is the key at the revision BEFORE the txn (etcd reads it at
        // mod_revision - 1), not the in-txn value; a creation (version 1) has none.
        let event_prev_kv = if kv.version == 1 {
            None
        } else {
            self.live_kv(key, tx.begin).cloned()
        };
        tx.events.push(Event {
            kind: EventType::Put,
            kv,
            prev_kv: event_prev_kv,
        });
        Ok(())
    }

    /// Delete a key that is live in the txn's view (the callers take keys from a live range
    /// or from a lease's key set).
    pub(super) fn delete_key(&mut self, tx: &mut WriteTxn, key: &[u8]) {
        let prev = self
            .live_kv(key, tx.view_rev())
            .cloned()
            .expect("only live keys are deleted");
        let rev = self.write_record(tx, key, None);
        self.detach(tx, prev.lease, key);
        // As for puts: the key before the txn, which is absent if this txn created it (etcd
        // 3.4.23 sent no prev_kv for such a delete; found by difftest/).
        let event_prev_kv = self.live_kv(key, tx.begin).cloned();
        tx.events.push(Event {
            kind: EventType::Delete,
            kv: KeyValue {
                key: key.to_vec(),
                mod_revision: rev.main,
                ..KeyValue::default()
            },
            prev_kv: event_prev_kv,
        });
    }

    /// A put inside a write txn. ignore_value/ignore_lease need the key live in the txn's
    /// view: the checks before execution make sure of it (the key existed before the txn and
    /// no earlier delete of the branch can reach it); if it is absent anyway the put fails
    /// with etcd's ErrKeyNotFound instead of crashing every member (issue 16).
    pub(super) fn exec_put(
        &mut self,
        tx: &mut WriteTxn,
        put: &PutRequest,
    ) -> Result<PutResponse, EtcdError> {
        let prev = self.live_kv(&put.key, tx.view_rev()).cloned();
        if (put.ignore_value || put.ignore_lease) && prev.is_none() {
            assert!(
                !self.canary_active(KvCanary::IgnorePutAfterDelete),
                "canary IgnorePutAfterDelete: a put with ignore_value/ignore_lease found no \
                 key to keep (etcd 3.4.23 panics here too)"
            );
            return Err(EtcdError::KeyNotFound);
        }
        let (value, lease) = match &prev {
            Some(p) if put.ignore_value || put.ignore_lease => (
                if put.ignore_value {
                    p.value.clone()
                } else {
                    put.value.clone()
                },
                if put.ignore_lease { p.lease } else { put.lease },
            ),
            _ => (put.value.clone(), put.lease),
        };
        self.put_kv(tx, &put.key, value, lease)?;
        Ok(PutResponse {
            header: header(tx.begin + 1),
            prev_kv: if put.prev_kv { prev } else { None },
        })
    }

    pub(super) fn exec_delete_range(
        &mut self,
        tx: &mut WriteTxn,
        del: &DeleteRangeRequest,
    ) -> DeleteRangeResponse {
        let prevs: Vec<KeyValue> = self
            .live_range(&del.key, &del.range_end, tx.view_rev())
            .into_iter()
            .cloned()
            .collect();
        for kv in &prevs {
            self.delete_key(tx, &kv.key);
        }
        DeleteRangeResponse {
            header: header(tx.view_rev()),
            deleted: prevs.len() as i64,
            prev_kvs: if del.prev_kv { prevs } else { Vec::new() },
        }
    }

    pub(super) fn apply_put(&mut self, put: &PutRequest) -> Result<PutResponse, EtcdError> {
        check_put_request(put)?;
        // etcd's order: lease lookup, then the previous KV for ignore_value/ignore_lease.
        if put.lease != 0 && !self.leases.contains_key(&put.lease) {
            return Err(EtcdError::LeaseNotFound);
        }
        self.check_put_state(put)?;
        let response = self.write(|store, tx| store.exec_put(tx, put))?;
        assert_eq!(response.header.revision, self.current_rev);
        Ok(response)
    }

    pub(super) fn apply_delete_range(
        &mut self,
        del: &DeleteRangeRequest,
    ) -> Result<DeleteRangeResponse, EtcdError> {
        check_delete_request(del)?;
        let response = self.write(|store, tx| Ok(store.exec_delete_range(tx, del)))?;
        assert_eq!(response.header.revision, self.current_rev);
        Ok(response)
    }
}
