//! snap.yaml's `apps:` read and checked with snapd's rules, for the host (`coreforge pack`
//! and `build-image` refuse bad apps) and for the device's `snap` program (which runs them).
//!
//! ```
//! use coreforge_snap::SnapYaml;
//!
//! let yaml = SnapYaml::parse(b"name: web\nversion: '1'\napps:\n  web:\n    command: bin/serve\n    daemon: simple\n    stop-timeout: 1m\n").unwrap();
//! assert_eq!(yaml.apps["web"].stop_timeout.unwrap().seconds(), "60");
//!
//! let bad = SnapYaml::parse(b"name: web\napps:\n  web:\n    command: bin/serve\n    daemon: simpel\n");
//! assert!(bad.unwrap_err().to_string().starts_with("apps.web.daemon: unknown daemon type"));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod contents;
mod duration;
mod yaml;

pub use contents::{check_commands, Node};
pub use duration::Duration;
pub use yaml::{
    command_path, valid_app_name, App, Daemon, SnapYaml, YamlError, RESTART_CONDITIONS,
};
