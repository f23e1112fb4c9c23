//! The default scenario's swarm (issue 13): what each seed draws, and that draws make sense
//! for the cluster they land on.

use std::collections::BTreeSet;

use super::*;

const SEEDS: std::ops::Range<u64> = 0..400;

#[test]
fn a_plan_carries_its_drawn_scenario_and_regenerates_from_it() {
    let scenario = Scenario::default_scenario();
    assert!(scenario.swarm.is_some());
    for seed in 0..20 {
        let plan = Plan::generate(seed, &scenario);
        assert_eq!(plan.scenario.swarm, None, "seed {seed}");
        plan.scenario.validate().unwrap();
        assert_eq!(plan.members.len(), plan.scenario.members as usize);
        assert_eq!(Plan::generate(seed, &plan.scenario), plan, "seed {seed}");
        let text = toml::to_string(&plan.scenario).expect("serializes");
        let back: Scenario = toml::from_str(&text).expect("parses");
        assert_eq!(
            back, plan.scenario,
            "seed {seed}: a seed file keeps the draw"
        );
    }
    // The draw has its own stream: the fault schedule of a drawn scenario is the one that
    // scenario always draws, and fewer clients move no draw.
    let mut fewer = scenario.clone();
    fewer.clients = 1;
    assert_eq!(
        Plan::generate(5, &scenario).faults,
        Plan::generate(5, &fewer).faults
    );
}

#[test]
fn the_swarm_draws_every_size_timeout_profile_and_append_limit() {
    let scenario = Scenario::default_scenario();
    let swarm = scenario.swarm.clone().expect("a swarm");
    let mut shapes = BTreeSet::new();
    let mut profiles = BTreeSet::new();
    let mut appends = BTreeSet::new();
    let mut kind_counts = BTreeSet::new();
    let mut ratios = BTreeSet::new();
    let mut timings = BTreeSet::new();
    for seed in SEEDS {
        let drawn = Plan::generate(seed, &scenario).scenario;
        shapes.insert((drawn.members, drawn.zones));
        profiles.insert(format!("{:?}", drawn.workload));
        appends.insert(drawn.max_entries_per_append);
        kind_counts.insert(weights_of(&drawn.faults).len());
        let ticks = (drawn.election_timeout_ticks, drawn.heartbeat_interval_ticks);
        assert!(
            ticks.0 >= swarm.election_timeout_ticks.0 && ticks.0 <= swarm.election_timeout_ticks.1
        );
        assert!(ticks.0 >= 3 * ticks.1, "seed {seed}: {ticks:?}");
        ratios.insert(ticks.0 / ticks.1);
        timings.insert((drawn.faults.gap_ms, drawn.faults.duration_ms));
        if drawn.workload == WorkloadProfile::Events {
            assert_eq!((drawn.keys, drawn.lease_ttl_seconds), (1, 3));
        }
        if drawn.workload == WorkloadProfile::Kubernetes {
            assert_eq!((drawn.keys, drawn.watchers), (10, 3));
        }
    }
    for members in [1, 3, 5] {
        for zones in 1..=members.min(3) {
            assert!(
                shapes.contains(&(members, zones)),
                "{members} in {zones}: {shapes:?}"
            );
        }
    }
    assert_eq!(profiles.len(), swarm.workloads.len(), "{profiles:?}");
    assert_eq!(appends, BTreeSet::from([1, 64]));
    // Subsets of every size, and the kinds drawn late on top of them.
    assert!(
        (1..=5).all(|n| kind_counts.contains(&n)),
        "subsets of every size: {kind_counts:?}"
    );
    assert!(ratios.len() > 4, "{ratios:?}");
    assert_eq!(timings.len(), swarm.fault_timing_ms.len(), "{timings:?}");
}

/// Every fault kind of `Fault` is drawn by the default scenario, and only where it makes
/// sense: a bridge in 3 members or more, a ring in 4 or more, a zone loss with 2 zones or
/// more, a rot with members left to replace it through. A new `Fault` variant fails to
/// compile here until it is counted.
#[test]
fn default_scenario_has_every_fault_kind_where_it_fits() {
    let scenario = Scenario::default_scenario();
    let mut kinds = BTreeSet::new();
    for seed in SEEDS {
        let plan = Plan::generate(seed, &scenario);
        let (members, zones) = (plan.scenario.members, plan.scenario.zones);
        for window in plan.faults {
            let (kind, fits) = match window.fault {
                Fault::Crash { .. } => ("crash", true),
                Fault::Isolate {
                    target: IsolateTarget::Leader,
                } => ("isolate leader", true),
                Fault::Isolate { .. } => ("isolate member", true),
                Fault::ZoneDown { zone } => ("zone down", zones >= 2 && zone < zones),
                Fault::PartitionFromPeers { .. } => ("peer partition", members >= 2),
                Fault::Pause { .. } => ("pause", true),
                Fault::CrashLeader => ("crash leader", true),
                Fault::CutNewLeaders { .. } => ("new-leader cut", members >= 2),
                Fault::ClockSkew { .. } => ("clock skew", true),
                Fault::OneWayCut { .. } => ("one-way cut", members >= 2),
                Fault::Bridge { .. } => ("bridge", members >= 3),
                Fault::MajorityMinority { .. } => ("majority/minority", members >= 3),
                Fault::Ring { .. } => ("ring", members >= 4),
                Fault::FsyncError { .. } => ("fsync error", true),
                Fault::DiskFull { .. } => ("disk full", true),
                Fault::CorruptSynced { .. } => ("synced byte rots", members >= 3),
                Fault::ZoneCut { zone } => ("zone cut", zones >= 2 && zone < zones),
                Fault::DelaySpike { .. } => ("delay spike", members >= 2),
                Fault::DuplicateMessages { .. } => ("duplicates", members >= 2),
                Fault::ReorderMessages { .. } => ("reordering", members >= 2),
                Fault::ClockJump { .. } => ("clock jump", true),
                Fault::AimedCrash { .. } => ("aimed crash", members >= 3),
                Fault::DiskReadError { .. } => ("read error", true),
                Fault::SlowDisk { .. } => ("slow disk", true),
            };
            assert!(
                fits,
                "seed {seed}: {kind} in {members} members, {zones} zones"
            );
            kinds.insert(kind);
        }
    }
    assert_eq!(kinds.len(), 24, "{kinds:?}");
    // Every kind of FaultMix is in the swarm: a kind left out would never run by default.
    let swarm = scenario.swarm.expect("a swarm");
    let names: BTreeSet<String> = swarm.faults.keys().cloned().collect();
    let all: BTreeSet<String> = fault_kind_names(&scenario.faults).into_iter().collect();
    assert_eq!(names, all);
}

