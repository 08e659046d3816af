//! The network module against real kernels and real servers: a fake `/sys/class/net`, and
//! network namespaces joined by a veth pair (or a tap device) with dnsmasq or QEMU's slirp as
//! the DHCP server. The namespace tests need root and `ip`; without them they say why and skip.

use super::*;
use std::fs;
use std::process::{Child, Command, Stdio};

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("coreforge-net-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn interfaces_from_sysfs() {
    let sys = Scratch::new("sysfs");
    let add = |name: &str, files: &[(&str, &str)], dirs: &[&str]| {
        let dir = sys.0.join(name);
        fs::create_dir_all(&dir).unwrap();
        for (file, text) in files {
            fs::write(dir.join(file), text).unwrap();
        }
        for sub in dirs {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
    };
    add(
        "lo",
        &[("address", "00:00:00:00:00:00\n"), ("type", "772\n")],
        &[],
    );
    add(
        "eth0",
        &[
            ("address", "52:54:00:12:34:56\n"),
            ("type", "1\n"),
            ("carrier", "1\n"),
        ],
        &[],
    );
    add(
        "wlan0",
        &[("address", "b8:27:eb:00:00:01\n"), ("carrier", "0\n")],
        &["wireless"],
    );
    add(
        "wlp2s0",
        &[("address", "b8:27:eb:00:00:02\n")],
        &["phy80211"],
    );
    add(
        "sit0",
        &[("address", "00:00:00:00\n"), ("type", "776\n")],
        &[],
    );
    add(
        "usb0",
        &[("address", "02:00:00:00:00:01\n"), ("type", "1\n")],
        &[],
    );
    let addresses = vec![
        ("lo".to_owned(), Ipv4Addr::LOCALHOST, 8),
        ("eth0".to_owned(), Ipv4Addr::new(10, 0, 2, 15), 24),
        ("eth0".to_owned(), Ipv4Addr::new(192, 168, 9, 9), 16),
    ];
    let found = interfaces_in(&sys.0, &addresses).unwrap();
    let names: Vec<_> = found.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["eth0", "usb0", "wlan0", "wlp2s0"]);
    assert_eq!(
        found[0],
        Interface {
            name: "eth0".into(),
            mac: "52:54:00:12:34:56".into(),
            kind: Kind::Wired,
            carrier: true,
            addresses: vec![
                (Ipv4Addr::new(10, 0, 2, 15), 24),
                (Ipv4Addr::new(192, 168, 9, 9), 16)
            ],
        }
    );
    // No `carrier` file readable (interface down): no link.
    assert!(!found[1].carrier);
    assert!(found[1].addresses.is_empty());
    assert_eq!(found[2].kind, Kind::Wireless);
    assert!(!found[2].carrier);
    assert_eq!(found[3].kind, Kind::Wireless);
}

#[test]
fn this_machines_addresses_leave_out_loopback() {
    let all = addresses().unwrap();
    assert!(all.iter().all(|(_, ip)| !ip.is_loopback()), "{all:?}");
}

#[test]
fn none_configures_nothing() {
    assert_eq!(
        bring_up(&Network::None, Duration::from_secs(1)).unwrap(),
        Vec::<Ipv4Addr>::new()
    );
}

