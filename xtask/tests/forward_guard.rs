//! The v6egress forward guard (modules/v6egress/forward-guard.nix), loaded with the real `nft` into network
//! namespaces that model the host: a LAN neighbour that routes the container subnet via the host, the host
//! with the `v6egress0` bridge and IPv4/IPv6 forwarding on, and a container on the bridge. Before the guard
//! the neighbour reaches the container's port (the exposure); with it, new connections from the neighbour are
//! dropped while the container's own connections out, and the host's to the container, still work.
//!
//! Needs (Debian): iproute2 (ip), nftables (nft), python3, nix-bin (nix-instantiate), and root. A missing one
//! fails the test with the package to install.

mod common;
use common::require;

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

const BRIDGE: &str = "v6egress0";
const CONTAINER_V4: &str = "10.89.64.2";
const CONTAINER_V6: &str = "fd70:7377:6e63:6567::2";
const LAN_V4: &str = "192.0.2.2";
const LAN_V6: &str = "2001:db8:1::2";
const PORT: u16 = 9464;

use common::run_ok as run;

/// The guard's `nft -f` file (`ruleset`) and the ExecStart and ExecStop of the unit that loads it from `file`
/// (with the iptables-based firewall), rendered by the module's own functions.
fn guard(file: &Path) -> (String, String, String) {
    let guard = Path::new(env!("CARGO_MANIFEST_DIR")).join("../modules/v6egress/forward-guard.nix");
    let expr = format!(
        "let guard = import {} {{ interfaceName = \"{BRIDGE}\"; }}; \
         unit = lib.nftables.loaderServiceConfig {{ nft = \"nft\"; rulesetFile = \"{}\"; table = guard; }}; \
         in [guard.ruleset unit.ExecStart unit.ExecStop]",
        guard.display(),
        file.display()
    );
    let [ruleset, start, stop]: [String; 3] =
        serde_json::from_value(common::lib_eval(&expr)).unwrap();
    (ruleset, start, stop)
}

/// Three namespaces, removed (with the listeners) on drop.
struct World {
    lan: String,
    host: String,
    container: String,
    listeners: Vec<Child>,
}

