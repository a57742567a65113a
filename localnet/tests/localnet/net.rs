//! A `btlocalnet` process for tests: spawned on a free port, killed on drop.
//!
//! `SLIVER_LOCALNET_URL` points the tests at a chain that is already running instead (then
//! nothing is spawned or killed).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a spawned chain may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running local chain.
pub struct LocalNet {
    child: Option<Child>,
    /// `ws://127.0.0.1:PORT`.
    pub url: String,
}

impl LocalNet {
    /// Spawns `btlocalnet --port 0 ARGS...` and waits for its `listening on` line.
    ///
    /// # Panics
    /// When the binary does not start or print its address in time.
    pub fn spawn(args: &[&str]) -> Self {
        if let Ok(url) = std::env::var("SLIVER_LOCALNET_URL") {
            return Self { child: None, url };
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_btlocalnet"))
            .args(["--port", "0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning btlocalnet");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let url = match rx.recv_timeout(START_TIMEOUT) {
            Ok(url) => url,
            Err(e) => {
                let _ = child.kill();
                panic!("btlocalnet did not print its address within {START_TIMEOUT:?}: {e}");
            }
        };
        Self {
            child: Some(child),
            url,
        }
    }
}

impl Drop for LocalNet {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
