//! `bazaar up`: a whole local cluster with one command.
//!
//! ```text
//! bazaar up
//! ├── n1  bazaar node --name n1 ... (child process, log in DIR/n1/node.log)
//! ├── n2
//! └── n3
//! ```
//!
//! It checks every port is free before starting anything, keeps the
//! cookie of `DIR/cookie` or writes a fresh random one (mode 0600; a new
//! one only with `--rotate-cookie`, since tokens are signed with a key
//! derived from it) and hands it to the children through the environment,
//! likewise the admin password of `DIR/admin-password`. It records its
//! nodes in `DIR/nodes.json` ([`nodes_file`], for `bazaar demo --attach`),
//! prints the node table once all are up, then a line for each membership
//! change its nodes report. A node that dies is started again after
//! `--respawn-after` seconds with the same name, ports and data. Ctrl-C or
//! SIGTERM stops every child and exits 0.
//!
//! With `--tls`, it first generates a throwaway CA and one certificate per
//! node into `DIR/tls/` ([`tls`]) and starts the nodes with mutual TLS.

pub mod nodes_file;
pub(crate) mod observer;
mod plan;
mod process;
pub mod tls;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::mpsc;

use crate::cli::UpArgs;
use crate::config;
use observer::{checkout_owner, consensus, poll_all, Observer};
use plan::{check_ports_free, plan, NodePlan};
use process::{describe, Exited, NodeProcess};

/// How often `up` asks its nodes for their views.
const OBSERVE_INTERVAL: Duration = Duration::from_millis(200);
/// How long `up` waits for every node to see every other before printing
/// the table anyway.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a local cluster until Ctrl-C or SIGTERM.
pub fn run(args: UpArgs) -> anyhow::Result<()> {
    let mut plans = plan(
        args.nodes,
        &args.data_dir,
        args.http_port,
        args.cluster_port,
    )?;
    check_ports_free(&plans)?;
    if let Some(unknown) = args
        .voters
        .iter()
        .find(|voter| !plans.iter().any(|plan| &plan.name == *voter))
    {
        anyhow::bail!(
            "--voters names {unknown}, which is not one of n1..n{}",
            plans.len()
        );
    }
    let runtime = args.runtime.child_flags(plans.len());
    for plan in &mut plans {
        plan.runtime = runtime.clone();
        plan.rate_limit = args.rate_limit;
        if !args.voters.is_empty() {
            plan.voters = args.voters.clone();
        }
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    if args.tls {
        let names: Vec<String> = plans.iter().map(|plan| plan.name.clone()).collect();
        let files = tls::generate(&args.data_dir, &names)?;
        for (plan, files) in plans.iter_mut().zip(files) {
            plan.tls = Some(files);
        }
        say(format!(
            "mutual tls between nodes, throwaway ca and certificates in {}",
            args.data_dir.join(tls::TLS_DIR).display()
        ));
    }
    let cookie_path = args.data_dir.join(config::COOKIE_FILE);
    let kept = match args.rotate_cookie {
        true => None,
        false => read_secret(&cookie_path)?,
    };
    let cookie = match kept {
        Some(cookie) => {
            bazaar_cluster::Cookie::new(&cookie)
                .with_context(|| format!("{} holds no valid cookie", cookie_path.display()))?;
            say("keeping the cluster cookie of the data dir: sessions stay valid (--rotate-cookie signs everyone out)");
            cookie
        }
        None => {
            let cookie = config::generate_cookie();
            write_secret(&cookie_path, &cookie)?;
            if args.rotate_cookie {
                say("new cluster cookie: every session signed before is void");
            }
            cookie
        }
    };
    let password_path = args.data_dir.join(config::ADMIN_PASSWORD_FILE);
    let admin_password = match read_secret(&password_path)? {
        Some(password) => password,
        None => {
            let password = config::generate_password();
            write_secret(&password_path, &password)?;
            password
        }
    };
    // One thread: children get PR_SET_PDEATHSIG, which fires when the
    // spawning *thread* ends, so every spawn must come from this one.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let secrets = Secrets {
        cookie,
        admin_password,
    };
    runtime.block_on(Launcher::new(plans, secrets, args).run())
}

