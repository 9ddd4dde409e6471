//! The deployment checks: the Kubernetes manifests validated offline, the container image
//! built and run for real.
//!
//! No base image can be pulled in CI, so the image is `FROM scratch` with a static musl
//! `capsule` built here ([`MUSL_TARGET`], profile [`PROFILE`]). The step starts its own
//! Docker daemon (data and exec roots in a fresh folder under `target/image/`, no
//! iptables, no bridge, so the machine's networking is left alone) and stops it by its PID
//! at the end, also when a check fails. `tests/python/test_container.py` then drives the
//! image with the official Python MCP SDK.
//!
//! Docker needs root. Outside CI, a machine where it cannot run gets a clear "NOT RUN" line
//! naming why; with `CI=true` that is an error, never a skip.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cmd;

/// The target of the static binary in the image.
pub const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";
/// The cargo profile of that binary (`[profile.container]` in Cargo.toml).
const PROFILE: &str = "container";
/// The tag the image is built under here.
const IMAGE: &str = "capsule:test";
/// The image's user (Dockerfile `USER`), which `deploy/k8s` runs as too.
const USER: &str = "65532:65532";
/// Debian packages the step needs: the Docker daemon and CLI, and musl's C toolchain for
/// crates with C code (ring).
const APT_PACKAGES: &[&str] = &["docker.io", "musl-tools"];
/// The manifests `kubernetes-validate` checks.
const K8S: &str = "deploy/k8s";
/// The limit of the musl release build, above [`cmd::STEP_TIMEOUT`]: it took 52 minutes on 2
/// cores shared with four other builds (load ~8).
const MUSL_BUILD_TIMEOUT: Duration = Duration::from_secs(75 * 60);
/// How long the daemon may take to answer once started.
const DAEMON_START: Duration = Duration::from_secs(60);
/// How long it may take to stop on SIGTERM before it is killed.
const DAEMON_STOP: Duration = Duration::from_secs(20);

