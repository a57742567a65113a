//! Upgrades through the subnet's version key: `btlocalnet` with a `WeightsVersionKey` above
//! this release's stops `btminer` before it registers, with an error naming the release to
//! install (on the screen and in `--logging.logging_dir`); with this release's own key it goes
//! on (here to the next step, which refuses an unregistered hotkey).

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sliver_chain::wallet::Wallet;
use sliver_subnet::version::{RELEASE, Version};

/// How long one step may take: a chain start, a miner's start-up and exit.
const BOUND: Duration = Duration::from_secs(60);

fn bin(name: &str) -> PathBuf {
    // target/<profile>/deps/<test binary>
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(
        path.exists(),
        "{} not found: `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `btlocalnet` on a free port with subnet 9's `WeightsVersionKey` set to `key`; its URL.
fn chain(key: u64, log: &Path) -> (Killed, String) {
    let mut child = Command::new(bin("btlocalnet"))
        .args(["--port", "0", "--netuid", "9", "--block-time", "100"])
        .args(["--weights-version-key", &key.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Killed(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("listening on ") {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let url = rx.recv_timeout(BOUND).expect("btlocalnet did not start");
    (child, url)
}

/// Runs `btminer` against `url` until it exits (bounded); its exit status and stderr.
fn miner(url: &str, dir: &Path) -> (std::process::ExitStatus, String) {
    let stderr = dir.join("miner.stderr");
    let mut child = Killed(
        Command::new(bin("btminer"))
            .args(["--netuid", "9", "--subtensor.chain_endpoint", url])
            .args(["--wallet.name", "w", "--wallet.hotkey", "h"])
            .arg("--wallet.path")
            .arg(dir.join("wallets"))
            .arg("--neuron.dir")
            .arg(dir.join("neuron"))
            .arg("--logging.logging_dir")
            .arg(dir.join("logs"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + BOUND;
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "btminer did not exit within {BOUND:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    (status, std::fs::read_to_string(stderr).unwrap())
}

#[test]
fn a_newer_version_key_on_chain_stops_an_outdated_miner_naming_the_release() {
    let tmp = tempfile::tempdir().unwrap();
    Wallet::new("w", "h", tmp.path().join("wallets"))
        .unwrap()
        .create_hotkey(false)
        .unwrap();
    let next = Version {
        minor: RELEASE.minor + 1,
        patch: 0,
        ..RELEASE
    };

    let (newer, url) = chain(next.key(), &tmp.path().join("chain-newer.log"));
    let (status, stderr) = miner(&url, tmp.path());
    assert!(!status.success(), "{stderr}");
    let wanted = format!("install Sliver {next} or later");
    assert!(
        stderr.contains("btminer: error:")
            && stderr.contains(&wanted)
            && stderr.contains(&format!("this is Sliver {RELEASE}")),
        "{stderr}"
    );
    // Checked before registering: nothing about registration was reached.
    assert!(!stderr.contains("not registered"), "{stderr}");
    // The log file holds the reason too.
    let logged = std::fs::read_to_string(tmp.path().join("logs/btminer.log")).unwrap();
    assert!(logged.contains(&wanted), "{logged}");
    drop(newer);

    // This release's own key: the check passes and start-up goes on to registration.
    let (_chain, url) = chain(RELEASE.key(), &tmp.path().join("chain-same.log"));
    let (status, stderr) = miner(&url, tmp.path());
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("is not registered on netuid 9") && !stderr.contains("install Sliver"),
        "{stderr}"
    );
}
