//! How a run's participants are named in its log (`dst run --trace`, `dst replay --trace`) and
//! in its HTML report, one way everywhere: members by their member id (`member-2`; never by
//! madsim's node ids, which differ from member ids as soon as the simulator creates a node of
//! its own first), clients and watchers by their planned id, and the final phase's client as
//! `final`.

use std::fmt;

/// The client id of the final phase's session (the write, the read of everything and the
/// hashes after the heal): above every planned client and every later incarnation.
pub const FINAL_CLIENT_ID: u64 = u64::MAX;

/// A history's client id as the log shows it: the number, or `final` for the final phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientId(pub u64);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == FINAL_CLIENT_ID {
            write!(f, "final")
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// Members as the log shows them: `member 2`, `members 1, 3`.
pub fn members_text(members: &[u64]) -> String {
    match members {
        [] => "no member".to_string(),
        [one] => format!("member {one}"),
        many => format!(
            "members {}",
            many.iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_final_client_and_members_have_readable_names() {
        assert_eq!(ClientId(FINAL_CLIENT_ID).to_string(), "final");
        assert_eq!(ClientId(57).to_string(), "57");
        assert_eq!(members_text(&[2]), "member 2");
        assert_eq!(members_text(&[1, 3]), "members 1, 3");
        assert_eq!(members_text(&[]), "no member");
    }
}
