//! Errors from building an initramfs.

use std::path::{Path, PathBuf};

/// Everything that can go wrong building an initramfs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The agent binary is not an ELF executable.
    #[error("{}: the agent is not an ELF executable; build it with cross/build-agent.sh", path.display())]
    AgentNotElf {
        /// The file given as the agent.
        path: PathBuf,
    },
    /// A module (or a dependency of one) is not in the modules directory.
    #[error("kernel module {module:?}{} not found under {}; check the board's module list against this kernel", needed_by.as_ref().map(|n| format!(" (needed by {n})")).unwrap_or_default(), dir.display())]
    ModuleNotFound {
        /// The missing module.
        module: String,
        /// The module that depends on it, if any.
        needed_by: Option<String>,
        /// The directory searched.
        dir: PathBuf,
    },
    /// A module file could not be understood.
    #[error("kernel module {module}: {reason}; is it a module of this kernel?")]
    BadModule {
        /// The module file.
        module: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Modules depend on each other in a loop.
    #[error("kernel modules depend on each other in a cycle: {chain}")]
    DependencyCycle {
        /// The chain of names, ending where it started.
        chain: String,
    },
    /// A compressed module could not be decompressed.
    #[error("{}: cannot decompress: {reason}", path.display())]
    Decompress {
        /// The module file.
        path: PathBuf,
        /// The decompressor's complaint.
        reason: String,
    },
    /// Two trusted assertion files would land at the same name.
    #[error("two trusted assertions are both named {name:?}; rename one of the files")]
    DuplicateTrusted {
        /// The clashing name under /etc/coreforge/trusted/.
        name: String,
    },
    /// Compressing the archive failed.
    #[error("compressing the initramfs: {0}")]
    Compress(std::io::Error),
}

impl Error {
    /// An I/O error about `path`.
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
