//! The identifiers every other module of the crate uses: nodes, terms and log indexes. They
//! sit at the bottom of the crate's imports (`conf` and `types` both build on them).

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! newtype_u64 {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

newtype_u64!(
    /// A member of the cluster. Ids are chosen by the operator; 0 is a legal id but no node
    /// should rely on it meaning "none" (use `Option<NodeId>` for that).
    NodeId
);
newtype_u64!(
    /// A Raft term (Raft paper §5.1). Term 0 is the term before any election.
    Term
);
newtype_u64!(
    /// A position in the replicated log. The first entry has index 1; index 0 is the empty
    /// prefix, whose term is 0, so that the consistency check of the first append always passes.
    LogIndex
);

impl LogIndex {
    /// The next index. Panics on overflow rather than wrapping: a wrapped index would silently
    /// compare smaller than every real one.
    pub fn next(self) -> LogIndex {
        LogIndex(self.0.checked_add(1).expect("log index overflow"))
    }

    /// The previous index, saturating at 0 (the empty prefix).
    pub fn prev(self) -> LogIndex {
        LogIndex(self.0.saturating_sub(1))
    }
}

impl Term {
    /// The next term. Panics on overflow for the same reason as `LogIndex::next`.
    pub fn next(self) -> Term {
        Term(self.0.checked_add(1).expect("term overflow"))
    }
}
