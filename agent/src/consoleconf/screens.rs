//! The screens of one session, in order: welcome, network, account, summary and commit.
//! Every answer is checked where it is typed; a refusal says why and asks again, Ctrl-C goes
//! back one screen (from the network screen: ends the session).

use std::time::Duration;

use coreforge_preseed::{is_valid_username, WifiError};

use super::lines::{Answer, End, Lines};
use super::term::Terminal;
use super::{text, Backend, Identity, Interface, Login};
use crate::setup::{Account, Network, Setup, Wifi};

/// One line of the network menu.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Dhcp(String),
    Static(String),
    Wifi(String),
}

/// What the network screen decided.
#[derive(Debug, Clone)]
struct Net {
    network: Network,
    wifi: Option<Wifi>,
    /// What `bring_up` gave, for the summary.
    addresses: Vec<String>,
}

/// What the summary screen decided.
enum Confirmed {
    Written(Login),
    /// Ctrl-C: another account.
    Identity,
    /// `n`: from the network screen again.
    StartOver,
}

struct Screens<'a, 't, T: Terminal, B: Backend> {
    lines: &'a mut Lines<'t, T>,
    backend: &'a mut B,
    idle: Duration,
}

/// Runs one session on the console that claimed it, until the configuration is written.
pub fn session<T: Terminal, B: Backend>(
    lines: &mut Lines<'_, T>,
    backend: &mut B,
    idle: Duration,
) -> Result<Login, End> {
    let mut s = Screens {
        lines,
        backend,
        idle,
    };
    s.say(&format!("\n{}\n{}\n", text::WELCOME, text::KEYS_HELP))?;
    loop {
        let Some(net) = s.network()? else {
            return Err(End::Cancelled);
        };
        while let Some(account) = s.identity()? {
            let setup = Setup {
                network: net.network.clone(),
                wifi: net.wifi.clone(),
                account,
            };
            match s.confirm(&setup, &net.addresses)? {
                Confirmed::Written(login) => return Ok(login),
                Confirmed::Identity => {}
                Confirmed::StartOver => break,
            }
        }
    }
}

impl<T: Terminal, B: Backend> Screens<'_, '_, T, B> {
    fn say(&mut self, text: &str) -> Result<(), End> {
        self.lines.say(text)
    }

    /// The trimmed answer, or `None` for Ctrl-C.
    fn ask(&mut self, prompt: &str) -> Result<Option<String>, End> {
        self.ask_secret(prompt, false)
    }

    fn ask_secret(&mut self, prompt: &str, secret: bool) -> Result<Option<String>, End> {
        Ok(match self.lines.ask(prompt, secret, self.idle)? {
            Answer::Line(line) => Some(line.trim().to_string()),
            Answer::Back => None,
        })
    }

