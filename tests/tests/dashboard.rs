//! The validator's dashboard in a real browser: a short local subnet (`btlocalnet`, a filesystem
//! store, a validator and two miners, as processes), then headless Chromium loads the page from
//! the validator's metrics port, runs its script and dumps the DOM; what it shows is checked
//! against the validator's record (`epochs.jsonl`): each scored epoch's held-out loss, the tokens
//! trained, every miner's uid on the stage map, and each miner's verdict.
//!
//! Chromium is a test dependency: `scripts/test` installs it (`SLIVER_WANT_CHROMIUM=1` in
//! `scripts/setup.sh`); `SLIVER_CHROMIUM` names another binary. With
//! `SLIVER_DASHBOARD_SCREENSHOT=PATH` the test waits for three scored epochs and saves a
//! screenshot there too (how `docs/dashboard.png` was made).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::short_run;
use sliver_launcher::localnet::{Localnet, Options};
use sliver_validator::record;

/// How long the browser may take to load, run and dump the page.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);

fn options(dir: &Path, epochs: u64) -> Options {
    let spec = short_run::spec("dashboard-test", &[[0, 1], [1, 2]], 1);
    Options {
        epochs,
        ..short_run::options(dir, short_run::write(dir, &spec))
    }
}

/// The Chromium binary: `SLIVER_CHROMIUM`, else the first of the usual names on `PATH`.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("SLIVER_CHROMIUM").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "no Chromium for the dashboard test: run it through scripts/test, which installs it \
         (SLIVER_WANT_CHROMIUM=1 source scripts/setup.sh), or set SLIVER_CHROMIUM"
    );
}

/// Runs headless Chromium on `url` with `args` (`--dump-dom`, `--screenshot=...`), its
/// profile in `profile`, bounded by [`BROWSER_TIMEOUT`]; returns its stdout.
fn browse(chromium: &Path, profile: &Path, url: &str, args: &[String]) -> String {
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--disable-extensions",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", chromium.display()));
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} did not finish within {BROWSER_TIMEOUT:?}",
                chromium.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}",
        chromium.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text of the DOM from the element whose id is `id` to the end of its section.
fn section<'a>(dom: &'a str, id: &str) -> &'a str {
    let from = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the DOM:\n{dom}"));
    let rest = &dom[from..];
    &rest[..rest.find("</section>").unwrap_or(rest.len())]
}