impl World {
    fn new() -> World {
        require("ip", "iproute2");
        require("nft", "nftables");
        require("python3", "python3");
        require("nix-instantiate", "nix-bin");
        let id = std::process::id();
        let world = World {
            lan: format!("xg-lan-{id}"),
            host: format!("xg-host-{id}"),
            container: format!("xg-ctr-{id}"),
            listeners: Vec::new(),
        };
        for ns in [&world.lan, &world.host, &world.container] {
            run("ip", &["netns", "add", ns]);
            world.ip(ns, &["link", "set", "lo", "up"]);
        }
        let (lan, host, ctr) = (&world.lan, &world.host, &world.container);
        // LAN <-> host uplink.
        run(
            "ip",
            &[
                "link", "add", "up0", "netns", host, "type", "veth", "peer", "name", "eth0",
                "netns", lan,
            ],
        );
        world.ip(host, &["addr", "add", "192.0.2.1/24", "dev", "up0"]);
        world.ip(
            host,
            &["addr", "add", "2001:db8:1::1/64", "dev", "up0", "nodad"],
        );
        world.ip(
            lan,
            &["addr", "add", &format!("{LAN_V4}/24"), "dev", "eth0"],
        );
        world.ip(
            lan,
            &[
                "addr",
                "add",
                &format!("{LAN_V6}/64"),
                "dev",
                "eth0",
                "nodad",
            ],
        );
        // The bridge netavark creates, with the container's veth in it.
        world.ip(host, &["link", "add", BRIDGE, "type", "bridge"]);
        world.ip(host, &["addr", "add", "10.89.64.1/24", "dev", BRIDGE]);
        world.ip(
            host,
            &[
                "addr",
                "add",
                "fd70:7377:6e63:6567::1/64",
                "dev",
                BRIDGE,
                "nodad",
            ],
        );
        run(
            "ip",
            &[
                "link", "add", "vctr", "netns", host, "type", "veth", "peer", "name", "eth0",
                "netns", ctr,
            ],
        );
        world.ip(host, &["link", "set", "vctr", "master", BRIDGE]);
        world.ip(
            ctr,
            &["addr", "add", &format!("{CONTAINER_V4}/24"), "dev", "eth0"],
        );
        world.ip(
            ctr,
            &[
                "addr",
                "add",
                &format!("{CONTAINER_V6}/64"),
                "dev",
                "eth0",
                "nodad",
            ],
        );
        for (ns, dev) in [
            (host, "up0"),
            (host, BRIDGE),
            (host, "vctr"),
            (lan, "eth0"),
            (ctr, "eth0"),
        ] {
            world.ip(ns, &["link", "set", dev, "up"]);
        }
        world.ip(ctr, &["route", "add", "default", "via", "10.89.64.1"]);
        world.ip(
            ctr,
            &[
                "-6",
                "route",
                "add",
                "default",
                "via",
                "fd70:7377:6e63:6567::1",
            ],
        );
        // The neighbour routes the container subnets via the host.
        world.ip(lan, &["route", "add", "10.89.64.0/24", "via", "192.0.2.1"]);
        world.ip(
            lan,
            &[
                "-6",
                "route",
                "add",
                "fd70:7377:6e63:6567::/64",
                "via",
                "2001:db8:1::1",
            ],
        );
        for key in ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"] {
            run("ip", &["netns", "exec", host, "sysctl", "-qw", key]);
        }
        world.settle();
        world
    }

    /// Waits until no IPv6 address in the world is still in duplicate-address detection: the link-local
    /// addresses of fresh links are, and while they are, the first packets across a link can be lost (seen
    /// as a flaky first IPv6 connection).
    fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        for ns in [&self.lan, &self.host, &self.container] {
            loop {
                let output = Command::new("ip")
                    .args(["-n", ns, "-6", "addr", "show", "tentative"])
                    .output()
                    .unwrap();
                assert!(output.status.success(), "ip addr show tentative in {ns}");
                if output.stdout.is_empty() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "addresses in {ns} still tentative after 15 s: {}",
                    String::from_utf8_lossy(&output.stdout)
                );
                thread::sleep(Duration::from_millis(100));
            }
        }
    }

    fn ip(&self, ns: &str, args: &[&str]) {
        let mut all = vec!["-n", ns];
        all.extend_from_slice(args);
        run("ip", &all);
    }

    /// A TCP listener on all addresses (IPv4 and IPv6) of `ns` that accepts and closes.
    fn listen(&mut self, ns: &str) {
        let program = format!(
            "import socket\ns = socket.socket(socket.AF_INET6)\ns.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)\n\
             s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('::', {PORT}))\ns.listen(64)\n\
             while True:\n    c, _ = s.accept()\n    c.close()\n"
        );
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-c", &program])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.listeners.push(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.connects(ns, "127.0.0.1") {
            assert!(Instant::now() < deadline, "no listener in {ns}");
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether a TCP connection from `ns` to `address`:PORT completes within 2 s.
    fn connects(&self, ns: &str, address: &str) -> bool {
        let program = format!(
            "import socket, sys\ntry:\n    socket.create_connection(('{address}', {PORT}), timeout=2).close()\nexcept OSError:\n    sys.exit(1)\n"
        );
        Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-c", &program])
            .status()
            .unwrap()
            .success()
    }

    /// Whether a connection from `ns` to `address`:PORT completes on one of several tries within 10 s:
    /// for the paths that must work, so that one packet lost on a fresh link does not read as "no path".
    fn reaches(&self, ns: &str, address: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.connects(ns, address) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs one of the guard unit's commands (ExecStart, ExecStop) in the host's namespace.
    fn unit_command(&self, command: &str) {
        let mut args = vec!["netns", "exec", &self.host];
        args.extend(command.split(' '));
        run("ip", &args);
    }

    /// How many guard tables the host's nftables holds.
    fn guard_tables(&self) -> usize {
        let listed = Command::new("ip")
            .args(["netns", "exec", &self.host, "nft", "list", "ruleset"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&listed.stdout)
            .matches("table inet v6egress_guard")
            .count()
    }

    /// Starts the guard's unit as systemd would, twice: a restart must replace the table, not fail or
    /// duplicate it. Returns its ExecStop.
    fn load_guard(&self) -> String {
        let file = std::env::temp_dir().join(format!("xtask-guard-{}.nft", std::process::id()));
        let (ruleset, start, stop) = guard(&file);
        std::fs::write(&file, ruleset).unwrap();
        for _ in 0..2 {
            self.unit_command(&start);
        }
        let _ = std::fs::remove_file(&file);
        assert_eq!(self.guard_tables(), 1);
        stop
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for child in &mut self.listeners {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in [&self.lan, &self.host, &self.container] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

#[test]
fn the_lan_cannot_open_connections_into_the_container_network_and_the_containers_still_get_out() {
    let mut world = World::new();
    world.listen(&world.container.clone());
    world.listen(&world.lan.clone());
    let (lan, host, ctr) = (
        world.lan.clone(),
        world.host.clone(),
        world.container.clone(),
    );

    // The exposure the guard closes: forwarding accepts by default.
    assert!(
        world.reaches(&lan, CONTAINER_V4),
        "the model is wrong: the LAN cannot reach the container at all"
    );
    assert!(
        world.reaches(&lan, CONTAINER_V6),
        "the model is wrong: no IPv6 path to the container"
    );

    let stop = world.load_guard();

    assert!(
        !world.connects(&lan, CONTAINER_V4),
        "the LAN still reaches the container over IPv4"
    );
    assert!(
        !world.connects(&lan, CONTAINER_V6),
        "the LAN still reaches the container over IPv6"
    );
    assert!(
        world.reaches(&ctr, LAN_V4),
        "the container's own IPv4 connections out are broken"
    );
    assert!(
        world.reaches(&ctr, LAN_V6),
        "the container's own IPv6 connections out are broken"
    );
    assert!(
        world.reaches(&host, CONTAINER_V4),
        "the host can no longer reach the container"
    );

    // Stopping the unit removes the table, and with it the guard.
    world.unit_command(&stop);
    assert_eq!(world.guard_tables(), 0);
    assert!(
        world.connects(&lan, CONTAINER_V4),
        "the LAN is still cut off after the guard's unit stopped"
    );
}