/// Validates `deploy/k8s`, then builds the image and runs its tests with `python` (a venv
/// with the MCP SDK and kubernetes-validate).
pub fn test(root: &Path, python: &Path) -> Result<()> {
    validate_manifests(root, python)?;
    if let Err(why) = prerequisites(root) {
        if cmd::is_ci() {
            return Err(why.context("the container checks cannot run in CI"));
        }
        eprintln!(
            "xtask: NOT RUN: the container checks (image build, stdio and HTTP through docker): \
             {why:#}\n  (CI runs them; with CI=true this is an error)"
        );
        return Ok(());
    }
    let started = Instant::now();
    // Release code of wasmtime and cranelift from scratch: the longest step of CI.
    cmd::run_command_within(
        Command::new(cmd::cargo_program())
            .args(["build", "--locked", "--profile", PROFILE])
            .args(["--target", MUSL_TARGET, "-p", "capsule"])
            .current_dir(root),
        MUSL_BUILD_TIMEOUT,
    )?;
    eprintln!(
        "xtask: static capsule ({MUSL_TARGET}, profile {PROFILE}) built in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    let staging = root.join("target/image");
    std::fs::create_dir_all(&staging)
        .with_context(|| format!("cannot create {}", staging.display()))?;
    let certs = Path::new("/etc/ssl/certs/ca-certificates.crt");
    std::fs::copy(certs, staging.join("ca-certificates.crt")).with_context(|| {
        format!(
            "cannot copy {} into the image's build context; install ca-certificates",
            certs.display()
        )
    })?;

    let daemon = Daemon::start(&staging)?;
    let started = Instant::now();
    cmd::run_command(
        daemon
            .docker(&["build", "--tag", IMAGE, "."])
            .env("DOCKER_BUILDKIT", "0")
            .current_dir(root),
    )?;
    let built = started.elapsed();
    let user = daemon.output(&["image", "inspect", "--format", "{{.Config.User}}", IMAGE])?;
    if user.trim() != USER {
        bail!(
            "the image runs as `{}`, expected the non-root `{USER}` (Dockerfile USER)",
            user.trim()
        );
    }
    let size = daemon.output(&["image", "inspect", "--format", "{{.Size}}", IMAGE])?;
    let size: f64 = size.trim().parse().unwrap_or(0.0);
    eprintln!(
        "xtask: image {IMAGE} built in {:.0}s, {:.1} MiB, user {USER}",
        built.as_secs_f64(),
        size / (1024.0 * 1024.0)
    );
    cmd::run_command(
        Command::new(python)
            .arg("tests/python/test_container.py")
            .current_dir(root)
            .env("DOCKER_HOST", daemon.host())
            .env("CAPSULE_IMAGE", IMAGE)
            .env("CAPSULE_K8S", root.join(K8S)),
    )?;
    daemon.stop()
}

/// `kubernetes-validate --strict` on every manifest, and once on a copy with a misspelt
/// field, which must fail: without `--strict` (or with a broken validator) it would pass.
fn validate_manifests(root: &Path, python: &Path) -> Result<()> {
    let validator = python.with_file_name("kubernetes-validate");
    let dir = root.join(K8S);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    files.retain(|f| f.extension().is_some_and(|e| e == "yaml"));
    files.sort();
    cmd::run_command(Command::new(&validator).arg("--strict").args(&files))
        .context("a manifest in deploy/k8s does not validate (the error above names it)")?;

    let deployment = std::fs::read_to_string(dir.join("deployment.yaml"))
        .context("cannot read deploy/k8s/deployment.yaml")?;
    let misspelt = deployment.replacen("livenessProbe:", "livenesProbe:", 1);
    if misspelt == deployment {
        bail!("deploy/k8s/deployment.yaml has no livenessProbe to misspell for the negative check");
    }
    let bad = root.join("target/image/misspelt-deployment.yaml");
    std::fs::create_dir_all(root.join("target/image"))?;
    std::fs::write(&bad, misspelt).with_context(|| format!("cannot write {}", bad.display()))?;
    let out = Command::new(&validator)
        .arg("--strict")
        .arg(&bad)
        .output()
        .with_context(|| format!("cannot run {}", validator.display()))?;
    let report = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    if out.status.success() || !report.contains("'livenesProbe' was unexpected") {
        bail!(
            "kubernetes-validate --strict accepted a Deployment with `livenesProbe`, so it \
             would not catch a misspelt field in deploy/k8s:\n{report}"
        );
    }
    eprintln!("xtask: kubernetes-validate --strict rejects a misspelt field, as it must");
    Ok(())
}

/// Installs what is missing (the musl target, the apt packages) and checks that a Docker
/// daemon can be started here. The error says what is missing.
fn prerequisites(root: &Path) -> Result<()> {
    let root_user = cmd::output(root, "id", &["-u"])
        .map(|uid| uid.trim() == "0")
        .unwrap_or(false);
    if !root_user {
        bail!("starting a Docker daemon needs root (run as root, or in CI)");
    }
    let missing = ["dockerd", "docker", "musl-gcc"]
        .iter()
        .any(|tool| cmd::output(root, "which", &[tool]).is_err());
    if missing {
        cmd::run(root, "apt-get", &["update", "-qq"])?;
        let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
        args.extend_from_slice(APT_PACKAGES);
        cmd::run_command(
            Command::new("apt-get")
                .args(&args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .current_dir(root),
        )
        .context("cannot install docker.io and musl-tools with apt-get")?;
    }
    let installed = cmd::output(root, "rustup", &["target", "list", "--installed"])
        .context("rustup is needed to install the musl target")?;
    if !installed.lines().any(|l| l.trim() == MUSL_TARGET) {
        cmd::run(root, "rustup", &["target", "add", MUSL_TARGET])?;
    }
    Ok(())
}

/// A Docker daemon of our own; stopped by its PID when dropped.
struct Daemon {
    dir: PathBuf,
    child: Option<Child>,
}

impl Daemon {
    /// Starts `dockerd` with everything under a fresh `parent/dockerd-<pid>` and waits until
    /// it answers.
    fn start(parent: &Path) -> Result<Self> {
        let dir = parent.join(format!("dockerd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let log = dir.join("dockerd.log");
        let log_file =
            File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let path = |name: &str| dir.join(name).display().to_string();
        let mut command = Command::new("dockerd");
        command
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none"])
            .args(["--data-root", &path("data"), "--exec-root", &path("exec")])
            .args(["--pidfile", &path("docker.pid")])
            .args(["-H", &format!("unix://{}", path("docker.sock"))])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        eprintln!("$ dockerd … (log: {})", log.display());
        let child = command
            .spawn()
            .context("cannot start dockerd; is docker.io installed?")?;
        let mut daemon = Daemon {
            dir,
            child: Some(child),
        };
        let started = Instant::now();
        loop {
            let answered = daemon
                .docker(&["version", "--format", "{{.Server.Version}}"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if answered {
                eprintln!(
                    "xtask: dockerd answered after {:.1}s",
                    started.elapsed().as_secs_f64()
                );
                return Ok(daemon);
            }
            if let Some(child) = daemon.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "dockerd exited ({status}) before answering; its log:\n{}",
                    tail(&log)
                );
            }
            if started.elapsed() > DAEMON_START {
                bail!(
                    "dockerd did not answer within {}s; its log:\n{}",
                    DAEMON_START.as_secs(),
                    tail(&log)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `DOCKER_HOST` for this daemon.
    fn host(&self) -> String {
        format!("unix://{}", self.dir.join("docker.sock").display())
    }

    /// A `docker` command talking to this daemon.
    fn docker(&self, args: &[&str]) -> Command {
        let mut command = Command::new("docker");
        command.args(args).env("DOCKER_HOST", self.host());
        command
    }

    /// Runs `docker args…` and returns its stdout.
    fn output(&self, args: &[&str]) -> Result<String> {
        let out = self
            .docker(args)
            .output()
            .context("cannot run the docker CLI")?;
        if !out.status.success() {
            bail!(
                "`docker {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Stops the daemon (SIGTERM, then SIGKILL after [`DAEMON_STOP`]) and removes its folder.
    fn stop(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let started = Instant::now();
        while child.try_wait()?.is_none() {
            if started.elapsed() > DAEMON_STOP {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "dockerd (pid {pid}) did not stop within {}s of SIGTERM and was killed",
                    DAEMON_STOP.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // dockerd leaves its network namespace mounted under the exec root.
        for mount in mounts_under(&self.dir) {
            let _ = Command::new("umount").arg(&mount).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Err(err) = self.shutdown() {
            eprintln!("xtask: {err:#}");
        }
    }
}

/// The mount points below `dir`, deepest first (from `/proc/self/mounts`).
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let table = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut found: Vec<PathBuf> = table
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        .map(PathBuf::from)
        .filter(|mount| mount.starts_with(dir))
        .collect();
    found.sort_by_key(|mount| std::cmp::Reverse(mount.components().count()));
    found
}

/// The last lines of a log file, for an error message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
