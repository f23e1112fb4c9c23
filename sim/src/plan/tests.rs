use faultline_api::{PutRequest, Request, RequestOp, SortOrder};

use super::*;

#[test]
fn same_seed_same_plan_and_streams_are_independent() {
    let scenario = Scenario::default_scenario();
    assert_eq!(Plan::generate(7, &scenario), Plan::generate(7, &scenario));
    assert_ne!(Plan::generate(7, &scenario), Plan::generate(8, &scenario));
    // Fewer clients leave the fault schedule untouched.
    let mut fewer = scenario.clone();
    fewer.clients = 1;
    assert_eq!(
        Plan::generate(7, &scenario).faults,
        Plan::generate(7, &fewer).faults
    );
}

/// The default scenario's base without its swarm (the fixed mix; the swarm's draws are
/// `swarm_tests.rs`'s) keeps today's nine kinds.
#[test]
fn fixed_default_scenario_has_its_fault_kinds() {
    let scenario = Scenario::default_scenario().without_swarm();
    scenario.validate().unwrap();
    let mut kinds = [false; 7];
    for seed in 0..50 {
        for window in Plan::generate(seed, &scenario).faults {
            match window.fault {
                Fault::Crash { .. } => kinds[0] = true,
                Fault::Isolate { .. } => kinds[1] = true,
                Fault::ZoneDown { .. } => kinds[2] = true,
                Fault::PartitionFromPeers { .. } => kinds[3] = true,
                Fault::Pause { .. } => kinds[4] = true,
                Fault::CrashLeader => kinds[0] = true,
                Fault::CutNewLeaders { .. } => kinds[5] = true,
                Fault::ClockSkew { .. } => kinds[6] = true,
                // Weight 0 in the fixed default (the swarm draws them: swarm_tests.rs).
                Fault::OneWayCut { .. }
                | Fault::Bridge { .. }
                | Fault::MajorityMinority { .. }
                | Fault::Ring { .. }
                | Fault::FsyncError { .. }
                | Fault::DiskFull { .. }
                | Fault::CorruptSynced { .. }
                | Fault::ZoneCut { .. }
                | Fault::DelaySpike { .. }
                | Fault::DuplicateMessages { .. }
                | Fault::ReorderMessages { .. }
                | Fault::ClockJump { .. }
                | Fault::AimedCrash { .. }
                | Fault::DiskReadError { .. }
                | Fault::SlowDisk { .. } => {
                    panic!("{:?} in the default scenario", window.fault)
                }
            }
        }
    }
    assert_eq!(kinds, [true; 7]);
}

// Issue 13: the partitions scenario draws every network shape (one-way cuts both to and from
// the leader), and the other scenarios none (their schedules must not change).
#[test]
fn partitions_scenario_draws_every_network_shape() {
    let scenario = Scenario::embedded("partitions").expect("embedded");
    let mut kinds = std::collections::BTreeSet::new();
    for seed in 0..50 {
        for window in Plan::generate(seed, &scenario).faults {
            kinds.insert(match window.fault {
                Fault::OneWayCut {
                    from: IsolateTarget::Leader,
                    ..
                } => "one-way cut from the leader",
                Fault::OneWayCut { .. } => "one-way cut to the leader",
                Fault::Bridge { .. } => "bridge",
                Fault::MajorityMinority { .. } => "majority/minority",
                Fault::Ring { .. } => "ring",
                _ => "other",
            });
        }
    }
    assert_eq!(kinds.len(), 6, "{kinds:?}");
    for (name, _) in EMBEDDED_SCENARIOS {
        let mix = Scenario::embedded(name).expect("embedded").faults;
        let shapes = [
            mix.one_way_cut_weight,
            mix.bridge_weight,
            mix.majority_minority_weight,
            mix.ring_weight,
        ];
        assert_eq!(shapes == [0; 4], name != "partitions", "{name}");
    }
}

