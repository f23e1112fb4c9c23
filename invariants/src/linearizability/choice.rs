//! One decision of the search at a level.

const DROP_BIT: u32 = 1 << 31;

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

    /// In 4 bytes (an op index is below 2^31), for the search's choice arena.
    #[inline]
    pub(super) fn pack(self) -> u32 {
        match self {
            Choice::Linearize(o) => o,
            Choice::Drop(o) => o | DROP_BIT,
        }
    }

    #[inline]
    pub(super) fn unpack(packed: u32) -> Choice {
        if packed & DROP_BIT == 0 {
            Choice::Linearize(packed)
        } else {
            Choice::Drop(packed & !DROP_BIT)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_pack_into_four_bytes() {
        for c in [
            Choice::Linearize(0),
            Choice::Drop(0),
            Choice::Drop(DROP_BIT - 1),
        ] {
            assert_eq!(Choice::unpack(c.pack()), c);
        }
    }
}
