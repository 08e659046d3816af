//! OpenPGP ASCII armor (RFC 4880 6.2): headers, base64 body, optional CRC24 line.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use zeroize::Zeroizing;

use super::ImportError;

fn err(m: impl Into<String>) -> ImportError {
    ImportError::Armor(m.into())
}

/// CRC-24 of RFC 4880 6.1.
fn crc24(data: &[u8]) -> u32 {
    let mut crc: u32 = 0x00b7_04ce;
    for &b in data {
        crc ^= u32::from(b) << 16;
        for _ in 0..8 {
            crc <<= 1;
            if crc & 0x0100_0000 != 0 {
                crc ^= 0x0186_4cfb;
            }
        }
    }
    crc & 0x00ff_ffff
}

/// Decodes the first armored block of kind `label` (e.g. "PGP PRIVATE KEY BLOCK").
pub(super) fn dearmor(text: &str, label: &str) -> Result<Zeroizing<Vec<u8>>, ImportError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut lines = text.lines().map(str::trim_end);
    if !lines.by_ref().any(|l| l.trim_start() == begin) {
        return Err(err(format!("no {begin} line")));
    }
    // Armor headers ("Version: ...", "Comment: ...") run until the first blank line.
    // Some tools omit both headers and the blank line, so a line without ':' is data.
    let mut pending = None;
    for l in lines.by_ref() {
        if l.trim().is_empty() {
            break;
        }
        if !l.contains(": ") {
            pending = Some(l);
            break;
        }
    }
    let mut b64 = String::new();
    let mut crc = None;
    let mut ended = false;
    for l in pending.into_iter().chain(lines) {
        let l = l.trim();
        if l == end {
            ended = true;
            break;
        }
        if let Some(c) = l.strip_prefix('=') {
            crc = Some(c.to_string());
            continue;
        }
        b64.push_str(l);
    }
    if !ended {
        return Err(err(format!("no {end} line")));
    }
    // An unprotected key's secret numbers are in here: wipe them when done.
    let data = STANDARD
        .decode(b64.as_bytes())
        .map(Zeroizing::new)
        .map_err(|e| err(format!("body is not valid base64: {e}")))?;
    if let Some(c) = crc {
        let want = STANDARD
            .decode(c.as_bytes())
            .ok()
            .filter(|b| b.len() == 3)
            .ok_or_else(|| err("checksum line is not 4 base64 characters"))?;
        let want = u32::from_be_bytes([0, want[0], want[1], want[2]]);
        if crc24(&data) != want {
            return Err(err("checksum mismatch: the text was damaged (copy/paste?)"));
        }
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn armored(body: &[u8], headers: &str, with_crc: bool) -> String {
        let b64 = STANDARD.encode(body);
        let mut s = format!("junk before\n-----BEGIN PGP PRIVATE KEY BLOCK-----\n{headers}\n");
        for chunk in b64.as_bytes().chunks(64) {
            s.push_str(std::str::from_utf8(chunk).unwrap());
            s.push('\n');
        }
        if with_crc {
            let c = crc24(body).to_be_bytes();
            s.push_str(&format!("={}\n", STANDARD.encode(&c[1..])));
        }
        s.push_str("-----END PGP PRIVATE KEY BLOCK-----\n");
        s
    }

    #[test]
    fn crc24_of_known_input() {
        // CRC-24/OPENPGP check value for "123456789".
        assert_eq!(crc24(b"123456789"), 0x21cf02);
    }

    #[test]
    fn decodes_with_headers_crc_and_crlf() {
        let body: Vec<u8> = (0..=255u8).cycle().take(300).collect();
        let label = "PGP PRIVATE KEY BLOCK";
        let text = armored(&body, "Version: GnuPG v1\nComment: x: y\n", true);
        assert_eq!(*dearmor(&text, label).unwrap(), body);
        assert_eq!(*dearmor(&text.replace('\n', "\r\n"), label).unwrap(), body);
        assert_eq!(*dearmor(&armored(&body, "", false), label).unwrap(), body);
    }

    #[test]
    fn damaged_armor_is_refused() {
        let body = vec![7u8; 100];
        let label = "PGP PRIVATE KEY BLOCK";
        let text = armored(&body, "", true);
        // One character changed in the body: CRC catches it.
        let bad = text.replacen("BwcH", "BwcI", 1);
        assert_ne!(bad, text);
        assert!(dearmor(&bad, label)
            .unwrap_err()
            .to_string()
            .contains("checksum mismatch"));
        let cut = text.replace("-----END PGP PRIVATE KEY BLOCK-----\n", "");
        assert!(dearmor(&cut, label)
            .unwrap_err()
            .to_string()
            .contains("no -----END"));
        assert!(dearmor("nothing", label).is_err());
    }
}
