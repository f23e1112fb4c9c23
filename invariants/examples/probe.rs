use faultline_invariants::formats::*;
use faultline_invariants::linearizability::check;
use faultline_invariants::linearizability::TimeUnit;
use faultline_invariants::models::kv::KvModel;
use faultline_invariants::linearizability::Model;
fn main() {
    let f = std::env::args().nth(1).unwrap();
    let text = std::fs::read_to_string(&f).unwrap();
    let ops = parse_porcupine_kv(&text).unwrap();
    for p in KvModel.partition(&ops) {
        let sub: Vec<_> = p.ops.iter().map(|&i| ops[i].clone()).collect();
        let t = std::time::Instant::now();
        let v = check(&KvModel, &sub, 5_000_000, TimeUnit::Position);
        println!("{:?} n={} {:?} {:?}", p.label, sub.len(), match v { faultline_invariants::linearizability::Verdict::Linearizable => "ok", faultline_invariants::linearizability::Verdict::NotLinearizable(_) => "BAD", _ => "unknown"}, t.elapsed());
    }
}
