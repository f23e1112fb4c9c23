//! The network shapes of the link faults (one-way cut, bridge, majority/minority, ring): which
//! directed links between members a window cuts, given the members it resolved to. Pure, so
//! the nemesis and the tests agree on what a shape means.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::faults::Fault;

/// The live members (in id order) in the order a shape fault's `arrangement` puts them: the
/// shape gives roles by position (the bridge first, the majority before the minority, the
/// ring's order). Fewer members than the shape needs: nobody (the fault does nothing).
pub fn arrange(fault: Fault, live_members: &[u64]) -> Vec<u64> {
    let (arrangement, needed) = match fault {
        Fault::Bridge { arrangement } => (arrangement, 3),
        Fault::MajorityMinority { arrangement } => (arrangement, 2),
        Fault::Ring { arrangement } => (arrangement, 4),
        _ => panic!("{fault:?} is not a shape fault"),
    };
    if live_members.len() < needed {
        return Vec::new();
    }
    let mut order = live_members.to_vec();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(arrangement));
    order
}

/// The two sides a split cannot cross, among `members` as [`arrange`] ordered them: a
/// bridge's halves (the bridge, `members[0]`, is on neither side), or the majority and the
/// minority. None for other faults, or too few members.
pub fn sides(fault: Fault, members: &[u64]) -> Option<(&[u64], &[u64])> {
    match fault {
        Fault::Bridge { .. } if members.len() >= 3 => {
            let halves = &members[1..];
            Some(halves.split_at(halves.len() / 2))
        }
        Fault::MajorityMinority { .. } if members.len() >= 2 => {
            Some(members.split_at(members.len() / 2 + 1))
        }
        _ => None,
    }
}

/// The directed links (from, to) a link fault cuts among `members`, as resolved at its start
/// (`OneWayCut`: [from, to]; the shapes: [`arrange`]'s order). Empty for other faults.
pub fn cut_links(fault: Fault, members: &[u64]) -> Vec<(u64, u64)> {
    let both_ways = |pairs: Vec<(u64, u64)>| -> Vec<(u64, u64)> {
        pairs
            .into_iter()
            .flat_map(|(a, b)| [(a, b), (b, a)])
            .collect()
    };
    let across = |left: &[u64], right: &[u64]| -> Vec<(u64, u64)> {
        both_ways(
            left.iter()
                .flat_map(|&a| right.iter().map(move |&b| (a, b)))
                .collect(),
        )
    };
    match fault {
        Fault::OneWayCut { .. } => match members {
            [from, to] => vec![(*from, *to)],
            _ => Vec::new(),
        },
        Fault::Bridge { .. } | Fault::MajorityMinority { .. } => match sides(fault, members) {
            Some((left, right)) => across(left, right),
            None => Vec::new(),
        },
        Fault::Ring { .. } => {
            let n = members.len();
            let mut pairs = Vec::new();
            for i in 0..n {
                for j in i + 1..n {
                    let neighbours = j - i == 1 || (i == 0 && j == n - 1);
                    if !neighbours {
                        pairs.push((members[i], members[j]));
                    }
                }
            }
            both_ways(pairs)
        }
        _ => Vec::new(),
    }
}

/// The directed links a cut-off group (`Fault::ZoneCut`: the zone's members) loses: every
/// link between a member of `group` and a member of `all` outside it, both ways.
pub fn group_cut_links(group: &[u64], all: &[u64]) -> Vec<(u64, u64)> {
    let mut links = Vec::new();
    for &inside in group {
        for &outside in all.iter().filter(|m| !group.contains(m)) {
            links.push((inside, outside));
            links.push((outside, inside));
        }
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::IsolateTarget;

    fn reaches(links: &[(u64, u64)], from: u64, to: u64) -> bool {
        !links.contains(&(from, to))
    }

    #[test]
    fn a_one_way_cut_cuts_one_direction_only() {
        let fault = Fault::OneWayCut {
            from: IsolateTarget::Leader,
            to: IsolateTarget::Member(2),
        };
        assert_eq!(cut_links(fault, &[1, 2]), vec![(1, 2)]);
        assert_eq!(cut_links(fault, &[]), vec![]);
    }

    #[test]
    fn a_bridge_joins_two_halves_that_cannot_talk() {
        let fault = Fault::Bridge { arrangement: 7 };
        let members = arrange(fault, &[1, 2, 3, 4, 5]);
        let links = cut_links(fault, &members);
        let (bridge, left, right) = (members[0], &members[1..3], &members[3..]);
        for &a in left {
            assert!(reaches(&links, bridge, a) && reaches(&links, a, bridge));
            for &b in right {
                assert!(!reaches(&links, a, b) && !reaches(&links, b, a));
                assert!(reaches(&links, bridge, b) && reaches(&links, b, bridge));
            }
        }
        assert_eq!(links.len(), 8);
        // Three members: the two ends only reach the bridge.
        let three = arrange(fault, &[1, 2, 3]);
        assert_eq!(
            cut_links(fault, &three),
            vec![(three[1], three[2]), (three[2], three[1])]
        );
        assert!(arrange(fault, &[1, 2]).is_empty());
    }

    #[test]
    fn a_majority_minority_split_cuts_three_from_two() {
        let fault = Fault::MajorityMinority { arrangement: 3 };
        let members = arrange(fault, &[1, 2, 3, 4, 5]);
        let links = cut_links(fault, &members);
        assert_eq!(links.len(), 12); // 3 x 2 pairs, both ways
        let (majority, minority) = members.split_at(3);
        for &a in majority {
            for &b in minority {
                assert!(!reaches(&links, a, b) && !reaches(&links, b, a));
            }
            for &c in majority {
                assert!(reaches(&links, a, c));
            }
        }
        assert_eq!(cut_links(fault, &arrange(fault, &[1, 2, 3])).len(), 4);
    }

    #[test]
    fn a_ring_leaves_each_member_its_two_neighbours() {
        let fault = Fault::Ring { arrangement: 11 };
        let members = arrange(fault, &[1, 2, 3, 4, 5]);
        let links = cut_links(fault, &members);
        for (i, &a) in members.iter().enumerate() {
            let reached: Vec<u64> = members
                .iter()
                .copied()
                .filter(|&b| b != a && reaches(&links, a, b))
                .collect();
            assert_eq!(reached.len(), 2, "{a} reaches {reached:?}");
            assert!(reached.contains(&members[(i + 1) % 5]));
            assert!(reached.contains(&members[(i + 4) % 5]));
        }
        assert!(arrange(fault, &[1, 2, 3]).is_empty());
    }

    #[test]
    fn a_zone_cut_keeps_the_links_inside_the_zone_and_outside_it() {
        let links = group_cut_links(&[2, 5], &[1, 2, 3, 4, 5]);
        assert_eq!(links.len(), 12); // 2 x 3 pairs, both ways
        for (a, b) in [(2, 5), (5, 2), (1, 3), (3, 4), (4, 1)] {
            assert!(reaches(&links, a, b), "{a} -> {b}");
        }
        for outside in [1, 3, 4] {
            for inside in [2, 5] {
                assert!(!reaches(&links, inside, outside) && !reaches(&links, outside, inside));
            }
        }
        assert!(group_cut_links(&[], &[1, 2, 3]).is_empty());
    }

    #[test]
    fn arrangements_differ_between_draws() {
        let orders: std::collections::BTreeSet<Vec<u64>> = (0..20)
            .map(|a| arrange(Fault::Ring { arrangement: a }, &[1, 2, 3, 4, 5]))
            .collect();
        assert!(orders.len() > 5, "{orders:?}");
    }
}
