//! A pod network on one machine: per pod a network namespace with its own
//! address on a bridge, and its own `/etc/hosts` (what `ip netns exec`
//! mounts from `/etc/netns/NAMESPACE/hosts`) standing in for cluster DNS,
//! so that a Service name resolves, as in Kubernetes, to the address of
//! each pod it selects. Everything is deleted on drop.

use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;

use rand::distr::{Alphanumeric, SampleString};

/// The bridge, the namespaces and their hosts files.
pub struct Lan {
    bridge: String,
    suffix: String,
    octets: [u8; 3],
    namespaces: Vec<String>,
}

impl Lan {
    /// A bridge with `pods` namespaces on it; pod `i` (from 0) gets
    /// `10.X.Y.(i+1)`. Panics without root or `ip`.
    pub fn create(pods: usize) -> Self {
        assert!(
            fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0),
            "the deploy test needs root (network namespaces); run it as root"
        );
        assert!(
            Command::new("ip")
                .arg("-V")
                .output()
                .is_ok_and(|out| out.status.success()),
            "the deploy test needs the `ip` command: install Debian's iproute2"
        );
        let suffix = Alphanumeric
            .sample_string(&mut rand::rng(), 5)
            .to_lowercase();
        let mut lan = Self {
            bridge: format!("bzd{suffix}"),
            octets: [
                10,
                rand::random_range(100..=250),
                rand::random_range(1..=250),
            ],
            suffix,
            namespaces: Vec::new(),
        };
        let [a, b, c] = lan.octets;
        run(&["link", "add", &lan.bridge, "type", "bridge"]);
        run(&[
            "addr",
            "add",
            &format!("{a}.{b}.{c}.254/24"),
            "dev",
            &lan.bridge,
        ]);
        run(&["link", "set", &lan.bridge, "up"]);
        for i in 0..pods {
            let namespace = format!("bzd{}p{i}", lan.suffix);
            let veth = format!("bzd{}v{i}", lan.suffix);
            run(&["netns", "add", &namespace]);
            lan.namespaces.push(namespace.clone());
            run(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &namespace,
            ]);
            run(&["link", "set", &veth, "master", &lan.bridge, "up"]);
            let addr = format!("{}/24", lan.addr(i));
            for args in [
                &["link", "set", "lo", "up"][..],
                &["addr", "add", &addr, "dev", "eth0"],
                &["link", "set", "eth0", "up"],
            ] {
                let mut all = vec!["netns", "exec", &namespace, "ip"];
                all.extend_from_slice(args);
                run(&all);
            }
        }
        lan
    }

    /// Address of pod `i`.
    pub fn addr(&self, i: usize) -> Ipv4Addr {
        let [a, b, c] = self.octets;
        Ipv4Addr::new(
            a,
            b,
            c,
            u8::try_from(i + 1).expect("pod number fits an octet"),
        )
    }

    /// Namespace of pod `i`.
    pub fn namespace(&self, i: usize) -> &str {
        &self.namespaces[i]
    }

    /// Writes the hosts file every namespace sees: `names` maps each DNS
    /// name to its addresses.
    pub fn set_hosts(&self, names: &[(String, Vec<Ipv4Addr>)]) {
        let mut hosts = String::from("127.0.0.1 localhost\n");
        for (name, addrs) in names {
            for addr in addrs {
                hosts.push_str(&format!("{addr} {name}\n"));
            }
        }
        for namespace in &self.namespaces {
            let dir = hosts_dir(namespace);
            fs::create_dir_all(&dir).expect("create /etc/netns dir");
            fs::write(dir.join("hosts"), &hosts).expect("write hosts file");
        }
    }
}

fn hosts_dir(namespace: &str) -> PathBuf {
    PathBuf::from("/etc/netns").join(namespace)
}

impl Drop for Lan {
    fn drop(&mut self) {
        for namespace in &self.namespaces {
            let _ = Command::new("ip")
                .args(["netns", "delete", namespace])
                .output();
            let _ = fs::remove_dir_all(hosts_dir(namespace));
        }
        let _ = Command::new("ip")
            .args(["link", "delete", &self.bridge])
            .output();
    }
}

fn run(args: &[&str]) {
    let output = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        output.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}
