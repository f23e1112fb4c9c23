//! The HTML report opens in a real browser and shows the failing operations (issue 4's proof).
//!
//! A run with the planted stale-follower-read bug fails; its report is rendered exactly as
//! `dst fuzz` / `dst replay --html` write it, opened in headless Chromium (Debian's `chromium`
//! package), and checked twice: the DOM Chromium built names the failing operations and the
//! failure, and the screenshot is a real picture (decoded: many colors, the red failure
//! banner on screen). Without Chromium this test FAILS, naming the package to install.
#![cfg(madsim)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use faultline_node::Canary;
use faultline_sim::plan::{Plan, Scenario};
use faultline_sim::report::render_run_report;
use faultline_sim::run_plan;
use faultline_sim::runner::RunOptions;
use faultline_sim::verdict::{FailureKind, Verdict, LINEARIZABILITY_BUDGET_STEPS};

/// Seeds tried to find a failing run of the canary (README: it fails at seed 0 or 1).
const SEED_BUDGET: u64 = 20;
/// A guard against a browser that never exits; not a speed assertion.
const BROWSER_GUARD: Duration = Duration::from_secs(120);
/// The failure banner's background (`.banner.fail` in invariants/src/html.rs).
const BANNER_RGB: [u8; 3] = [0xfd, 0xe2, 0xe1];

fn find_chromium() -> PathBuf {
    const INSTALL: &str =
        "Install it with `apt-get install chromium` (Debian; .ci/run installs it)";
    if let Some(path) = std::env::var_os("FAULTLINE_CHROMIUM") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "FAULTLINE_CHROMIUM={} is not a file. {INSTALL}",
            path.display()
        );
        return path;
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!("chromium not found on PATH (nor FAULTLINE_CHROMIUM): the HTML report test needs it. {INSTALL}");
}

/// Run headless Chromium on `html` with one extra argument (`--screenshot=...` or
/// `--dump-dom`), in a fresh profile; returns its stdout.
fn chromium(browser: &Path, work: &Path, html: &Path, extra: &str, profile: &str) -> String {
    let profile = work.join(profile);
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.display()),
            "--window-size=1400,900",
            extra,
            &format!("file://{}", html.display()),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", browser.display()));
    // Read stdout on a thread so a large DOM cannot fill the pipe while we wait.
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).expect("read chromium stdout");
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if started.elapsed() > BROWSER_GUARD {
            let _ = child.kill();
            panic!("chromium {extra} did not exit within {BROWSER_GUARD:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = reader.join().expect("reader thread");
    let mut err = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
    }
    assert!(
        status.success(),
        "chromium {extra} failed ({status}):\n{err}"
    );
    out
}

#[test]
fn the_report_of_a_failing_run_shows_the_failing_operations_in_chromium() {
    let browser = find_chromium();
    let scenario = Scenario::default_scenario();
    let options = RunOptions {
        canary: Some(Canary::StaleFollowerRead),
    };
    let (plan, result, output) = (0..SEED_BUDGET)
        .find_map(|seed| {
            let plan = Plan::generate(seed, &scenario);
            let (result, output) = run_plan(&plan, &options);
            match &result.verdict {
                Verdict::Fail {
                    kind: FailureKind::NotLinearizable,
                    ..
                } => Some((plan, result, output.expect("a failing run has a history"))),
                _ => None,
            }
        })
        .unwrap_or_else(|| panic!("the canary did not fail within {SEED_BUDGET} seeds"));

    // What the page must show: the checker's own findings for this history.
    let verdict =
        faultline_invariants::check_etcd_history(&output.history, LINEARIZABILITY_BUDGET_STEPS);
    let report = verdict.report().expect("the history is not linearizable");
    let mut failing: Vec<u64> = report.unplaceable.iter().map(|u| u.id).collect();
    failing.extend(report.stale_reads.iter().map(|s| s.op.id));
    assert!(
        !failing.is_empty(),
        "the report names no operation:\n{verdict}"
    );

    let html = render_run_report(
        &plan,
        &output,
        &result.verdict,
        &format!("seed {} with canary stale-follower-read", plan.seed),
        vec![format!("trace hash: {:016x}", result.trace_hash)],
    );
    let work = std::env::temp_dir().join(format!("faultline-html-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("temp dir");
    let page = work.join("report.html");
    std::fs::write(&page, &html).expect("write report");
    let png_path = work.join("report.png");

    // The DOM as Chromium parsed it.
    let dom = chromium(&browser, &work, &page, "--dump-dom", "profile-dom");
    assert!(
        dom.len() > 10_000,
        "Chromium dumped only {} bytes",
        dom.len()
    );
    for id in &failing {
        assert!(
            dom.contains(&format!(r#"id="op-{id}""#)),
            "op {id} (named by the checker) has no bar in the DOM"
        );
        assert!(
            dom.contains(&format!(r##"href="#op-{id}""##)),
            "op {id} is not listed in a table"
        );
    }
    for words in [
        "NOT LINEARIZABLE",
        "cannot be placed",
        "Around the failure",
        "A lane is one client incarnation",
    ] {
        assert!(dom.contains(words), "the page does not say {words:?}");
    }
    if !report.stale_reads.is_empty() {
        assert!(dom.contains("Stale reads"), "no stale-read table");
    }
    assert!(
        dom.contains("leader m"),
        "no leader change drawn from the trace"
    );

    // The picture: a real screenshot, not a blank or single-color page.
    chromium(
        &browser,
        &work,
        &page,
        &format!("--screenshot={}", png_path.display()),
        "profile-png",
    );
    let bytes = std::fs::read(&png_path).expect("chromium wrote no screenshot");
    assert!(
        bytes.len() > 10_000,
        "screenshot is only {} bytes",
        bytes.len()
    );
    let decoder = png::Decoder::new(std::io::Cursor::new(&bytes));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).expect("a PNG frame");
    assert_eq!((info.width, info.height), (1400, 900), "window size");
    let channels = info.color_type.samples();
    assert!(
        channels >= 3 && info.bit_depth == png::BitDepth::Eight,
        "{info:?}"
    );
    let mut colors = std::collections::BTreeSet::new();
    let mut banner_pixels = 0usize;
    for px in pixels[..info.buffer_size()].chunks(channels) {
        colors.insert([px[0], px[1], px[2]]);
        if px[..3] == BANNER_RGB {
            banner_pixels += 1;
        }
    }
    let total = (info.width * info.height) as usize;
    assert!(colors.len() > 50, "only {} colors on screen", colors.len());
    // The banner is about 1300 x 70 px at the top: a few percent of the screen.
    assert!(
        banner_pixels * 100 > total,
        "the red failure banner is not on screen ({banner_pixels} of {total} pixels)"
    );
    println!(
        "seed {}: report {} bytes, screenshot {} bytes, {} colors, banner {:.1}% of the screen; \
         failing ops {failing:?}",
        plan.seed,
        html.len(),
        bytes.len(),
        colors.len(),
        banner_pixels as f64 * 100.0 / total as f64
    );
    std::fs::remove_dir_all(&work).expect("clean up the temp dir");
}
