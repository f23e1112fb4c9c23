//! The page's tests: escaping, highlighting, open tails, banners, formats, size, ticks.

use super::svg::{RIGHT_PAD_PX, SVG_WIDTH_PX};
use super::text::tick_step;
use super::*;
use crate::history::{Operation, Outcome};
use faultline_api::{
    KeyValue, PutRequest, PutResponse, RangeRequest, RangeResponse, Request, Response,
    ResponseHeader,
};

fn put(id: u64, client: u64, t: (u64, u64), key: &[u8], value: &[u8], rev: i64) -> Operation {
    Operation {
        id,
        client,
        member: Some(1),
        invoke_ns: t.0,
        complete_ns: t.1,
        request: Request::Put(PutRequest {
            key: key.to_vec(),
            value: value.to_vec(),
            ..Default::default()
        }),
        outcome: Outcome::Ok(Response::Put(PutResponse {
            header: ResponseHeader {
                revision: rev,
                ..Default::default()
            },
            prev_kv: None,
        })),
    }
}

fn get(
    id: u64,
    client: u64,
    t: (u64, u64),
    key: &[u8],
    found: Option<(&[u8], i64)>,
    rev: i64,
) -> Operation {
    let kvs: Vec<KeyValue> = found
        .map(|(value, mod_rev)| KeyValue {
            key: key.to_vec(),
            create_revision: 2,
            mod_revision: mod_rev,
            version: mod_rev - 1,
            value: value.to_vec(),
            lease: 0,
        })
        .into_iter()
        .collect();
    Operation {
        id,
        client,
        member: Some(2),
        invoke_ns: t.0,
        complete_ns: t.1,
        request: Request::Range(RangeRequest {
            key: key.to_vec(),
            ..Default::default()
        }),
        outcome: Outcome::Ok(Response::Range(RangeResponse {
            header: ResponseHeader {
                revision: rev,
                ..Default::default()
            },
            count: kvs.len() as i64,
            kvs,
            more: false,
        })),
    }
}

const MS: u64 = 1_000_000;

/// Two writes of a hostile key, then a read that returns the first value after the second
/// write completed: a stale read that cannot be placed.
fn stale_history() -> History {
    let key: &[u8] = b"<script>alert('k')</script>&";
    History {
        ops: vec![
            put(0, 0, (MS, 3 * MS), key, b"v1", 2),
            put(1, 0, (4 * MS, 6 * MS), key, &[0xff, 0x00, b'<'], 3),
            get(2, 1, (7 * MS, 9 * MS), key, Some((b"v1", 2)), 2),
            Operation {
                outcome: Outcome::Unknown("timeout".into()),
                ..put(3, 2, (2 * MS, 5 * MS), b"other", b"x", 0)
            },
        ],
        watches: vec![],
    }
}

