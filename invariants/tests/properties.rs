//! Property: histories produced by running a sequential reference on random concurrent
//! schedules are always accepted.

use faultline_invariants::check_etcd_history;
use faultline_invariants::formats::{check_kv_ops, check_register_ops, KvOp, RegisterOp};
use faultline_invariants::linearizability::{Op, Verdict, NEVER};
use faultline_invariants::models::kv::{KvInput, KvOutput};
use faultline_invariants::models::register::{RegisterInput, RegisterOutput};
use faultline_invariants::testkit::{generate_etcd_history, GenOptions, Rng};
use proptest::prelude::*;

/// Random register/kv schedule: each op takes effect at a random instant inside its interval
/// (or, for unknown writes, maybe later or never).
fn schedule(seed: u64, clients: u64, n: usize) -> Vec<(u64, u64, u64, Option<u64>, bool)> {
    let mut rng = Rng::new(seed);
    let mut free = vec![0u64; clients as usize];
    let mut out = Vec::new();
    for _ in 0..n {
        let c = rng.below(clients);
        let call = free[c as usize] + rng.below(5);
        let lat = 1 + rng.below(20);
        let unknown = rng.percent(10);
        let effect = if unknown {
            rng.percent(50).then(|| call + rng.below(3 * lat))
        } else {
            Some(call + rng.below(lat))
        };
        free[c as usize] = call + lat + 1;
        out.push((c, call, call + lat, effect, unknown));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn generated_etcd_histories_are_linearizable(
        seed in any::<u64>(), clients in 1u64..6, ops in 1usize..80,
        unknown in 0u64..25, serializable in 0u64..40,
    ) {
        let h = generate_etcd_history(&GenOptions {
            seed, clients, ops, keys: 3, unknown_percent: unknown,
            serializable_percent: serializable, leases_and_compaction: true, latency_ns: 1_000_000,
        });
        let v = check_etcd_history(&h, 2_000_000);
        prop_assert!(!v.is_not_linearizable(), "{}", v);
        prop_assert_eq!(v, Verdict::Linearizable);
    }

    #[test]
    fn generated_register_histories_are_linearizable(
        seed in any::<u64>(), clients in 1u64..6, n in 1usize..40,
    ) {
        let sched = schedule(seed, clients, n);
        let mut rng = Rng::new(seed ^ 1);
        let inputs: Vec<RegisterInput> = (0..n).map(|_| match rng.below(3) {
            0 => RegisterInput::Read,
            1 => RegisterInput::Write(rng.below(4) as i64),
            _ => RegisterInput::Cas(rng.below(4) as i64, rng.below(4) as i64),
        }).collect();
        let mut order: Vec<usize> = (0..n).filter(|&i| sched[i].3.is_some()).collect();
        order.sort_by_key(|&i| (sched[i].3, i));
        let mut state: Option<i64> = None;
        let mut outputs = vec![None; n];
        for i in order {
            outputs[i] = Some(match inputs[i] {
                RegisterInput::Read => RegisterOutput::Read(state),
                RegisterInput::Write(v) => { state = Some(v); RegisterOutput::Write }
                RegisterInput::Cas(a, b) => {
                    let ok = state == Some(a);
                    if ok { state = Some(b) }
                    RegisterOutput::Cas(ok)
                }
            });
        }
        let ops: Vec<RegisterOp> = (0..n).filter_map(|i| {
            let (c, call, ret, _, unknown) = sched[i];
            if unknown && inputs[i] == RegisterInput::Read { return None; }
            Some(Op { id: i as u64, client: c, call, ret: if unknown { NEVER } else { ret },
                input: inputs[i], output: if unknown { None } else { outputs[i] } })
        }).collect();
        prop_assert_eq!(check_register_ops(&ops, 1_000_000), Verdict::Linearizable);
    }

    #[test]
    fn generated_kv_histories_are_linearizable(
        seed in any::<u64>(), clients in 1u64..6, n in 1usize..60,
    ) {
        let sched = schedule(seed, clients, n);
        let mut rng = Rng::new(seed ^ 2);
        let inputs: Vec<KvInput> = (0..n).map(|i| {
            let key = rng.below(3).to_string();
            match rng.below(3) {
                0 => KvInput::Get { key },
                1 => KvInput::Put { key, value: format!("p{i} ") },
                _ => KvInput::Append { key, value: format!("a{i} ") },
            }
        }).collect();
        let mut order: Vec<usize> = (0..n).filter(|&i| sched[i].3.is_some()).collect();
        order.sort_by_key(|&i| (sched[i].3, i));
        let mut map = std::collections::BTreeMap::<String, String>::new();
        let mut outputs = vec![None; n];
        for i in order {
            let v = map.entry(inputs[i].key().to_string()).or_default();
            outputs[i] = Some(match &inputs[i] {
                KvInput::Get { .. } => KvOutput::Get(v.clone()),
                KvInput::Put { value, .. } => { *v = value.clone(); KvOutput::Ok }
                KvInput::Append { value, .. } => { v.push_str(value); KvOutput::Ok }
            });
        }
        let ops: Vec<KvOp> = (0..n).filter_map(|i| {
            let (c, call, ret, _, unknown) = sched[i];
            if unknown && matches!(inputs[i], KvInput::Get { .. }) { return None; }
            Some(Op { id: i as u64, client: c, call, ret: if unknown { NEVER } else { ret },
                input: inputs[i].clone(), output: if unknown { None } else { outputs[i].clone() } })
        }).collect();
        prop_assert_eq!(check_kv_ops(&ops, 1_000_000), Verdict::Linearizable);
    }
}
