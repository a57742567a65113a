// pm2 process file for one Sliver miner and one validator:
//
//   pm2 start deploy/pm2/ecosystem.config.js          # from the repository root
//   pm2 logs sliver-miner
//   pm2 save && pm2 startup                           # start them again at boot
//
// Each process reads its flags from an env file (the format deploy/env/*.env.example shows,
// the one compose.yaml and the systemd units read): SLIVER_MINER_ENV and
// SLIVER_VALIDATOR_ENV name them (default deploy/env/miner.env and deploy/env/validator.env).
// Binaries: SLIVER_BIN (default ~/.cache/sliver/target/release, where
// `source scripts/setup.sh && cargo build --release` puts them). State and log files go under
// SLIVER_HOME (default ~/.sliver/pm2/<name>).
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");

const repo = path.resolve(__dirname, "..", "..");
const bin = process.env.SLIVER_BIN || path.join(os.homedir(), ".cache/sliver/target/release");
const home = process.env.SLIVER_HOME || path.join(os.homedir(), ".sliver/pm2");

// KEY=value lines; blank lines and `#` comments skipped; one pair of surrounding quotes dropped.
function readEnv(file) {
  const env = {};
  for (const raw of fs.readFileSync(file, "utf8").split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq < 1) throw new Error(`${file}: not KEY=value: ${line}`);
    let value = line.slice(eq + 1).trim();
    if (/^(".*"|'.*')$/.test(value)) value = value.slice(1, -1);
    env[line.slice(0, eq).trim()] = value;
  }
  return env;
}

function neuron(name, binary, envFile) {
  const env = readEnv(envFile);
  const need = (key) => {
    if (!env[key]) throw new Error(`${envFile}: ${key} is not set`);
    return env[key];
  };
  const dir = path.join(home, name);
  const args = [
    "--netuid", need("SLIVER_NETUID"),
    "--subtensor.network", need("SLIVER_NETWORK"),
    "--wallet.name", need("SLIVER_WALLET"),
    "--wallet.hotkey", need("SLIVER_HOTKEY"),
    "--storage.url", need("SLIVER_STORAGE_URL"),
    "--neuron.dir", path.join(dir, "neuron"),
    "--metrics.port", need("SLIVER_METRICS_PORT"),
    "--logging.logging_dir", path.join(dir, "logs"),
    ...(env.SLIVER_EXTRA_ARGS || "").split(/\s+/).filter(Boolean),
  ];
  return {
    name,
    script: path.join(bin, binary),
    args,
    interpreter: "none",
    cwd: repo,
    env,
    autorestart: true,
    // An outdated release exits at start naming the version to install: retry slowly.
    restart_delay: 30000,
    // SIGTERM, then up to 90 s to stop (the miner saves within 60 s).
    kill_timeout: 90000,
    time: true,
  };
}

const config = path.join(repo, "deploy", "env");
module.exports = {
  apps: [
    neuron("sliver-miner", "btminer",
      process.env.SLIVER_MINER_ENV || path.join(config, "miner.env")),
    neuron("sliver-validator", "btvalidator",
      process.env.SLIVER_VALIDATOR_ENV || path.join(config, "validator.env")),
  ],
};