/// The table row whose opening tag is `<tr {attrs}>`, to its `</tr>`.
fn row<'a>(dom: &'a str, attrs: &str) -> Option<&'a str> {
    let from = dom.find(&format!("<tr {attrs}>"))?;
    let rest = &dom[from..];
    Some(&rest[..rest.find("</tr>")?])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_validators_record_in_a_browser() {
    let chromium = chromium();
    let screenshot = std::env::var_os("SLIVER_DASHBOARD_SCREENSHOT").map(PathBuf::from);
    let _serial = crate::swarm::SERIAL.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let epochs = if screenshot.is_some() { 6 } else { 3 };
    let mut net = Localnet::start(options(tmp.path(), epochs)).await.unwrap();
    let url = net.dashboard_url().expect("the validator's dashboard");
    let wait = if screenshot.is_some() { 3 } else { 1 };
    for _ in 0..wait {
        net.next_report(Duration::from_secs(120))
            .unwrap_or_else(|| {
                panic!(
                    "no epoch scored (logs in {})",
                    net.dir().join("logs").display()
                )
            });
    }

    let profile = tmp.path().join("chromium");
    let dom = browse(&chromium, &profile, &url, &["--dump-dom".to_owned()]);
    // What the validator recorded, read after the page: every epoch the page shows is in it.
    let records = record::read(&record::path(&net.dir().join("neurons/validator"))).unwrap();
    assert!(!records.is_empty());
    assert!(
        dom.contains("data-loaded=\"1\""),
        "the script did not run:\n{dom}"
    );
    assert!(dom.contains("dashboard-test"), "no run name:\n{dom}");

    // The held-out loss of each scored epoch on the page is the record's, to four places.
    let losses = section(&dom, "loss-table");
    let mut shown = Vec::new();
    for r in &records {
        let Some(tr) = row(losses, &format!("data-epoch=\"{}\"", r.epoch)) else {
            continue;
        };
        let loss = r.eval_loss.map_or("–".to_owned(), |l| format!("{l:.4}"));
        assert!(
            tr.contains(&format!("<td class=\"loss\">{loss}</td>")),
            "epoch {} shows no loss {loss}: {tr}",
            r.epoch
        );
        shown.push(r);
    }
    let first = &records[0];
    assert!(
        shown.iter().any(|r| r.epoch == first.epoch),
        "the first scored epoch {} is not on the page:\n{losses}",
        first.epoch
    );
    assert!(first.eval_loss.is_some(), "{first:?}");

    // Tokens trained: every shown epoch's finished samples × the tokens in a sample.
    let per_sample = (net.spec.optimizer.batch_size * net.spec.model.seq_len) as u64;
    let tokens: u64 = shown.iter().map(|r| r.paths * per_sample).sum();
    assert!(tokens > 0);
    assert!(
        dom.contains(&format!("data-value=\"{tokens}\"")),
        "tokens trained is not {tokens}:\n{}",
        section(&dom, "tokens-trained")
    );

    // The stage map lists every miner of the latest shown epoch by uid, in its stage.
    let latest = shown.iter().max_by_key(|r| r.epoch).unwrap();
    let map = section(&dom, "stage-map");
    for m in &latest.miners {
        let stage = format!("data-stage=\"{}\"", m.stage.0);
        let at = map
            .find(&stage)
            .unwrap_or_else(|| panic!("no stage {} on the map:\n{map}", m.stage));
        let card = format!("data-uid=\"{}\"", m.uid);
        assert!(
            map[at..].contains(&card) && map.contains(&format!("uid {} · share", m.uid)),
            "uid {} is not on the stage map:\n{map}",
            m.uid
        );
    }
    for slot in &net.miners {
        assert!(
            latest.miners.iter().any(|m| m.uid == slot.uid.0),
            "miner uid {} is not on the roster of epoch {}",
            slot.uid.0,
            latest.epoch
        );
    }

    // Each miner's verdict of the first epoch: paid, or the reasons it was caught.
    let scores = section(&dom, "scores");
    for m in &first.miners {
        let tr = row(
            scores,
            &format!("data-epoch=\"{}\" data-uid=\"{}\"", first.epoch, m.uid),
        )
        .unwrap_or_else(|| panic!("no score row for uid {}:\n{scores}", m.uid));
        let verdict = if m.caught.is_empty() {
            "<td class=\"l\">paid</td>".to_owned()
        } else {
            format!("<td class=\"l why\">{}</td>", m.caught.join(", "))
        };
        assert!(tr.contains(&verdict), "uid {}: {tr}", m.uid);
    }

    // Bytes moved per epoch, as recorded.
    let moved = section(&dom, "bytes-table");
    let tr = row(moved, &format!("data-epoch=\"{}\"", first.epoch)).unwrap();
    let title = format!("title=\"{} bytes\"", group_thousands(first.bytes_moved));
    assert!(tr.contains(&title), "{title}: {tr}");

    if let Some(png) = screenshot {
        browse(
            &chromium,
            &profile,
            &url,
            &[
                format!("--screenshot={}", png.display()),
                "--window-size=1280,900".to_owned(),
                "--hide-scrollbars".to_owned(),
            ],
        );
        assert!(png.is_file(), "no screenshot at {}", png.display());
    }
    net.stop();
}

/// `n` with commas between groups of three digits, as the page's `toLocaleString("en-US")`.
fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
