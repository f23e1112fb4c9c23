//! Drawing a seed's scenario from the default's `[swarm]` (`plan::Swarm`), on its own stream.

use std::collections::BTreeMap;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::fault_mix::{fault_kind_names, weights_of, with_weights};
use super::scenario::Scenario;
use super::swarm::{Swarm, SwarmFault, SwarmProfile};

fn draw_range<T: rand::distr::uniform::SampleUniform + PartialOrd + Copy>(
    rng: &mut ChaCha8Rng,
    (min, max): (T, T),
) -> T {
    rng.random_range(min..=max)
}

fn draw_from<T: Copy>(rng: &mut ChaCha8Rng, list: &[T]) -> T {
    list[rng.random_range(0..list.len())]
}

impl Swarm {
    /// Refuse a swarm that cannot draw a valid scenario, naming the knob.
    pub fn validate(&self, base: &Scenario) -> Result<(), String> {
        let known = fault_kind_names(&base.faults);
        if let Some(unknown) = self.faults.keys().find(|k| !known.contains(k)) {
            return Err(format!(
                "swarm.faults: {unknown:?} is no fault kind (known: {})",
                known.join(", ")
            ));
        }
        let checks: [(bool, &str); 9] = [
            (
                !self.fault_timing_ms.is_empty()
                    && self.fault_timing_ms.iter().all(|t| {
                        t.gap.0 >= 1 && t.gap.0 <= t.gap.1 && t.duration.0 <= t.duration.1
                    }),
                "swarm.fault_timing_ms must list gap and duration ranges [min, max], gaps >= 1 ms",
            ),
            (
                !self.members.is_empty() && self.members.iter().all(|m| (1..=9).contains(m)),
                "swarm.members must list sizes in 1..=9",
            ),
            (self.zones_max >= 1, "swarm.zones_max must be >= 1"),
            (
                self.election_timeout_ticks.0 <= self.election_timeout_ticks.1,
                "swarm.election_timeout_ticks must be [min, max]",
            ),
            (
                self.election_to_heartbeat_ratio.0 >= 2
                    && self.election_to_heartbeat_ratio.0 <= self.election_to_heartbeat_ratio.1
                    && self.election_timeout_ticks.0 >= self.election_to_heartbeat_ratio.1,
                "swarm.election_to_heartbeat_ratio must be [min >= 2, max <= election ticks]",
            ),
            (
                !self.max_entries_per_append.is_empty()
                    && self.max_entries_per_append.iter().all(|&n| n >= 1),
                "swarm.max_entries_per_append must list values >= 1",
            ),
            (
                self.fault_kinds.0 >= 1 && self.fault_kinds.0 <= self.fault_kinds.1,
                "swarm.fault_kinds must be [min >= 1, max]",
            ),
            (
                self.fault_weight.0 >= 1
                    && self.fault_weight.0 <= self.fault_weight.1
                    && self
                        .faults
                        .values()
                        .all(|f| f.weight.is_none_or(|(min, max)| min >= 1 && min <= max)),
                "swarm.fault_weight (and each kind's weight) must be [min >= 1, max]",
            ),
            (
                !self.workloads.is_empty() && self.workloads.iter().all(|w| w.weight >= 1),
                "swarm.workloads must list profiles of weight >= 1",
            ),
        ];
        if let Some((_, message)) = checks.iter().find(|(ok, _)| !ok) {
            return Err(message.to_string());
        }
        self.validate_profiles(base)
    }