#[test]
fn weights_by_name_round_trip_and_unknown_kinds_are_refused() {
    let mix = Scenario::default_scenario().faults;
    let weights =
        std::collections::BTreeMap::from([("ring".to_string(), 3), ("crash".to_string(), 1)]);
    let drawn = with_weights(&mix, &weights);
    assert_eq!(
        (drawn.ring_weight, drawn.crash_weight, drawn.pause_weight),
        (3, 1, 0)
    );
    assert_eq!(drawn.gap_ms, mix.gap_ms);
    assert_eq!(weights_of(&drawn), weights);
    let mut scenario = Scenario::default_scenario();
    let swarm = scenario.swarm.as_mut().expect("a swarm");
    let fault: SwarmFault = toml::from_str("").expect("every field has a default");
    assert_eq!(
        (
            fault.odds,
            fault.min_members,
            fault.weight,
            fault.late_percent
        ),
        (1, 0, None, 0)
    );
    swarm.faults.insert("no_such".to_string(), fault);
    let error = scenario.validate().unwrap_err();
    assert!(error.contains("\"no_such\" is no fault kind"), "{error}");
}

/// About a quarter of the default's seeds turn BUGGIFY on (`buggify_percent = 25`), and a
/// drawn scenario says so; the rest keep it off.
#[test]
fn the_swarm_turns_buggify_on_for_some_seeds() {
    let scenario = Scenario::default_scenario();
    let on = (0..200)
        .filter(|&seed| Plan::generate(seed, &scenario).scenario.buggify)
        .count();
    assert!((25..=75).contains(&on), "{on} of 200 seeds with BUGGIFY on");
}

/// The default's term-churn profile (issue 13: Raft's Figure 8 needs three members, one entry
/// per append, new-leader cuts and dense windows at once): drawn in about a fifth of the
/// seeds, with that shape, and shown in the drawn scenario and in `dst run`'s line. Seeds
/// that draw no profile draw what the swarm without profiles draws.
#[test]
fn the_swarm_draws_its_term_churn_profile_and_shows_it() {
    let scenario = Scenario::default_scenario();
    let mut without = scenario.clone();
    without.swarm.as_mut().expect("a swarm").profiles.clear();
    let mut drawn_in_profile = 0;
    for seed in 0..200 {
        let drawn = Plan::generate(seed, &scenario).scenario;
        let line = describe_drawn(&drawn);
        let Some(profile) = &drawn.swarm_profile else {
            assert_eq!(
                drawn,
                Plan::generate(seed, &without).scenario,
                "seed {seed}"
            );
            assert!(!line.contains("profile"), "{line}");
            continue;
        };
        drawn_in_profile += 1;
        assert_eq!(profile, "term-churn");
        assert!(
            line.starts_with("swarm drew: profile term-churn: 3 member(s)"),
            "{line}"
        );
        let kinds = weights_of(&drawn.faults);
        let early: Vec<&String> = kinds
            .keys()
            .filter(|k| !["read_error", "slow_disk"].contains(&k.as_str()))
            .collect();
        assert!(
            kinds.contains_key("new_leader_cut"),
            "seed {seed}: {kinds:?}"
        );
        assert!((1..=2).contains(&early.len()), "seed {seed}: {kinds:?}");
        assert_eq!(
            (
                drawn.members,
                drawn.max_entries_per_append,
                drawn.faults.gap_ms,
                drawn.faults.duration_ms
            ),
            (3, 1, (100, 600), (1000, 4000)),
            "seed {seed}"
        );
        let text = toml::to_string(&drawn).expect("serializes");
        assert!(text.contains("swarm_profile = \"term-churn\""), "{text}");
    }
    assert!(
        (20..=60).contains(&drawn_in_profile),
        "{drawn_in_profile} of 200 seeds in term-churn"
    );
}

#[test]
fn profiles_that_cannot_draw_a_valid_scenario_are_refused() {
    let base = Scenario::default_scenario();
    let refused = |edit: &dyn Fn(&mut SwarmProfile)| {
        let mut scenario = base.clone();
        let swarm = scenario.swarm.as_mut().expect("a swarm");
        edit(&mut swarm.profiles[0]);
        scenario.validate().unwrap_err()
    };
    assert!(refused(&|p| p.percent = 101).contains("more than 100"));
    // A ring needs four members; the profile draws three.
    assert!(refused(&|p| p.kinds.push("ring".to_string())).contains("term-churn"));
    assert!(refused(&|p| p.kinds = vec!["no_such".to_string()]).contains("term-churn"));
    assert!(refused(&|p| p.members = Some(vec![])).contains("swarm.members"));
    assert!(refused(&|p| p.fault_kinds = Some((0, 1))).contains("fault_kinds"));
}
