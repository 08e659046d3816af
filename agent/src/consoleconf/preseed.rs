//! A preseed file applied with no person at the console: the same steps as the screens, with
//! progress and the login details on every console.

use coreforge_preseed::Preseed;

use super::lines::Lines;
use super::screens::{checking, describe, describe_account, list};
use super::term::Terminal;
use super::{login_details, text, Backend, Login};
use crate::setup::{Network, Setup};

/// Brings up the network, finds the account and commits, saying each step on every console.
/// On failure the reason is shown too and returned; nothing was written then.
pub fn run_preseed<T: Terminal, B: Backend>(
    preseed: &Preseed,
    backend: &mut B,
    term: &mut T,
) -> Result<Login, String> {
    let mut lines = Lines::new(term);
    lines.broadcast(&format!("\n{}\n", text::PRESEED_START));
    let result = apply(preseed, backend, &mut lines);
    match &result {
        Ok(login) => lines.broadcast(&login_details(login)),
        Err(e) => lines.broadcast(&format!("{} {e}\n", text::PRESEED_FAILED)),
    }
    result
}

fn apply<T: Terminal, B: Backend>(
    preseed: &Preseed,
    backend: &mut B,
    lines: &mut Lines<'_, T>,
) -> Result<Login, String> {
    // The wired interface is brought up now: it must be one this device has (the screens
    // offer only those; a file can name anything). A Wi-Fi interface is the OS's: its driver
    // (brcmfmac on a Pi, mac80211_hwsim under test) loads after the hand-over, so only its
    // name is checked, and an absent one is said.
    let present: Vec<String> = backend.interfaces().into_iter().map(|i| i.name).collect();
    if let Some(name) = preseed.network.interface() {
        crate::net::require_interface(name, &present).map_err(|e| e.to_string())?;
    }
    if let Some(wifi) = &preseed.wifi {
        if !coreforge_preseed::valid_interface(&wifi.interface) {
            return Err(crate::net::NetError::BadName(wifi.interface.clone()).to_string());
        }
    }
    if !matches!(preseed.network, Network::None) {
        lines.broadcast(&format!("Bringing up {} ...\n", describe(&preseed.network)));
        let addresses = backend
            .bring_up(&preseed.network)
            .map_err(|e| format!("cannot bring up the network: {e}"))?;
        lines.broadcast(&format!("The network is up: {}\n", list(&addresses)));
    }
    if let Some(wifi) = &preseed.wifi {
        let later = if present.contains(&wifi.interface) {
            ""
        } else {
            " (not present yet: the OS loads its driver)"
        };
        lines.broadcast(&format!(
            "Wi-Fi {:?} on {}{later} is set up for the OS.\n",
            wifi.ssid, wifi.interface
        ));
    }
    lines.broadcast(&format!("Checking {} ...\n", checking(&preseed.identity)));
    let account = backend.identity(&preseed.identity)?;
    lines.broadcast(&format!("Found: {}\n", describe_account(&account)));
    lines.broadcast("Writing the configuration ...\n");
    backend
        .commit(&Setup {
            network: preseed.network.clone(),
            wifi: preseed.wifi.clone(),
            account,
        })
        .map_err(|e| format!("cannot write the configuration: {e}"))
}