    fn validate_profiles(&self, base: &Scenario) -> Result<(), String> {
        if self.profiles.iter().map(|p| p.percent).sum::<u32>() > 100 {
            return Err("swarm.profiles: percents add up to more than 100".to_string());
        }
        for profile in &self.profiles {
            let narrowed = profile.narrow(self);
            let fits = |kind: &String| {
                narrowed.faults.get(kind).is_some_and(|f| {
                    f.late_percent == 0
                        && f.min_zones <= 1
                        && narrowed.members.iter().all(|&m| m >= f.min_members)
                })
            };
            let at_most = profile.kinds.len() as u32 <= narrowed.fault_kinds.0;
            if profile.name.is_empty() || !profile.kinds.iter().all(fits) || !at_most {
                return Err(format!(
                    "swarm.profiles: {:?} needs a name, and kinds of the swarm (not drawn late) \
                     that fit its members, no more of them than fault_kinds' min",
                    profile.name
                ));
            }
            narrowed
                .validate(base)
                .map_err(|e| format!("swarm.profiles {:?}: {e}", profile.name))?;
        }
        Ok(())
    }

    /// The profile a seed draws (on its own stream, `plan::stream(seed, "swarm/profile")`),
    /// if any: each profile in `percent` of the seeds.
    pub fn draw_profile(&self, rng: &mut ChaCha8Rng) -> Option<&SwarmProfile> {
        if self.profiles.is_empty() {
            return None;
        }
        let mut pick = rng.random_range(0..100);
        self.profiles.iter().find(|p| {
            if pick < p.percent {
                true
            } else {
                pick -= p.percent;
                false
            }
        })
    }

    /// The scenario this seed runs when it drew `profile`: the profile's ranges in place of
    /// the swarm's, its kinds in every subset, and its name in the drawn scenario.
    pub fn draw_in(
        &self,
        rng: &mut ChaCha8Rng,
        base: &Scenario,
        profile: Option<&SwarmProfile>,
    ) -> Scenario {
        let Some(profile) = profile else {
            return self.draw(rng, base);
        };
        let mut drawn = profile.narrow(self).draw_with(rng, base, &profile.kinds);
        drawn.swarm_profile = Some(profile.name.clone());
        drawn
    }

    /// The scenario this seed runs: `base` with what the swarm draws, and no swarm.
    pub fn draw(&self, rng: &mut ChaCha8Rng, base: &Scenario) -> Scenario {
        self.draw_with(rng, base, &[])
    }

    /// `draw`, with `always` in the fault subset.
    fn draw_with(&self, rng: &mut ChaCha8Rng, base: &Scenario, always: &[String]) -> Scenario {
        let mut drawn = base.clone();
        drawn.swarm = None;
        drawn.members = draw_from(rng, &self.members);
        drawn.zones = rng.random_range(1..=drawn.members.min(self.zones_max));
        drawn.election_timeout_ticks = draw_range(rng, self.election_timeout_ticks);
        let ratio = draw_range(rng, self.election_to_heartbeat_ratio);
        drawn.heartbeat_interval_ticks = (drawn.election_timeout_ticks / ratio).max(1);
        drawn.max_entries_per_append = draw_from(rng, &self.max_entries_per_append);
        drawn.faults = with_weights(&base.faults, &self.draw_faults(rng, &drawn, always));
        let timing = draw_from(rng, &self.fault_timing_ms);
        (drawn.faults.gap_ms, drawn.faults.duration_ms) = (timing.gap, timing.duration);
        self.draw_workload(rng, &mut drawn);
        if self.buggify_percent > 0 {
            drawn.buggify = rng.random_range(0..100) < self.buggify_percent;
        }
        let late = self.draw_late_faults(rng, &drawn);
        if !late.is_empty() {
            let mut weights = weights_of(&drawn.faults);
            weights.extend(late);
            drawn.faults = with_weights(&drawn.faults, &weights);
        }
        drawn
    }

    /// The kinds drawn last (`SwarmFault::late_percent`), each on its own chance.
    fn draw_late_faults(&self, rng: &mut ChaCha8Rng, drawn: &Scenario) -> BTreeMap<String, u32> {
        let mut late = BTreeMap::new();
        for (kind, fault) in &self.faults {
            let fits = drawn.members >= fault.min_members && drawn.zones >= fault.min_zones;
            if fault.late_percent == 0 || !fits {
                continue;
            }
            if rng.random_range(0..100) < fault.late_percent {
                let weight = draw_range(rng, fault.weight.unwrap_or(self.fault_weight));
                late.insert(kind.clone(), weight);
            }
        }
        late
    }