#[test]
fn unknown_interface_is_named_in_the_error() {
    let err = bring_up(
        &Network::dhcp("cf-nosuch0").unwrap(),
        Duration::from_secs(1),
    )
    .unwrap_err();
    assert!(
        matches!(err, NetError::NoInterface { ref interface, .. } if interface == "cf-nosuch0"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("no network interface cf-nosuch0"),
        "{err}"
    );
    // The ones there are, named too.
    let names = interface_names();
    assert!(!names.iter().any(|n| n == "lo"), "{names:?}");
    for name in &names {
        assert!(err.to_string().contains(name.as_str()), "{err}");
    }
}

#[test]
fn a_missing_interface_is_refused_naming_the_ones_there_are() {
    let here = vec!["eth0".to_string(), "wlan0".to_string()];
    assert!(require_interface("wlan0", &here).is_ok());
    let err = require_interface("wlan1", &here).unwrap_err();
    assert!(
        matches!(err, NetError::NoInterface { ref interface, ref existing }
            if interface == "wlan1" && existing == "eth0, wlan0"),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("no network interface wlan1") && text.contains("eth0, wlan0"),
        "{text}"
    );
    let err = require_interface("eth0", &[]).unwrap_err();
    assert!(err.to_string().contains("(it has: none)"), "{err}");
}

#[test]
fn a_name_with_shell_syntax_is_refused_even_if_listed() {
    for bad in crate::net::HOSTILE_NAMES.iter().copied() {
        let listed = vec![bad.to_string()];
        assert!(
            matches!(require_interface(bad, &listed), Err(NetError::BadName(ref n)) if n == bad),
            "{bad:?}"
        );
        // Built without the validating constructors (the fields are public): still refused.
        let net = Network::Dhcp {
            interface: bad.to_string(),
        };
        assert!(
            matches!(
                bring_up(&net, Duration::from_secs(1)),
                Err(NetError::BadName(_))
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn names_in_sysfs_leave_out_loopback() {
    let dir = std::env::temp_dir().join(format!("cf-net-names-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for name in ["wlan0", "lo", "eth0"] {
        std::fs::create_dir_all(dir.join(name)).unwrap();
    }
    assert_eq!(names_in(&dir), ["eth0", "wlan0"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- network namespaces ----

/// Why the namespace tests cannot run here, if they cannot.
fn namespaces_unavailable() -> Option<String> {
    // SAFETY: plain syscall with no arguments.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (network namespaces need CAP_NET_ADMIN)".into());
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "`ip netns list` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )),
        Err(e) => Some(format!("no `ip` program (iproute2): {e}")),
    }
}

macro_rules! need_namespaces {
    ($test:literal) => {
        if let Some(why) = namespaces_unavailable() {
            eprintln!(
                "SKIPPED {}: network namespaces are not possible here: {why}",
                $test
            );
            return;
        }
    };
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A named network namespace, deleted on drop (with the interfaces in it).
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("cf{tag}{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        Netns(name)
    }

    /// Runs `f` on a thread that has joined this namespace (namespaces are per thread).
    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.0);
        std::thread::spawn(move || {
            let ns = fs::File::open(&path).unwrap();
            // SAFETY: joins the namespace behind a valid descriptor; affects this thread only.
            let rc =
                unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&ns), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap()
    }

    /// A command run inside this namespace.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.0, program]);
        cmd
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// A child process killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Two namespaces joined by a veth pair: `server` side 192.168.77.1/24 (up), the client side
/// with no address, left down for the client to bring up.
struct Wire {
    server: Netns,
    client: Netns,
    server_if: String,
    client_if: String,
}

fn wire(tag: &str) -> Wire {
    let server = Netns::new(&format!("{tag}s"));
    let client = Netns::new(&format!("{tag}c"));
    let server_if = format!("vs{tag}{}", std::process::id() % 100_000);
    let client_if = format!("vc{tag}{}", std::process::id() % 100_000);
    ip(&[
        "link", "add", &server_if, "netns", &server.0, "type", "veth", "peer", "name", &client_if,
        "netns", &client.0,
    ]);
    ip(&[
        "-n",
        &server.0,
        "addr",
        "add",
        "192.168.77.1/24",
        "dev",
        &server_if,
    ]);
    ip(&["-n", &server.0, "link", "set", &server_if, "up"]);
    Wire {
        server,
        client,
        server_if,
        client_if,
    }
}

/// The default route's gateway in the calling thread's namespace.
fn default_gateway() -> Option<(String, Ipv4Addr)> {
    let table = fs::read_to_string("/proc/thread-self/net/route").unwrap();
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&"00000000") && fields.get(7) == Some(&"00000000")).then(|| {
            let gw = u32::from_str_radix(fields[2], 16).unwrap();
            (fields[0].to_owned(), Ipv4Addr::from(u32::from_be(gw)))
        })
    })
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// dnsmasq's absence is a set-up fault (cross/setup.sh installs it), not a reason to pass.
fn require(program: &str, package: &str) {
    assert!(
        have(program),
        "{program} is missing: install {package} (cross/setup.sh does)"
    );
}

#[test]
fn dhcp_lease_from_dnsmasq_over_veth() {
    need_namespaces!("dhcp_lease_from_dnsmasq_over_veth");
    require("dnsmasq", "dnsmasq-base");
    let scratch = Scratch::new("dnsmasq");
    let w = wire("d");
    let leases = scratch.0.join("leases");
    let _dnsmasq = Server(
        w.server
            .command("dnsmasq")
            .args([
                "--no-daemon",
                "--conf-file=/dev/null",
                "--port=0",
                "--bind-interfaces",
                "--user=root",
                "--pid-file",
                &format!("--interface={}", w.server_if),
                "--dhcp-range=192.168.77.50,192.168.77.60,255.255.255.0,10m",
                "--dhcp-option=option:router,192.168.77.1",
                "--dhcp-option=option:dns-server,192.168.77.53,192.168.77.54",
                &format!("--dhcp-leasefile={}", leases.display()),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let resolv = scratch.0.join("resolv.conf");
    let (interface, resolv2) = (w.client_if.clone(), resolv.clone());
    let (got, all, gateway, reachable) = w.client.run(move || {
        let got = bring_up_with(
            &Network::Dhcp { interface },
            Duration::from_secs(30),
            &resolv2,
        );
        let all = sys::ipv4_addresses().unwrap();
        (got, all, default_gateway(), server_side_answers())
    });
    let got = got.unwrap();
    assert_eq!(got.len(), 1);
    let address = got[0];
    assert!(
        (Ipv4Addr::new(192, 168, 77, 50)..=Ipv4Addr::new(192, 168, 77, 60)).contains(&address),
        "{address}"
    );
    assert!(all.contains(&(w.client_if.clone(), address, 24)), "{all:?}");
    assert_eq!(
        gateway,
        Some((w.client_if.clone(), Ipv4Addr::new(192, 168, 77, 1)))
    );
    assert_eq!(
        fs::read_to_string(&resolv).unwrap(),
        "# Written by coreforge.\nnameserver 192.168.77.53\nnameserver 192.168.77.54\n"
    );
    // The server recorded the lease for our address.
    let recorded = fs::read_to_string(&leases).unwrap();
    assert!(recorded.contains(&address.to_string()), "{recorded}");
    assert!(
        reachable,
        "the server side did not answer the leased address"
    );
}

/// Whether 192.168.77.1 answers a TCP connection to a closed port with a refusal (RST): only
/// possible when our address and route work both ways.
fn server_side_answers() -> bool {
    let reach = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from((Ipv4Addr::new(192, 168, 77, 1), 9)),
        Duration::from_secs(2),
    );
    matches!(reach, Err(ref e) if e.kind() == io::ErrorKind::ConnectionRefused)
}

#[test]
fn dhcp_lease_from_qemu_slirp() {
    need_namespaces!("dhcp_lease_from_qemu_slirp");
    let qemu = "qemu-system-aarch64";
    require(qemu, "qemu-system-arm");
    let ns = Netns::new("q");
    let tap = format!("cftap{}", std::process::id() % 100_000);
    // QEMU with no machine at all: its slirp (the `-netdev user` the device boots with) is
    // wired through a hub to a tap device in our namespace, so we are the guest.
    let _qemu = Server(
        ns.command(qemu)
            .args([
                "-M",
                "none",
                "-display",
                "none",
                "-nodefaults",
                "-monitor",
                "none",
                "-serial",
                "none",
            ])
            .args([
                "-netdev",
                &format!("tap,id=t,ifname={tap},script=no,downscript=no"),
            ])
            .args(["-netdev", "user,id=u"])
            .args(["-netdev", "hubport,id=h0,hubid=0,netdev=t"])
            .args(["-netdev", "hubport,id=h1,hubid=0,netdev=u"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Wait for QEMU to create the tap device.
    let started = Instant::now();
    while !Command::new("ip")
        .args(["-n", &ns.0, "link", "show", &tap])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "QEMU made no tap device"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let scratch = Scratch::new("slirp");
    let resolv = scratch.0.join("resolv.conf");
    let (interface, resolv2) = (tap.clone(), resolv.clone());
    let (got, gateway) = ns.run(move || {
        let got = bring_up_with(
            &Network::Dhcp { interface },
            Duration::from_secs(30),
            &resolv2,
        );
        (got, default_gateway())
    });
    assert_eq!(got.unwrap(), [Ipv4Addr::new(10, 0, 2, 15)]);
    assert_eq!(gateway, Some((tap, Ipv4Addr::new(10, 0, 2, 2))));
    assert_eq!(
        fs::read_to_string(&resolv).unwrap(),
        "# Written by coreforge.\nnameserver 10.0.2.3\n"
    );
}

#[test]
fn dhcp_without_a_server_times_out_with_advice() {
    need_namespaces!("dhcp_without_a_server_times_out_with_advice");
    let w = wire("n");
    let interface = w.client_if.clone();
    let started = Instant::now();
    let err = w
        .client
        .run(move || {
            bring_up_with(
                &Network::Dhcp { interface },
                Duration::from_secs(3),
                Path::new("/nonexistent/x"),
            )
        })
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(6),
        "{took:?}"
    );
    assert!(matches!(err, NetError::Dhcp { .. }), "{err:?}");
    assert!(
        err.to_string().contains("configure a static address"),
        "{err}"
    );
}

#[test]
fn dhcp_without_link_says_check_the_cable() {
    need_namespaces!("dhcp_without_link_says_check_the_cable");
    let w = wire("l");
    // The far end down: our side comes up without carrier, as with no cable.
    ip(&["-n", &w.server.0, "link", "set", &w.server_if, "down"]);
    let interface = w.client_if.clone();
    let err = w
        .client
        .run(move || {
            bring_up_with(
                &Network::Dhcp { interface },
                Duration::from_secs(2),
                Path::new("/nonexistent/x"),
            )
        })
        .unwrap_err();
    assert!(matches!(err, NetError::NoCarrier { .. }), "{err:?}");
    assert!(err.to_string().contains("cable"), "{err}");
}

#[test]
fn static_address_route_and_resolv_conf() {
    need_namespaces!("static_address_route_and_resolv_conf");
    let w = wire("s");
    let scratch = Scratch::new("static");
    let resolv = scratch.0.join("resolv.conf");
    let net = Network::parse_static(
        &w.client_if,
        "192.168.77.9/24",
        "192.168.77.1",
        "192.168.77.1",
    )
    .unwrap();
    let resolv2 = resolv.clone();
    let (got, all, gateway, reachable) = w.client.run(move || {
        let got = bring_up_with(&net, Duration::from_secs(5), &resolv2);
        // Once more: a retry on a configured interface must not fail (route exists already).
        let again = bring_up_with(&net, Duration::from_secs(5), &resolv2);
        assert!(again.is_ok(), "{again:?}");
        let all = sys::ipv4_addresses().unwrap();
        (got, all, default_gateway(), server_side_answers())
    });
    assert_eq!(got.unwrap(), [Ipv4Addr::new(192, 168, 77, 9)]);
    assert!(
        all.contains(&(w.client_if.clone(), Ipv4Addr::new(192, 168, 77, 9), 24)),
        "{all:?}"
    );
    assert_eq!(
        gateway,
        Some((w.client_if.clone(), Ipv4Addr::new(192, 168, 77, 1)))
    );
    assert!(
        reachable,
        "the server side did not answer on the static address"
    );
    assert_eq!(
        fs::read_to_string(&resolv).unwrap(),
        "# Written by coreforge.\nnameserver 192.168.77.1\n"
    );
}

/// The variable that makes `listing_child` run (it names the veth to look for).
const CHILD: &str = "COREFORGE_NET_LISTING_CHILD";

#[test]
fn listing_brings_wired_links_up() {
    need_namespaces!("listing_brings_wired_links_up");
    let w = wire("u");
    // `ip netns exec` also mounts the namespace's own /sys, which `interfaces()` reads: run
    // the listing in a copy of this test binary there.
    let exe = std::env::current_exe().unwrap();
    let out = w
        .client
        .command(exe.to_str().unwrap())
        .args([
            "--exact",
            "net::tests::listing_child",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD, &w.client_if)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("1 passed"),
        "the child test did not run: {text}"
    );
}

#[test]
#[ignore = "run by listing_brings_wired_links_up inside a network namespace"]
fn listing_child() {
    let Ok(name) = std::env::var(CHILD) else {
        eprintln!("listing_child runs only inside listing_brings_wired_links_up");
        return;
    };
    assert!(!sys::is_up(&name).unwrap(), "{name} should start down");
    let found = interfaces().unwrap();
    let names: Vec<_> = found.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, [name.as_str()], "loopback left out");
    let veth = &found[0];
    assert_eq!(veth.kind, Kind::Wired);
    assert!(veth.carrier, "brought up, the veth sees its peer: {veth:?}");
    assert!(veth.addresses.is_empty());
    assert_eq!(veth.mac.len(), 17, "{veth:?}");
    assert!(sys::is_up(&name).unwrap());
}