    fn network(&mut self) -> Result<Option<Net>, End> {
        loop {
            let interfaces = self.backend.interfaces();
            let items = menu(&interfaces);
            self.say(&network_screen(&interfaces, &items))?;
            let Some(answer) = self.ask(text::NETWORK_PROMPT)? else {
                return Ok(None);
            };
            if answer.is_empty() {
                continue; // Enter alone lists the interfaces again
            }
            if answer.eq_ignore_ascii_case("s") {
                return Ok(Some(Net {
                    network: Network::None,
                    wifi: None,
                    addresses: Vec::new(),
                }));
            }
            let chosen = answer
                .parse::<usize>()
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|n| items.get(n));
            let network = match chosen {
                None => {
                    self.say(&format!(
                        "{answer:?} is not on the menu: type one of its numbers, or s.\n"
                    ))?;
                    continue;
                }
                Some(Item::Wifi(interface)) => match self.wifi(interface)? {
                    Some(wifi) => {
                        return Ok(Some(Net {
                            network: Network::None,
                            wifi: Some(wifi),
                            addresses: Vec::new(),
                        }))
                    }
                    None => continue,
                },
                Some(Item::Dhcp(interface)) => match Network::dhcp(interface) {
                    Ok(network) => network,
                    Err(e) => {
                        self.say(&format!("{e}\n"))?;
                        continue;
                    }
                },
                Some(Item::Static(interface)) => match self.static_ipv4(interface)? {
                    Some(network) => network,
                    None => continue,
                },
            };
            self.say(&format!("Bringing up {} ...\n", describe(&network)))?;
            match self.backend.bring_up(&network) {
                Ok(addresses) => {
                    self.say(&format!("The network is up: {}\n", list(&addresses)))?;
                    let wireless = interfaces.iter().find(|i| i.wireless);
                    let wifi = match wireless {
                        Some(w) => self.wifi_too(&w.name)?,
                        None => None,
                    };
                    return Ok(Some(Net {
                        network,
                        wifi,
                        addresses,
                    }));
                }
                Err(e) => self.say(&format!("Cannot bring up the network: {e}\n"))?,
            }
        }
    }

    /// Address, gateway and name servers, each asked again until it is valid.
    fn static_ipv4(&mut self, interface: &str) -> Result<Option<Network>, End> {
        let mut answers: Vec<String> = Vec::new();
        let prompts = [text::ADDRESS_PROMPT, text::GATEWAY_PROMPT, text::DNS_PROMPT];
        for prompt in prompts {
            loop {
                let Some(answer) = self.ask(prompt)? else {
                    return Ok(None);
                };
                answers.push(answer);
                let part = |i: usize| answers.get(i).map_or("", String::as_str);
                match Network::parse_static(interface, part(0), part(1), part(2)) {
                    Ok(network) if answers.len() == prompts.len() => return Ok(Some(network)),
                    Ok(_) => break,
                    Err(e) => {
                        answers.pop();
                        self.say(&format!("{e}\n"))?;
                    }
                }
            }
        }
        Ok(None)
    }

    /// The SSID, then the passphrase (asked again until valid).
    fn wifi(&mut self, interface: &str) -> Result<Option<Wifi>, End> {
        let ssid = loop {
            let Some(ssid) = self.ask(text::SSID_PROMPT)? else {
                return Ok(None);
            };
            if (1..=32).contains(&ssid.len()) {
                break ssid;
            }
            self.say(&format!("{}\n", WifiError::SsidLength(ssid.len())))?;
        };
        loop {
            // Not trimmed: spaces may be part of a passphrase.
            let secret = match self.lines.ask(text::PASSPHRASE_PROMPT, true, self.idle)? {
                Answer::Line(secret) => secret,
                Answer::Back => return Ok(None),
            };
            match Wifi::new(interface, &ssid, &secret) {
                Ok(wifi) => return Ok(Some(wifi)),
                Err(e) => self.say(&format!("{e}\n"))?,
            }
        }
    }

    fn wifi_too(&mut self, interface: &str) -> Result<Option<Wifi>, End> {
        loop {
            match self.ask(text::WIFI_TOO_PROMPT)?.as_deref() {
                Some("y" | "Y" | "yes") => match self.wifi(interface)? {
                    Some(wifi) => return Ok(Some(wifi)),
                    None => continue,
                },
                Some("n" | "N" | "no") | None => return Ok(None),
                Some(_) => self.say("Type y or n.\n")?,
            }
        }
    }

    /// The account: looked up, or a pasted key and a user name. `None` for Ctrl-C.
    fn identity(&mut self) -> Result<Option<Account>, End> {
        loop {
            self.say(&identity_screen())?;
            let Some(answer) = self.ask(text::IDENTITY_PROMPT)? else {
                return Ok(None);
            };
            if answer.is_empty() {
                continue;
            }
            let identity = if is_key(&answer) {
                match self.username()? {
                    Some(username) => Identity::Keys {
                        username,
                        ssh_keys: vec![answer],
                    },
                    None => continue,
                }
            } else {
                match answer.parse::<Identity>() {
                    Ok(identity) => identity,
                    Err(e) => {
                        self.say(&format!("{e}\n"))?;
                        continue;
                    }
                }
            };
            self.say(&format!("Checking {} ...\n", checking(&identity)))?;
            match self.backend.identity(&identity) {
                Ok(account) => {
                    self.say(&format!("Found: {}\n", describe_account(&account)))?;
                    return Ok(Some(account));
                }
                Err(e) => self.say(&format!("{e}\n"))?,
            }
        }
    }

    fn username(&mut self) -> Result<Option<String>, End> {
        loop {
            let Some(name) = self.ask(text::USERNAME_PROMPT)? else {
                return Ok(None);
            };
            if is_valid_username(&name) {
                return Ok(Some(name));
            }
            self.say(&format!(
                "{name:?} cannot be a user name: start with a lower-case letter, then up to \
                 31\nlower-case letters, digits, '-' or '_'.\n"
            ))?;
        }
    }

    /// The summary and the commit; a failed commit is shown and can be tried again.
    fn confirm(&mut self, setup: &Setup, addresses: &[String]) -> Result<Confirmed, End> {
        loop {
            self.say(&summary(setup, addresses))?;
            match self.ask(text::CONFIRM_PROMPT)?.as_deref() {
                None => return Ok(Confirmed::Identity),
                Some("n" | "N" | "no") => return Ok(Confirmed::StartOver),
                Some("y" | "Y" | "yes") => {
                    self.say("Writing the configuration ...\n")?;
                    match self.backend.commit(setup) {
                        Ok(login) => return Ok(Confirmed::Written(login)),
                        Err(e) => self.say(&format!(
                            "Cannot write the configuration: {e}\n\
                             The device is still unconfigured; answer y to try again.\n"
                        ))?,
                    }
                }
                Some(_) => self.say("Type y or n.\n")?,
            }
        }
    }
}