#[test]
fn a_stale_read_is_highlighted_escaped_and_listed() {
    let history = stale_history();
    let verdict = crate::check_etcd_history(&history, 100_000);
    assert!(verdict.is_not_linearizable(), "{verdict}");
    let marks = vec![
        TimelineMark {
            at_ns: 2 * MS,
            end_ns: Some(5 * MS),
            kind: MarkKind::Crash,
            label: "crash member <1>".into(),
        },
        TimelineMark {
            at_ns: 6 * MS,
            end_ns: None,
            kind: MarkKind::Leader,
            label: "leader m2 (term 3)".into(),
        },
    ];
    let html = render_report(&history, &verdict, &marks, "stale <test>");
    assert!(html.contains("NOT LINEARIZABLE"), "banner missing");
    assert!(
        html.contains(r#"id="op-2""#),
        "the stale read's bar is missing"
    );
    assert!(
        html.contains(r#"id="w-op-2""#),
        "no window around the failure"
    );
    assert!(html.contains("Stale reads"), "no stale-read table");
    assert!(
        html.contains(r#"class="op k-read o-ok bad""#),
        "stale read not highlighted"
    );
    // The earlier write proves the read stale; the search may also name it as the
    // operation that cannot be placed (then it is drawn as failing, which wins).
    let report = verdict.report().expect("a report");
    let witness_class = if report.unplaceable.iter().any(|u| u.id == 1) {
        "bad"
    } else {
        "witness"
    };
    assert!(
        html.contains(&format!(
            r#"id="op-1" class="op k-write o-ok {witness_class}""#
        )),
        "op 1 not marked {witness_class}: {verdict}"
    );
    assert!(html.contains(r#"<tr class="witness">"#), "no witness row");
    // Every bar, the fault band, the leader line and its label.
    for id in 0..4 {
        assert!(html.contains(&format!(r#"id="op-{id}""#)), "op {id}");
    }
    assert!(html.contains("band m-crash") && html.contains("crash member &lt;1&gt;"));
    assert!(html.contains("mark m-leader") && html.contains("leader m2 (term 3)"));
    // Escaped: no markup from the history or the title reaches the page.
    assert!(!html.contains("<script"), "unescaped key");
    assert!(!html.contains("<test>") && html.contains("stale &lt;test&gt;"));
    assert!(html.contains("&lt;script&gt;alert(&#39;k&#39;)&lt;/script&gt;&amp;"));
    assert!(
        html.contains(r#"b&quot;\xff\x00&lt;&quot;"#),
        "non-UTF-8 value not shown as an escaped byte string"
    );
    // Self-contained: no external resource of any kind.
    for forbidden in ["http://", "https://", "<script", "<link", "@import", "url("] {
        let without_ns = html.replace("http://www.w3.org/2000/svg", "");
        assert!(!without_ns.contains(forbidden), "found {forbidden}");
    }
}

#[test]
fn unknown_outcomes_run_open_ended_to_the_right_edge() {
    let history = stale_history();
    let verdict = crate::check_etcd_history(&history, 100_000);
    let html = render_report(&history, &verdict, &[], "t");
    let right = format!(r#"x2="{:.1}""#, SVG_WIDTH_PX - RIGHT_PAD_PX);
    let tails: Vec<&str> = html
        .match_indices(r#"<line class="tail""#)
        .map(|(i, _)| &html[i..i + 120])
        .collect();
    // One tail per drawing (the window and the overview), for the one unknown op.
    assert_eq!(tails.len(), 2, "{tails:?}");
    assert!(tails.iter().all(|t| t.contains(&right)), "{tails:?}");
    assert!(html.contains(r#"class="op k-write o-unknown""#));
}

#[test]
fn a_passing_history_renders_with_a_linearizable_banner() {
    let mut o = crate::testkit::GenOptions::benchmark(3);
    o.ops = 200;
    o.clients = 4;
    let history = crate::testkit::generate_etcd_history(&o);
    let verdict = crate::check_etcd_history(&history, 1_000_000);
    assert!(verdict.is_linearizable(), "{verdict}");
    let html = render_report(&history, &verdict, &[], "passing");
    assert!(html.contains(r#"<div class="banner pass" id="verdict">LINEARIZABLE"#));
    assert!(!html.contains("NOT LINEARIZABLE") && !html.contains("w-op-"));
    assert_eq!(html.matches(r#"<rect id="op-"#).count(), 200);
    // Deterministic: same input, same bytes.
    assert_eq!(html, render_report(&history, &verdict, &[], "passing"));
}

#[test]
fn an_unknown_verdict_is_not_shown_as_a_pass() {
    let history = stale_history();
    let verdict = Verdict::Unknown {
        reason: "ran out of its budget of 10 steps".into(),
    };
    let html = render_report(&history, &verdict, &[], "u");
    assert!(html.contains("UNKNOWN (not a pass)"));
    assert!(!html.contains("banner pass"));
}

#[test]
fn porcupine_histories_render_with_line_numbers() {
    let text = "{:process 0, :type :invoke, :f :put, :key \"k\", :value \"a\"}\n\
                {:process 0, :type :ok, :f :put, :key \"k\", :value \"a\"}\n\
                {:process 1, :type :invoke, :f :get, :key \"k\", :value nil}\n\
                {:process 1, :type :ok, :f :get, :key \"k\", :value \"b\"}\n";
    let ops = crate::formats::parse_porcupine_kv(text).expect("parse");
    let verdict = crate::formats::check_kv_ops(&ops, 10_000);
    assert!(verdict.is_not_linearizable(), "{verdict}");
    let meta = ReportMeta {
        title: "kv".into(),
        time_unit: TimeUnit::Position,
        notes: vec!["a note".into()],
        text_report: Some("the <text> report".into()),
        lane_owners: Default::default(),
    };
    let html = render_timeline_report(&timeline_from_kv(&ops), &verdict, &[], &meta);
    assert!(html.contains("Operations that cannot be placed"));
    assert!(html.contains("line 3") && html.contains("a note"));
    assert!(html.contains("<pre>the &lt;text&gt; report</pre>"));
    let bad = &verdict.report().expect("report").unplaceable[0];
    assert!(html.contains(&format!(r#"id="op-{}" class="op k-read o-ok bad""#, bad.id)));
}

#[test]
fn large_histories_stay_reasonably_small() {
    let mut o = crate::testkit::GenOptions::benchmark(5);
    o.ops = 30_000;
    let history = crate::testkit::generate_etcd_history(&o);
    let verdict = Verdict::Linearizable;
    let html = render_report(&history, &verdict, &[], "big");
    let per_op = html.len() / o.ops;
    assert!(per_op < 400, "{per_op} bytes per operation");
}

#[test]
fn tick_steps_are_round() {
    assert_eq!(tick_step(10_000_000_000, 10), 1_000_000_000);
    assert_eq!(tick_step(35, 10), 5);
    assert_eq!(tick_step(1, 10), 1);
    assert_eq!(tick_step(u64::MAX, 10), 2_000_000_000_000_000_000);
}

/// A client's incarnations (ids given by the caller) share a labelled group of lanes, in
/// incarnation order, and every page says what a lane is.
#[test]
fn incarnations_of_a_client_are_labelled_and_grouped() {
    // Client 3 continued as client 7 after an unknown outcome; client 5 never did.
    let history = History {
        ops: vec![
            put(0, 3, (MS, 2 * MS), b"a", b"1", 2),
            put(1, 5, (MS, 3 * MS), b"b", b"1", 3),
            put(2, 7, (4 * MS, 5 * MS), b"a", b"2", 4),
        ],
        watches: vec![],
    };
    let owner = |incarnation| LaneOwner {
        name: "client 3".into(),
        order: 3,
        incarnation,
    };
    let meta = ReportMeta {
        title: "incarnations".into(),
        time_unit: TimeUnit::Nanoseconds,
        notes: vec![],
        text_report: None,
        lane_owners: [(3, owner(1)), (7, owner(2))].into_iter().collect(),
    };
    let verdict = crate::check_etcd_history(&history, 100_000);
    let html = render_timeline_report(&timeline_from_history(&history), &verdict, &[], &meta);
    assert!(html.contains(r#"<p id="lanes-note">A lane is one client incarnation"#));
    assert!(html.contains("one lane per client incarnation"));
    assert!(html.contains("from 2 clients in 3 incarnations"), "counts");
    let labels: Vec<&str> = html
        .split(r#"class="lane-label""#)
        .skip(1)
        .map(|rest| {
            let text = &rest[rest.find('>').unwrap() + 1..];
            &text[..text.find('<').unwrap()]
        })
        .collect();
    assert_eq!(labels, ["client 3 #1", "client 3 #2", "client 5"]);
    assert!(
        html.contains("op 2 · client 3 #2 (id 7)"),
        "tooltip names the incarnation"
    );
    // The two lanes of client 3 share their shading; client 5's differs.
    let shading: Vec<bool> = html
        .split(r#"<rect class="lane"#)
        .skip(1)
        .map(|rest| rest.starts_with(" odd"))
        .collect();
    assert_eq!(shading, [false, false, true]);
}
