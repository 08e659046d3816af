//! What build-image gives the agent for first boot: a preseed file for the boot partition, and
//! the SSO URL and TLS roots for the initramfs. Everything is read and checked before the image
//! is started, so a typo fails the build and not a device with no one at its console.

use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use coreforge_initramfs::{InitramfsBuilder, DEFAULT_SSO_URL};
use coreforge_preseed::{Identity, Preseed, PRESEED_FILE};
use rustls_pki_types::pem::{self, SectionKind};
use rustls_pki_types::CertificateDer;

/// The roots of trust a Debian or Ubuntu build host keeps (package ca-certificates).
const HOST_TLS_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The first-boot options of `build-image`.
#[derive(clap::Args, Debug)]
pub struct FirstBootArgs {
    /// A console-conf.json preseed file, placed at the root of the boot partition: the device
    /// configures its network and account from it with no one at the console.
    #[arg(long, value_name = "FILE")]
    preseed: Option<PathBuf>,
    /// Where the agent looks store accounts up (`<URL>/api/v2/keys/<e-mail>`); HTTPS only.
    #[arg(long, value_name = "URL", default_value = DEFAULT_SSO_URL)]
    sso_url: String,
    /// PEM bundle of the TLS roots the agent trusts for HTTPS [default: the build host's
    /// /etc/ssl/certs/ca-certificates.crt].
    #[arg(long, value_name = "PEM")]
    tls_roots: Option<PathBuf>,
}

/// The checked first-boot inputs, ready to be written.
#[derive(Debug)]
pub struct FirstBoot {
    /// The preseed file's bytes, exactly as given (it parsed).
    preseed: Option<Vec<u8>>,
    sso_url: String,
    tls_roots: Vec<u8>,
}

impl FirstBoot {
    /// Reads and checks every first-boot input.
    pub fn load(args: &FirstBootArgs) -> Result<FirstBoot> {
        let preseed = args.preseed.as_deref().map(read_preseed).transpose()?;
        let sso_url = check_sso_url(&args.sso_url)?;
        let roots_path = args
            .tls_roots
            .as_deref()
            .unwrap_or(Path::new(HOST_TLS_ROOTS));
        let tls_roots = fs::read(roots_path).with_context(|| match &args.tls_roots {
            Some(p) => format!("--tls-roots: cannot read {}", p.display()),
            None => format!(
                "cannot read the build host's TLS roots {HOST_TLS_ROOTS} (install the \
                 ca-certificates package, or pass --tls-roots PEM)"
            ),
        })?;
        check_tls_roots(&tls_roots)
            .with_context(|| format!("--tls-roots {}", roots_path.display()))?;
        Ok(FirstBoot {
            preseed,
            sso_url,
            tls_roots,
        })
    }

    /// SHA3-384 of the preseed file, if any: the device applies only the file it was
    /// built with (or one a brand-signed system-user assertion vouches for).
    pub fn preseed_digest(&self) -> Option<String> {
        self.preseed.as_deref().map(coreforge_assertions::sha3_384)
    }

    /// Puts the preseed file, if any, at the root of the boot partition.
    pub fn write_boot(&self, boot: &mut crate::image::Tree) {
        if let Some(bytes) = &self.preseed {
            boot.file(PRESEED_FILE, crate::image::Source::bytes(bytes.clone()));
        }
    }

    /// Adds the SSO URL and the TLS roots to the initramfs.
    pub fn add_to(&self, initramfs: InitramfsBuilder) -> InitramfsBuilder {
        initramfs
            .sso_url(&self.sso_url)
            .tls_roots(self.tls_roots.clone())
    }
}

/// Reads a preseed file and checks it as the agent will, plus every given key with `ssh-key`.
fn read_preseed(path: &Path) -> Result<Vec<u8>> {
    let bytes =
        fs::read(path).with_context(|| format!("--preseed: cannot read {}", path.display()))?;
    let preseed =
        Preseed::parse(&bytes).with_context(|| format!("--preseed {}: refused", path.display()))?;
    if let Identity::Keys { ssh_keys, .. } = &preseed.identity {
        for (i, key) in ssh_keys.iter().enumerate() {
            check_ssh_key(key).with_context(|| {
                format!(
                    "--preseed {}: refused: identity.ssh-keys[{i}]: expected a public key in \
                     authorized_keys form (\"ssh-ed25519 AAAA... comment\")",
                    path.display()
                )
            })?;
        }
    }
    Ok(bytes)
}

