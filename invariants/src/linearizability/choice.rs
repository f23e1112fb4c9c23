//! One decision of the search at a level.

/// Linearize an operation next, or decide that an optional one never took effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Choice {
    Linearize(u32),
    Drop(u32),
}

impl Choice {
    /// The operation decided on.
    #[inline]
    pub(super) fn op(self) -> u32 {
        match self {
            Choice::Linearize(o) | Choice::Drop(o) => o,
        }
    }
}