/// The menu's choices in order: DHCP and static for each wired interface, Wi-Fi for each
/// wireless one.
fn menu(interfaces: &[Interface]) -> Vec<Item> {
    let mut items = Vec::new();
    for i in interfaces {
        if i.wireless {
            items.push(Item::Wifi(i.name.clone()));
        } else {
            items.push(Item::Dhcp(i.name.clone()));
            items.push(Item::Static(i.name.clone()));
        }
    }
    items
}

fn network_screen(interfaces: &[Interface], items: &[Item]) -> String {
    let mut s = format!("\n{}\n", text::NETWORK_HEADING);
    if interfaces.is_empty() {
        s.push_str("  No network interfaces found.\n");
    }
    for i in interfaces {
        s.push_str(&format!(
            "  {:<15} {:<9} {:<10} {}\n",
            i.name,
            if i.wireless { "wireless" } else { "wired" },
            if i.carrier { "connected" } else { "no link" },
            list(&i.addresses),
        ));
    }
    s.push('\n');
    for (n, item) in items.iter().enumerate() {
        let line = match item {
            Item::Dhcp(name) => format!("{name}: wired, DHCP"),
            Item::Static(name) => format!("{name}: wired, static IPv4"),
            Item::Wifi(name) => format!("{name}: Wi-Fi (for the OS)"),
        };
        s.push_str(&format!("  {}) {line}\n", n + 1));
    }
    s.push_str("  s) skip: no network\n");
    s
}

fn identity_screen() -> String {
    format!(
        "\n{}\nThe account gets no password; you log in with its SSH keys. Type one of:\n  \
         alice@example.com   an Ubuntu SSO account's e-mail\n  \
         gh:alice            a GitHub user's keys\n  \
         lp:alice            a Launchpad user's keys\n  \
         ssh-ed25519 AAAA... a public key (then a user name is asked)\n",
        text::IDENTITY_HEADING
    )
}

fn summary(setup: &Setup, addresses: &[String]) -> String {
    let mut network = describe(&setup.network);
    if !matches!(setup.network, Network::None) {
        network.push_str(&format!(" (now {})", list(addresses)));
    }
    let wifi = setup.wifi.as_ref().map_or("none".to_string(), |w| {
        format!("{:?} on {}", w.ssid, w.interface)
    });
    format!(
        "\n{}\n  Network: {network}\n  Wi-Fi:   {wifi}\n  Account: {}\n",
        text::CONFIRM_HEADING,
        describe_account(&setup.account)
    )
}

pub(super) fn describe(network: &Network) -> String {
    match network {
        Network::Dhcp { interface } => format!("{interface} with DHCP"),
        Network::Static {
            interface,
            address,
            prefix,
            gateway,
            dns,
        } => {
            let mut s = format!("{interface} with {address}/{prefix}");
            if let Some(gateway) = gateway {
                s.push_str(&format!(", gateway {gateway}"));
            }
            if !dns.is_empty() {
                let dns: Vec<String> = dns.iter().map(|d| d.to_string()).collect();
                s.push_str(&format!(", DNS {}", dns.join(" ")));
            }
            s
        }
        Network::None => "none".into(),
    }
}

pub(super) fn describe_account(account: &Account) -> String {
    format!(
        "{}, {} SSH key(s) from {}",
        account.username,
        account.keys.len(),
        account.source
    )
}

pub(super) fn list(addresses: &[String]) -> String {
    if addresses.is_empty() {
        "no address".into()
    } else {
        addresses.join(", ")
    }
}

/// What a look-up is about, as the person typed it (`alice@example.com`, `gh:alice`).
pub(super) fn checking(identity: &Identity) -> String {
    match identity {
        Identity::Store(email) => email.clone(),
        Identity::GitHub(user) => format!("gh:{user}"),
        Identity::Launchpad(user) => format!("lp:{user}"),
        Identity::Keys { username, ssh_keys } => {
            format!("{} key(s) for {username}", ssh_keys.len())
        }
    }
}

/// A pasted public key rather than a name to look up: it starts with a key type.
fn is_key(text: &str) -> bool {
    ["ssh-", "ecdsa-", "sk-"]
        .iter()
        .any(|prefix| text.starts_with(prefix))
}