    /// A random subset of the kinds that fit the drawn cluster, each with a random weight.
    /// The kinds of `always` come first (a profile's: checked to fit by `validate`), then
    /// the others.
    fn draw_faults(
        &self,
        rng: &mut ChaCha8Rng,
        drawn: &Scenario,
        always: &[String],
    ) -> BTreeMap<String, u32> {
        let mut fitting: Vec<(&String, &SwarmFault)> = self
            .faults
            .iter()
            .filter(|(kind, _)| always.contains(kind))
            .collect();
        let first = fitting.len();
        fitting.extend(
            self.faults
                .iter()
                .filter(|(_, f)| drawn.members >= f.min_members && drawn.zones >= f.min_zones)
                .filter(|(kind, f)| f.late_percent == 0 && !always.contains(kind)),
        );
        let count = draw_range(rng, self.fault_kinds).min(fitting.len() as u32) as usize;
        // Sampling without replacement, each kind by its odds: the first `count` kinds are
        // the subset.
        for i in first..count {
            let total: u32 = fitting[i..].iter().map(|(_, f)| f.odds).sum();
            let mut pick = rng.random_range(0..total);
            let j = i + fitting[i..]
                .iter()
                .position(|(_, f)| {
                    if pick < f.odds {
                        true
                    } else {
                        pick -= f.odds;
                        false
                    }
                })
                .expect("pick < total");
            fitting.swap(i, j);
        }
        fitting[..count]
            .iter()
            .map(|(kind, fault)| {
                let weight = draw_range(rng, fault.weight.unwrap_or(self.fault_weight));
                ((*kind).clone(), weight)
            })
            .collect()
    }

    fn draw_workload(&self, rng: &mut ChaCha8Rng, drawn: &mut Scenario) {
        let total: u32 = self.workloads.iter().map(|w| w.weight).sum();
        let mut pick = rng.random_range(0..total);
        let workload = self
            .workloads
            .iter()
            .find(|w| {
                if pick < w.weight {
                    true
                } else {
                    pick -= w.weight;
                    false
                }
            })
            .expect("pick < total");
        drawn.workload = workload.profile;
        drawn.keys = workload.keys.unwrap_or(drawn.keys);
        drawn.watchers = workload.watchers.unwrap_or(drawn.watchers);
        drawn.think_time_ms_max = workload
            .think_time_ms_max
            .unwrap_or(drawn.think_time_ms_max);
        drawn.lease_ttl_seconds = workload
            .lease_ttl_seconds
            .unwrap_or(drawn.lease_ttl_seconds);
    }
}

/// One line of what a swarm drew (the knobs `Swarm::draw` sets), for `dst run` and reports.
pub fn describe_drawn(drawn: &Scenario) -> String {
    let faults: Vec<String> = weights_of(&drawn.faults)
        .into_iter()
        .map(|(kind, weight)| format!("{kind} {weight}"))
        .collect();
    format!(
        "swarm drew: {}{} member(s) in {} zone(s), election {} / heartbeat {} ticks, {} entries \
         per append, workload {}, faults [{}] every {:?} ms for {:?} ms{}",
        drawn
            .swarm_profile
            .as_ref()
            .map(|name| format!("profile {name}: "))
            .unwrap_or_default(),
        drawn.members,
        drawn.zones,
        drawn.election_timeout_ticks,
        drawn.heartbeat_interval_ticks,
        drawn.max_entries_per_append,
        serde_json::to_value(drawn.workload)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        faults.join(", "),
        drawn.faults.gap_ms,
        drawn.faults.duration_ms,
        if drawn.buggify { ", BUGGIFY on" } else { "" }
    )
}
