//! Every fixed line and prompt of console-conf, in one place: the end-to-end tests wait for
//! these verbatim, so change them here and nowhere else.
//!
//! Prompts are written without a newline (the answer is typed after them); the other texts are
//! whole lines. Nothing here is wider than 80 columns.

/// Shown on every console until one of them answers.
pub const PRESS_ENTER: &str = "Press Enter to configure";

/// Written on the console where Enter was pressed, before the first screen: cursor home,
/// erase the display (VT100; the Linux console and serial terminals both know it).
pub const CLEAR_SCREEN: &str = "\x1b[H\x1b[2J";

/// Start of the line other consoles show while a session runs; the console's name follows.
pub const IN_PROGRESS: &str = "Setup is in progress on";

/// First line of the session.
pub const WELCOME: &str = "Welcome to coreforge. This sets up the network and an account for SSH.";

/// How to move around, shown under the welcome line.
pub const KEYS_HELP: &str = "Ctrl-C goes back a step, Ctrl-U erases the line.";

/// Heading of the network screen.
pub const NETWORK_HEADING: &str = "Network";

/// The network menu's question.
pub const NETWORK_PROMPT: &str = "Choose the network (a number, or s to skip): ";

/// Static IPv4: the address.
pub const ADDRESS_PROMPT: &str = "IPv4 address with prefix length (like 192.168.1.10/24): ";

/// Static IPv4: the gateway.
pub const GATEWAY_PROMPT: &str = "Gateway (empty for none): ";

/// Static IPv4: the name servers.
pub const DNS_PROMPT: &str = "Name servers, separated by spaces (empty for none): ";

/// Wi-Fi: the network name.
pub const SSID_PROMPT: &str = "Wi-Fi network name (SSID): ";

/// Wi-Fi: the secret (echoed as `*`).
pub const PASSPHRASE_PROMPT: &str = "Wi-Fi passphrase (8-63 characters) or 64-hex PSK: ";

/// After a wired network is up, when a wireless interface exists too.
pub const WIFI_TOO_PROMPT: &str = "Also set up Wi-Fi for the OS? (y/n): ";

/// Heading of the identity screen.
pub const IDENTITY_HEADING: &str = "Account";

/// The identity question.
pub const IDENTITY_PROMPT: &str = "E-mail, gh:USER, lp:USER or a public key: ";

/// After a pasted key: the account's name.
pub const USERNAME_PROMPT: &str = "User name for this key: ";

/// Heading of the confirm screen.
pub const CONFIRM_HEADING: &str = "Summary";

/// The last question before anything is written.
pub const CONFIRM_PROMPT: &str = "Write this configuration? (y/n): ";

/// First line of the login details, once the configuration is written.
pub const DONE: &str = "Setup is complete.";

/// Each login line starts with this, then `USER@ADDRESS`.
pub const SSH_PREFIX: &str = "ssh ";

/// Heading of the host key fingerprints.
pub const FINGERPRINTS: &str = "SSH host key fingerprints:";

/// The session ended with Ctrl-C on its first screen.
pub const CANCELLED: &str = "Setup cancelled; nothing was written.";

/// The session ended because nobody typed for a while.
pub const TIMED_OUT: &str = "No key pressed for too long: setup ended; nothing was written.";

/// A byte that is not part of UTF-8 text was typed (shown once per line).
pub const NOT_UTF8: &str = "(a byte that is not UTF-8 text was ignored)";

/// The line grew past [`super::editor::MAX_LINE`] bytes.
pub const TOO_LONG: &str = "(line too long, the rest is ignored; press Enter and type it again)";

/// First line of an unattended setup from `console-conf.json`.
pub const PRESEED_START: &str = "Applying the preseed file console-conf.json";

/// Start of the line saying the preseed file could not be applied; the reason follows.
pub const PRESEED_FAILED: &str = "The preseed file could not be applied:";