// Issue 13: the disk-faults scenario draws every disk fault (fsync errors on the leader and
// on a member, a full disk, rot of synced bytes) with the default scenario's other faults, and
// no other scenario draws one but the canary's own (their schedules must not change).
#[test]
fn disk_faults_scenario_draws_every_disk_fault_and_only_it() {
    let scenario = Scenario::embedded("disk-faults").expect("embedded");
    let default = Scenario::default_scenario();
    let mut kinds = std::collections::BTreeSet::new();
    for seed in 0..50 {
        for window in Plan::generate(seed, &scenario).faults {
            kinds.insert(match window.fault {
                Fault::FsyncError {
                    target: IsolateTarget::Leader,
                } => "fsync error on the leader",
                Fault::FsyncError { .. } => "fsync error on a member",
                Fault::DiskFull { .. } => "disk full",
                Fault::CorruptSynced { .. } => "synced byte rots",
                Fault::DiskReadError { .. } => "read error",
                Fault::SlowDisk { .. } => "slow disk",
                _ => "other",
            });
        }
    }
    assert_eq!(kinds.len(), 7, "{kinds:?}");
    let mut mix = scenario.faults.clone();
    (
        mix.fsync_error_weight,
        mix.disk_full_weight,
        mix.corrupt_synced_weight,
        mix.read_error_weight,
        mix.slow_disk_weight,
    ) = (0, 0, 0, 0, 0);
    assert_eq!(
        mix, default.faults,
        "the other faults are the default scenario's"
    );
    for (name, _) in EMBEDDED_SCENARIOS {
        let mix = Scenario::embedded(name).expect("embedded").faults;
        let disk = [
            mix.fsync_error_weight,
            mix.disk_full_weight,
            mix.corrupt_synced_weight,
            mix.read_error_weight,
            mix.slow_disk_weight,
        ];
        let expected = match name {
            "disk-faults" => [3, 2, 2, 2, 2],
            "fsync-error-ignored" => [1, 0, 0, 0, 0],
            _ => [0; 5],
        };
        assert_eq!(disk, expected, "{name}");
    }
}

// Issue 13: the messages-and-clocks and leader-election-clock-jumps scenarios draw every
// zone cut, message and clock-jump kind (clock jumps forward and back, on the leader and on
// a member; delays on every link and on one member's), and no other scenario draws one
// (their schedules must not change).
#[test]
fn message_and_clock_scenarios_draw_every_new_kind_and_only_they() {
    for name in ["messages-and-clocks", "leader-election-clock-jumps"] {
        let scenario = Scenario::embedded(name).expect("embedded");
        let mut kinds = std::collections::BTreeSet::new();
        for seed in 0..100 {
            for window in Plan::generate(seed, &scenario).faults {
                kinds.insert(match window.fault {
                    Fault::ZoneCut { zone } if zone < scenario.zones => "zone cut",
                    Fault::DelaySpike { target: None, .. } => "delay on every link",
                    Fault::DelaySpike { .. } => "delay on a member's links",
                    Fault::DuplicateMessages { .. } => "duplicates",
                    Fault::ReorderMessages { .. } => "reordering",
                    Fault::ClockJump {
                        target: IsolateTarget::Leader,
                        jump_ms,
                    } if jump_ms > 0 => "leader's clock forward",
                    Fault::ClockJump {
                        target: IsolateTarget::Leader,
                        ..
                    } => "leader's clock back",
                    Fault::ClockJump { jump_ms, .. } if jump_ms > 0 => "member's clock forward",
                    Fault::ClockJump { .. } => "member's clock back",
                    _ => "other",
                });
            }
        }
        assert_eq!(kinds.len(), 10, "{name}: {kinds:?}");
    }
    for (name, _) in EMBEDDED_SCENARIOS {
        let mix = Scenario::embedded(name).expect("embedded").faults;
        let new_kinds = [
            mix.zone_cut_weight,
            mix.delay_spike_weight,
            mix.duplicate_weight,
            mix.reorder_weight,
            mix.clock_jump_weight,
        ];
        let expected = match name {
            "messages-and-clocks" => [3, 3, 3, 3, 3],
            "leader-election-clock-jumps" => [1, 2, 2, 2, 4],
            _ => [0; 5],
        };
        assert_eq!(new_kinds, expected, "{name}");
    }
}