fn check_ssh_key(key: &str) -> Result<()> {
    let parsed = ssh_key::PublicKey::from_openssh(key).context("ssh-key cannot parse it")?;
    if let ssh_key::public::KeyData::Other(_) = parsed.key_data() {
        bail!(
            "its algorithm {} is not one the device's SSH server knows",
            parsed.algorithm()
        );
    }
    Ok(())
}

/// `https://HOST[:PORT][/PATH]`, returned without a trailing `/` (the agent appends
/// `/api/v2/keys/...`).
fn check_sso_url(url: &str) -> Result<String> {
    let expected = "expected an HTTPS URL like https://login.ubuntu.com";
    let Some(rest) = url.strip_prefix("https://") else {
        bail!("--sso-url {url:?}: {expected} (the agent only speaks HTTPS)");
    };
    let host = rest.split('/').next().unwrap_or_default();
    ensure!(
        !host.is_empty()
            && !url.contains(|c: char| c.is_whitespace() || c.is_control())
            && !url.contains(['?', '#', '@']),
        "--sso-url {url:?}: {expected}, with a host and no spaces, query, fragment or user"
    );
    Ok(url.trim_end_matches('/').to_owned())
}

/// Every PEM section must be a certificate that parses as a trust anchor, as rustls in the
/// agent will load it; there must be at least one.
fn check_tls_roots(pem_bytes: &[u8]) -> Result<usize> {
    let mut reader = BufReader::new(pem_bytes);
    let mut count = 0;
    while let Some((kind, der)) = pem::from_buf(&mut reader)
        .map_err(|e| anyhow::anyhow!("not a PEM bundle after certificate {count}: {e:?}"))?
    {
        let n = count + 1;
        ensure!(
            kind == SectionKind::Certificate,
            "section {n} is a {kind:?}, not a CERTIFICATE: a bundle of roots holds only \
             certificates (never a private key)"
        );
        let der = CertificateDer::from(der);
        webpki::anchor_from_trusted_cert(&der).map_err(|e| {
            anyhow::anyhow!("certificate {n} does not parse as an X.509 root certificate ({e})")
        })?;
        count = n;
    }
    ensure!(
        count > 0,
        "no PEM certificate in it (expected -----BEGIN CERTIFICATE----- sections)"
    );
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sso_urls() {
        assert_eq!(
            check_sso_url("https://login.ubuntu.com/").unwrap(),
            "https://login.ubuntu.com"
        );
        assert_eq!(
            check_sso_url("https://10.0.2.2:8443/sso").unwrap(),
            "https://10.0.2.2:8443/sso"
        );
        for bad in [
            "http://login.ubuntu.com",
            "https://",
            "https:///x",
            "login.ubuntu.com",
            "https://a b",
            "https://x/?q=1",
            "https://user@x",
        ] {
            let err = check_sso_url(bad).unwrap_err().to_string();
            assert!(err.contains("expected an HTTPS URL"), "{bad}: {err}");
        }
    }

    #[test]
    fn ssh_keys() {
        let ed = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHm7PaMTzm4Q5o6dmwFT3NyP4o8bVPOgHVBgHK2nHwYn alice@x";
        check_ssh_key(ed).unwrap();
        // A corrupted key: one character of the base64 body changed.
        let bad = ed.replace("AAAAIHm7", "AAAAIHm8x");
        assert!(check_ssh_key(&bad).is_err());
        assert!(check_ssh_key("ssh-ed25519 notbase64").is_err());
    }

    #[test]
    fn tls_roots_refuse_keys_garbage_and_empty_bundles() {
        let err = check_tls_roots(b"").unwrap_err().to_string();
        assert!(err.contains("no PEM certificate"), "{err}");
        let key =
            b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";
        let err = check_tls_roots(key).unwrap_err().to_string();
        assert!(err.contains("not a CERTIFICATE"), "{err}");
        let junk = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let err = check_tls_roots(junk).unwrap_err().to_string();
        assert!(err.contains("certificate 1 does not parse"), "{err}");
    }

    #[test]
    fn the_host_bundle_parses_when_present() {
        // Build hosts and CI install ca-certificates; every root there must load.
        if let Ok(pem) = fs::read(HOST_TLS_ROOTS) {
            assert!(check_tls_roots(&pem).unwrap() > 50);
        }
    }
}
