//! The lab's hosts: one network namespace per viewer, each with one TUN device (its only way
//! out, to the router) and one address; and a TUN device in the lab's own namespace for the
//! origin, the tracker and the players. Made with iproute2 (`ip`), removed when dropped.
//!
//! Names carry the lab's process id (`hl<pid>-<i>`), so that a lab that died without
//! cleaning up is recognised, and its namespaces removed, by the next one.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use super::router::Port;
use super::topology::{CONTROL_ADDR, Host, LAB_PREFIX, ORIGIN_ADDR, TRACKER_ADDR, Topology};

/// Where iproute2 keeps named namespaces.
const NETNS_DIR: &str = "/var/run/netns";

/// The lab's namespaces; dropping this removes them (their devices go with them).
pub struct Hosts {
    /// Each viewer's namespace, by viewer index.
    pub names: Vec<String>,
}

/// Runs `ip` with `args`, feeding it `batch` on stdin when given (`ip -batch -`).
fn ip(args: &[&str], batch: Option<&str>) -> Result<()> {
    let mut cmd = Command::new("ip");
    cmd.args(args)
        .stdin(if batch.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .context("running `ip` (iproute2 is needed: apt-get install iproute2)")?;
    if let (Some(text), Some(mut stdin)) = (batch, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .context("writing to `ip -batch`")?;
    }
    let out = child.wait_with_output().context("waiting for `ip`")?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Whether this process may make namespaces and TUN devices (root, or CAP_NET_ADMIN and
/// CAP_SYS_ADMIN); the error says what is missing.
pub fn check_privileges() -> Result<()> {
    if !nix::unistd::Uid::effective().is_root() {
        bail!("hive lab needs root: it makes a network namespace and a TUN device per agent");
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        bail!("hive lab needs /dev/net/tun (the tun kernel module)");
    }
    Ok(())
}

/// Every lab namespace on this host with the process id of the lab that made it
/// (`hl<pid>-<i>`).
fn lab_namespaces() -> Vec<(String, u32)> {
    let Ok(dir) = std::fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| {
            let pid = n
                .strip_prefix("hl")
                .and_then(|r| r.split_once('-'))
                .and_then(|(pid, _)| pid.parse::<u32>().ok())?;
            Some((n, pid))
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The process id of another lab running on this host, if any (its namespaces say so): two
/// labs would claim the same addresses.
pub fn other_lab() -> Option<u32> {
    let me = std::process::id();
    lab_namespaces()
        .into_iter()
        .map(|(_, pid)| pid)
        .find(|&pid| pid != me && alive(pid))
}

/// Removes namespaces left by labs whose process is gone.
pub fn remove_stale() {
    let stale: Vec<String> = lab_namespaces()
        .into_iter()
        .filter(|&(_, pid)| !alive(pid))
        .map(|(n, _)| n)
        .collect();
    if !stale.is_empty() {
        let batch: String = stale.iter().map(|n| format!("netns del {n}\n")).collect();
        let _ = ip(&["-force", "-batch", "-"], Some(&batch));
    }
}

fn tun(name: &str) -> Result<tun_rs::SyncDevice> {
    tun_rs::DeviceBuilder::new()
        .name(name)
        .mtu(1500)
        .build_sync()
        .with_context(|| format!("creating the TUN device {name}"))
}

/// Makes the lab's hosts for `t`: returns the router's ports (port 0: the lab's own
/// namespace, then one per viewer) and the namespaces.
pub fn make(t: &Topology) -> Result<(Vec<Port>, Hosts)> {
    check_privileges()?;
    if let Some(pid) = other_lab() {
        bail!("another hive lab (process {pid}) is running on this host: one at a time");
    }
    remove_stale();
    let pid = std::process::id();
    // Device names are at most 15 bytes: `hl` + 4 digits of the pid + `v` + the index.
    let short = pid % 10_000;
    let (prefix, bits) = LAB_PREFIX;
    let range = format!("{prefix}/{bits}");
    // The lab's own namespace: the origin, the tracker and the players' addresses.
    let root_name = format!("hl{short}r");
    let root = tun(&root_name)?;
    let mut batch = String::new();
    for a in [ORIGIN_ADDR, TRACKER_ADDR, CONTROL_ADDR] {
        batch.push_str(&format!("addr add {a}/32 dev {root_name}\n"));
    }
    batch.push_str(&format!("link set {root_name} up\n"));
    batch.push_str(&format!(
        "route replace {range} dev {root_name} src {CONTROL_ADDR}\n"
    ));
    ip(&["-batch", "-"], Some(&batch)).context("configuring the lab's own TUN device")?;
    let mut ports = vec![Port {
        dev: root,
        host: None,
    }];
    let names: Vec<String> = (0..t.viewers.len())
        .map(|i| format!("hl{pid}-{i}"))
        .collect();
    let hosts = Hosts {
        names: names.clone(),
    };
    // Namespaces first (one `ip` for all), then each viewer's device, moved into its own.
    let batch: String = names.iter().map(|n| format!("netns add {n}\n")).collect();
    ip(&["-batch", "-"], Some(&batch)).context("making the namespaces")?;
    let mut moves = String::new();
    for (i, n) in names.iter().enumerate() {
        let dev_name = format!("hl{short}v{i}");
        let dev = tun(&dev_name)?;
        moves.push_str(&format!("link set {dev_name} netns {n}\n"));
        ports.push(Port {
            dev,
            host: Some(Host::Viewer(i)),
        });
    }
    ip(&["-batch", "-"], Some(&moves)).context("moving the devices into their namespaces")?;
    for (i, (n, v)) in names.iter().zip(&t.viewers).enumerate() {
        let dev_name = format!("hl{short}v{i}");
        let batch = format!(
            "link set lo up\nlink set {dev_name} up\naddr add {a}/32 dev {dev_name}\n\
             route add {range} dev {dev_name} src {a}\n",
            a = v.addr
        );
        ip(&["-n", n, "-batch", "-"], Some(&batch))
            .with_context(|| format!("configuring namespace {n}"))?;
    }
    Ok((ports, hosts))
}

impl Hosts {
    /// The command line that runs `program` in viewer `i`'s namespace.
    pub fn command(&self, i: usize, program: &std::path::Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.names[i]]).arg(program);
        c
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        let batch: String = self
            .names
            .iter()
            .map(|n| format!("netns del {n}\n"))
            .collect();
        let _ = ip(&["-force", "-batch", "-"], Some(&batch));
    }
}