// Issue 3: the default workload uses the whole API (and keeps written values unique,
// which the checkers rely on).
#[test]
fn default_workload_uses_the_full_api_with_unique_values() {
    let plan = Plan::generate(3, &Scenario::default_scenario().without_swarm());
    let mut kinds = std::collections::BTreeSet::new();
    let mut values = std::collections::BTreeSet::new();
    // Every written value is unique (an ignore_value put writes none: it keeps the old one).
    let mut note_value = |p: &PutRequest| {
        let value = &p.value;
        assert!(p.ignore_value || values.insert(value.clone()), "{value:?}");
    };
    for op in plan.clients.iter().flat_map(|c| &c.ops) {
        let kind = match &op.request {
            Request::Range(r) if r.serializable => "serializable range",
            Request::Range(_) if matches!(op.fill, Fill::RevisionsBack(_)) => "historical range",
            Request::Range(r) if r.sort_order != SortOrder::None => "sorted range",
            Request::Range(r) if r.keys_only || r.count_only || r.limit > 0 => "range options",
            Request::Range(_) => "range",
            Request::Put(p) => {
                note_value(p);
                if p.lease != 0 {
                    "put with lease"
                } else {
                    "put"
                }
            }
            Request::DeleteRange(_) => "delete",
            Request::Txn(t) => {
                let mut nested = false;
                for op in t.success.iter() {
                    match op {
                        RequestOp::Put(p) => note_value(p),
                        RequestOp::Txn(inner) => {
                            nested = true;
                            for op in &inner.success {
                                if let RequestOp::Put(p) = op {
                                    note_value(p);
                                }
                            }
                        }
                        _ => {}
                    }
                }
                if nested {
                    "nested txn"
                } else if op.fill == Fill::CompareLastSeen {
                    "cas txn"
                } else {
                    "multi-op txn"
                }
            }
            Request::Compact(_) => "compact",
            Request::LeaseGrant(_) => "lease grant",
            Request::LeaseRevoke(_) => "lease revoke",
            Request::LeaseKeepAlive(_) => "keep-alive",
            Request::LeaseTimeToLive(_) => "time-to-live",
            Request::LeaseLeases => "leases",
            Request::HashKv(_) => "hashkv",
        };
        kinds.insert(kind);
    }
    for kind in [
        "serializable range",
        "historical range",
        "sorted range",
        "range options",
        "range",
        "put",
        "put with lease",
        "delete",
        "nested txn",
        "cas txn",
        "multi-op txn",
        "compact",
        "lease grant",
        "lease revoke",
        "keep-alive",
        "time-to-live",
        "leases",
    ] {
        assert!(kinds.contains(kind), "the default workload has no {kind}");
    }
    assert_eq!(plan.watchers.len(), 2);
    assert!(plan.watchers.iter().all(|w| !w.sessions.is_empty()));
}

#[test]
fn invalid_scenario_names_the_field() {
    let mut scenario = Scenario::default_scenario();
    scenario.zones = 0;
    assert!(scenario.validate().unwrap_err().contains("zones"));
}