/// The trimmed content of a secret file, `None` if it does not exist or
/// is empty.
fn read_secret(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(secret) => Ok(Some(secret.trim().to_string()).filter(|s| !s.is_empty())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes a file readable by its owner only.
fn write_secret(path: &Path, secret: &str) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(file, "{secret}")?;
    Ok(())
}

/// A line of `up`'s output, stamped with the wall-clock time (UTC).
fn say(message: impl std::fmt::Display) {
    let ms = bazaar_cluster::membership::table::unix_ms_now();
    let day_ms = ms % 86_400_000;
    println!(
        "[{:02}:{:02}:{:02}.{:03}] {message}",
        day_ms / 3_600_000,
        day_ms / 60_000 % 60,
        day_ms / 1000 % 60,
        day_ms % 1000
    );
}

/// What `up` hands every node through the environment.
pub struct Secrets {
    /// The cluster cookie.
    pub cookie: String,
    /// The admin user's password.
    pub admin_password: String,
}

struct Launcher {
    plans: Vec<NodePlan>,
    secrets: Secrets,
    args: UpArgs,
    /// The running process of each node, `None` while it is dead.
    processes: Vec<Option<NodeProcess>>,
    /// Starts so far, per node.
    generations: Vec<u64>,
    /// When a dead node is due to start again.
    respawn_at: BTreeMap<usize, Instant>,
    exits_tx: mpsc::UnboundedSender<Exited>,
    exits_rx: mpsc::UnboundedReceiver<Exited>,
    client: reqwest::Client,
}

impl Launcher {
    fn new(plans: Vec<NodePlan>, secrets: Secrets, args: UpArgs) -> Self {
        let (exits_tx, exits_rx) = mpsc::unbounded_channel();
        let count = plans.len();
        Self {
            plans,
            secrets,
            args,
            processes: (0..count).map(|_| None).collect(),
            generations: vec![0; count],
            respawn_at: BTreeMap::new(),
            exits_tx,
            exits_rx,
            client: reqwest::Client::new(),
        }
    }

    async fn run(mut self) -> anyhow::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;

        say(format!(
            "starting {} nodes, data in {}",
            self.plans.len(),
            self.args.data_dir.display()
        ));
        for index in 0..self.plans.len() {
            if let Err(err) = self.start(index) {
                nodes_file::remove(&self.args.data_dir);
                self.stop_all().await;
                return Err(err);
            }
        }

        let mut observer = Observer::default();
        let started = Instant::now();
        let mut table_printed = false;
        let mut ticker = tokio::time::interval(OBSERVE_INTERVAL);
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = interrupt.recv() => break,
                Some(exited) = self.exits_rx.recv() => self.on_exit(exited),
                _ = ticker.tick() => {
                    self.respawn_due()?;
                    let names: Vec<String> = self.plans.iter().map(|p| p.name.clone()).collect();
                    let https: Vec<String> = self.plans.iter().map(|p| p.http.to_string()).collect();
                    let reports = poll_all(&self.client, &https).await;
                    let states = consensus(&names, &reports);
                    if !table_printed {
                        let all_up = reports.iter().all(|report| {
                            report.as_ref().is_some_and(|report| {
                                report.members.iter().filter(|m| m.state == "up").count() == names.len()
                            })
                        });
                        if all_up || started.elapsed() > STARTUP_TIMEOUT {
                            if !all_up {
                                say("not every node sees every other yet; see the node logs");
                            }
                            self.print_table(&states);
                            table_printed = true;
                            observer.update(states);
                        }
                        continue;
                    }
                    for (name, old, new) in observer.update(states) {
                        say(format!("{name} {new} (was {old})"));
                    }
                    if let Some(line) = observer.update_owner(checkout_owner(&reports)) {
                        say(line);
                    }
                }
            }
        }
        say("stopping every node");
        nodes_file::remove(&self.args.data_dir);
        self.stop_all().await;
        say("stopped");
        Ok(())
    }

    fn start(&mut self, index: usize) -> anyhow::Result<()> {
        self.generations[index] += 1;
        let process = NodeProcess::spawn(
            &self.plans,
            index,
            self.generations[index],
            &self.secrets,
            self.exits_tx.clone(),
        )?;
        if self.generations[index] > 1 {
            say(format!(
                "{} started again (pid {})",
                self.plans[index].name, process.pid
            ));
        }
        self.processes[index] = Some(process);
        self.record_nodes();
        Ok(())
    }

    /// Rewrites `DIR/nodes.json` with every node and its pid (if running).
    fn record_nodes(&self) {
        let nodes: Vec<nodes_file::NodeRecord> = self
            .plans
            .iter()
            .zip(&self.processes)
            .map(|(plan, process)| nodes_file::NodeRecord {
                name: plan.name.clone(),
                http: plan.http,
                cluster: plan.cluster,
                pid: process.as_ref().map(|process| process.pid),
            })
            .collect();
        if let Err(err) = nodes_file::write(&self.args.data_dir, &nodes) {
            say(format!("cannot record the nodes: {err:#}"));
        }
    }

    fn on_exit(&mut self, exited: Exited) {
        let current = self.processes[exited.index]
            .as_ref()
            .is_some_and(|process| process.generation == exited.generation);
        if !current {
            return;
        }
        self.processes[exited.index] = None;
        self.record_nodes();
        let name = &self.plans[exited.index].name;
        if self.args.respawn_after == 0 {
            say(format!(
                "{name} exited ({}); not restarting (--respawn-after 0)",
                describe(exited.status)
            ));
            return;
        }
        say(format!(
            "{name} exited ({}); restarting in {}s",
            describe(exited.status),
            self.args.respawn_after
        ));
        self.respawn_at.insert(
            exited.index,
            Instant::now() + Duration::from_secs(self.args.respawn_after),
        );
    }

    fn respawn_due(&mut self) -> anyhow::Result<()> {
        let now = Instant::now();
        let due: Vec<usize> = self
            .respawn_at
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(index, _)| *index)
            .collect();
        for index in due {
            self.respawn_at.remove(&index);
            if let Err(err) = self.start(index) {
                say(format!(
                    "cannot restart {}: {err:#}",
                    self.plans[index].name
                ));
                self.respawn_at.insert(
                    index,
                    now + Duration::from_secs(self.args.respawn_after.max(1)),
                );
            }
        }
        Ok(())
    }

    fn print_table(&self, states: &BTreeMap<String, String>) {
        println!(
            "{:<6} {:<8} {:<22} {:<22} {:>8}",
            "NODE", "STATE", "HTTP", "CLUSTER", "PID"
        );
        for (plan, process) in self.plans.iter().zip(&self.processes) {
            let pid = process
                .as_ref()
                .map(|process| process.pid.to_string())
                .unwrap_or_else(|| "-".into());
            let state = states.get(&plan.name).map(String::as_str).unwrap_or("?");
            println!(
                "{:<6} {:<8} {:<22} {:<22} {:>8}",
                plan.name,
                state,
                format!("http://{}", plan.http),
                plan.cluster,
                pid
            );
        }
        say(format!(
            "admin password: {} (also in {})",
            self.secrets.admin_password,
            self.args
                .data_dir
                .join(config::ADMIN_PASSWORD_FILE)
                .display()
        ));
        say(format!(
            "cluster up; try `bazaar status`, `bazaar kill n2 --data-dir {}`, Ctrl-C to stop",
            self.args.data_dir.display()
        ));
    }

    async fn stop_all(&mut self) {
        let mut running = 0;
        for process in self.processes.iter_mut().flatten() {
            process.stop();
            running += 1;
        }
        while running > 0 {
            match self.exits_rx.recv().await {
                Some(exited) => {
                    let current = self.processes[exited.index]
                        .as_ref()
                        .is_some_and(|process| process.generation == exited.generation);
                    if current {
                        self.processes[exited.index] = None;
                        running -= 1;
                    }
                }
                None => break,
            }
        }
    }
}
