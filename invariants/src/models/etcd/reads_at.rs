//! Historical reads enforced inside the search (`ReadsAt`): a range at revision R must show
//! the store at R, exactly.
//!
//! Why here: a historical read is placed in the linearization at its header revision, long
//! after R, when the state at R is gone; `apply` can only check its header there. But the key
//! table at revision R is fixed the moment a step reaches R: every later change of a key makes
//! a new revision (lease grants, revokes of leases without keys and compactions change no
//! key). So the step that produces revision R is where every read at R is judged: the range
//! evaluated on that step's new state must give the response's KVs, `more` and `count`. The
//! rule depends on the step and the state it leads to only, so the memo stays sound; it is a
//! necessary condition of every linearization, and with the header check (which makes the
//! store reach R before the read is placed) also sufficient, so the linearization found
//! agrees with every historical read and no post-check can disagree with it.
//!
//! (The key facts, `KeyFacts`, prune the same reads earlier by counting, but cannot say what
//! a limited or count-only range shows about the keys it does not list.)

use std::collections::BTreeMap;

use faultline_api::{RangeRequest, RangeResponse, Revision};

use super::{EtcdModel, EtcdState};

/// The historical reads of a history (ranges with `revision > 0` and a known response), by
/// the revision they read.
#[derive(Clone, Debug, Default)]
pub struct ReadsAt {
    by_revision: BTreeMap<Revision, Vec<(RangeRequest, RangeResponse)>>,
}

impl ReadsAt {
    /// Add a read at `req.revision` (> 0) and what it returned.
    pub fn add(&mut self, req: &RangeRequest, resp: &RangeResponse) {
        debug_assert!(req.revision > 0);
        self.by_revision
            .entry(req.revision)
            .or_default()
            .push((req.clone(), resp.clone()));
    }

    pub fn is_empty(&self) -> bool {
        self.by_revision.is_empty()
    }

    /// How many reads.
    pub fn len(&self) -> usize {
        self.by_revision.values().map(Vec::len).sum()
    }
}

impl EtcdModel {
    /// Whether every historical read at the revision of `next` (reached from `before`) shows
    /// what `next` holds. Only a step that makes a new revision is judged; a step from the
    /// initial revision 1 also judges the reads at 1 on `before` (the empty store), which no
    /// step reaches.
    pub fn reads_at_feasible(&self, before: &EtcdState, next: &EtcdState) -> bool {
        let Some(reads) = &self.reads_at else {
            return true;
        };
        if next.revision == before.revision || reads.is_empty() {
            return true;
        }
        let at = |st: &EtcdState| {
            reads
                .by_revision
                .get(&st.revision)
                .is_none_or(|list| list.iter().all(|(req, resp)| self.shows(st, req, resp)))
        };
        (before.revision != 1 || at(before)) && at(next)
    }

    /// Whether a range on the keys of `st` gives the KVs, `more` and `count` of `resp` (the
    /// header is the read's own, checked where the read is placed).
    fn shows(&self, st: &EtcdState, req: &RangeRequest, resp: &RangeResponse) -> bool {
        let expected = self.range_on(&st.keys, req, resp.header.revision);
        expected.kvs == resp.kvs && expected.more == resp.more && expected.count == resp.count
    }
}