#[test]
fn every_scenario_file_is_embedded_under_its_name_and_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("sim/scenarios")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .map(|path| {
            path.file_stem()
                .expect("stem")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    files.sort();
    let mut embedded: Vec<String> = EMBEDDED_SCENARIOS
        .iter()
        .map(|(name, _)| name.to_string())
        .collect();
    embedded.sort();
    assert_eq!(
        files, embedded,
        "sim/scenarios and EMBEDDED_SCENARIOS differ"
    );
    for (name, text) in EMBEDDED_SCENARIOS {
        let on_disk = std::fs::read_to_string(dir.join(format!("{name}.toml"))).expect("file");
        assert_eq!(text, on_disk, "{name}");
        let scenario = Scenario::embedded(name).expect("embedded");
        assert_eq!(scenario.name, name, "a scenario's name is its file name");
        scenario.validate().unwrap();
    }
    assert_eq!(
        Scenario::embedded("default"),
        Some(Scenario::default_scenario())
    );
    assert_eq!(Scenario::embedded("no-such-scenario"), None);
}

/// The operator's schedule: a scale cycle is add, add, remove, remove in that order; every
/// step lies in the first 80% of the workload, in time order; it has its own stream (the
/// faults do not move), and a scenario without `[membership]` plans none.
#[test]
fn membership_steps_follow_the_mix_in_time_order() {
    let scale = Scenario::embedded("scale").expect("embedded");
    let plan = Plan::generate(3, &scale);
    let actions: Vec<MembershipAction> = plan.membership.iter().map(|s| s.action).collect();
    let lifecycle: Vec<MembershipAction> = actions
        .iter()
        .copied()
        .filter(|a| !matches!(a, MembershipAction::TransferLeader { .. }))
        .collect();
    assert_eq!(
        lifecycle,
        [
            MembershipAction::AddMember,
            MembershipAction::AddMember,
            MembershipAction::RemoveMember,
            MembershipAction::RemoveMember
        ]
    );
    assert_eq!(actions.len(), 5, "{actions:?}");
    assert!(plan.membership.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    assert!(plan
        .membership
        .iter()
        .all(|s| s.at_ms <= scale.workload_duration_ms * 8 / 10));
    let mut without = scale.clone();
    without.membership = MembershipMix::default();
    assert_eq!(Plan::generate(3, &without).faults, plan.faults);
    assert!(Plan::generate(3, &without).membership.is_empty());
    let replace = Scenario::embedded("member-replace").expect("embedded");
    let replaced = Plan::generate(3, &replace);
    assert!(replaced.membership.iter().any(|s| matches!(
        s.action,
        MembershipAction::Replace { member } if (1..=3).contains(&member)
    )));
}

/// A promise of writes during a zone loss is refused where a zone loss takes the quorum.
#[test]
fn a_zone_loss_promise_needs_a_quorum_outside_every_zone() {
    let five = Scenario::embedded("five-voters-three-zones").expect("embedded");
    assert!(five.writes_promised_during_zone_loss);
    five.validate()
        .expect("2 + 2 + 1: any zone lost leaves 3 of 5");
    let mut four = five.clone();
    four.members = 4;
    four.zones = 2;
    let error = four
        .validate()
        .expect_err("2 + 2: a lost zone leaves 2 of 4, no quorum");
    assert!(
        error.contains("writes_promised_during_zone_loss"),
        "{error}"
    );
}

// Issue 13: the aimed-crashes scenario draws every crash moment, and only it draws aimed
// crashes (the other scenarios' schedules must not change).
#[test]
fn aimed_crashes_scenario_draws_every_moment_and_only_it() {
    let scenario = Scenario::embedded("aimed-crashes").expect("embedded");
    let mut moments = std::collections::BTreeSet::new();
    for seed in 0..50 {
        for window in Plan::generate(seed, &scenario).faults {
            if let Fault::AimedCrash { moment, .. } = window.fault {
                moments.insert(format!("{moment:?}"));
            }
        }
    }
    assert_eq!(moments.len(), 4, "{moments:?}");
    for (name, _) in super::EMBEDDED_SCENARIOS {
        let scenario = Scenario::embedded(name).expect("embedded");
        if name != "aimed-crashes" {
            assert_eq!(scenario.faults.aimed_crash_weight, 0, "{name}");
        }
    }
}
