//! The device's screen as a person sees it: a screen dump (QEMU's PPM) checked and read
//! with OCR, and the keys that type a text on its keyboard.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

/// The text on a screen dump, read by Debian's `tesseract-ocr` (it reads QEMU's PPM as
/// is), with runs of whitespace made one space so that a test can look for a whole line.
/// A missing tesseract is a failure (cross/setup.sh installs it), never a skip.
pub fn ocr(image: &Path) -> anyhow::Result<String> {
    let out = Command::new("tesseract")
        .arg(image)
        .arg("stdout")
        // One thread: its OpenMP threads would take both cores from the running QEMUs.
        .env("OMP_THREAD_LIMIT", "1")
        .stdin(Stdio::null())
        .output()
        .context("running tesseract: run cross/setup.sh to install tesseract-ocr")?;
    if !out.status.success() {
        bail!(
            "tesseract {} failed ({}): {}",
            image.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" "))
}

/// Checks a binary PPM (P6) screen dump: returns (width, height, distinct colours) and fails
/// when it is not a PPM or every pixel has the same colour (a blank screen).
pub fn check_ppm(bytes: &[u8]) -> anyhow::Result<(usize, usize, usize)> {
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes.get(i) == Some(&b'#') {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if start == i {
            bail!("truncated PPM header");
        }
        fields.push(String::from_utf8_lossy(&bytes[start..i]).into_owned());
    }
    if fields[0] != "P6" || fields[3] != "255" {
        bail!("not an 8-bit P6 PPM: {fields:?}");
    }
    let width: usize = fields[1].parse().context("PPM width")?;
    let height: usize = fields[2].parse().context("PPM height")?;
    let pixels = bytes.get(i + 1..).unwrap_or(&[]);
    if pixels.len() < width * height * 3 || width * height == 0 {
        bail!(
            "PPM of {width}x{height} has only {} bytes of pixels",
            pixels.len()
        );
    }
    let mut colours = std::collections::BTreeSet::new();
    for px in pixels[..width * height * 3].chunks(3) {
        colours.insert((px[0], px[1], px[2]));
        if colours.len() > 16 {
            break;
        }
    }
    if colours.len() < 2 {
        bail!("the {width}x{height} screen is blank (one colour: {colours:?})");
    }
    Ok((width, height, colours.len()))
}

/// QEMU's key names (`sendkey`, US layout) that type `text`; `\n` is Return. A character
/// with no key is an error, not skipped.
pub fn keys(text: &str) -> anyhow::Result<Vec<String>> {
    const SHIFTED: &[(char, &str)] = &[
        ('!', "1"),
        ('@', "2"),
        ('#', "3"),
        ('$', "4"),
        ('%', "5"),
        ('^', "6"),
        ('&', "7"),
        ('*', "8"),
        ('(', "9"),
        (')', "0"),
        ('_', "minus"),
        ('+', "equal"),
        (':', "semicolon"),
        ('"', "apostrophe"),
        ('<', "comma"),
        ('>', "dot"),
        ('?', "slash"),
        ('|', "backslash"),
        ('~', "grave_accent"),
        ('{', "bracket_left"),
        ('}', "bracket_right"),
    ];
    const PLAIN: &[(char, &str)] = &[
        ('\n', "ret"),
        (' ', "spc"),
        ('-', "minus"),
        ('=', "equal"),
        (';', "semicolon"),
        ('\'', "apostrophe"),
        (',', "comma"),
        ('.', "dot"),
        ('/', "slash"),
        ('\\', "backslash"),
        ('`', "grave_accent"),
        ('[', "bracket_left"),
        (']', "bracket_right"),
    ];
    text.chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                Ok(c.to_string())
            } else if c.is_ascii_uppercase() {
                Ok(format!("shift-{}", c.to_ascii_lowercase()))
            } else if let Some((_, k)) = PLAIN.iter().find(|(p, _)| *p == c) {
                Ok(k.to_string())
            } else if let Some((_, k)) = SHIFTED.iter().find(|(p, _)| *p == c) {
                Ok(format!("shift-{k}"))
            } else {
                bail!("no key types {c:?}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ppm(w: usize, h: usize, f: impl Fn(usize) -> [u8; 3]) -> Vec<u8> {
        let mut out = format!("P6\n# test\n{w} {h}\n255\n").into_bytes();
        for i in 0..w * h {
            out.extend_from_slice(&f(i));
        }
        out
    }

    #[test]
    fn a_blank_screen_is_refused_and_text_is_accepted() {
        let blank = ppm(4, 3, |_| [0, 0, 0]);
        assert!(check_ppm(&blank).unwrap_err().to_string().contains("blank"));
        let text = ppm(4, 3, |i| if i == 5 { [170, 170, 170] } else { [0, 0, 0] });
        assert_eq!(check_ppm(&text).unwrap(), (4, 3, 2));
    }

    #[test]
    fn a_short_or_foreign_file_is_not_a_screen() {
        let mut short = ppm(4, 3, |i| [i as u8, 0, 0]);
        short.truncate(short.len() - 1);
        assert!(check_ppm(&short).is_err());
        assert!(check_ppm(b"P3\n1 1\n255\n0 0 0\n").is_err());
        assert!(check_ppm(b"P6\n").is_err());
    }

    #[test]
    fn text_becomes_qemu_key_names() {
        assert_eq!(
            keys("Ab-7 $(x)\n").unwrap(),
            ["shift-a", "b", "minus", "7", "spc", "shift-4", "shift-9", "x", "shift-0", "ret"]
        );
        assert!(keys("é").unwrap_err().to_string().contains("no key"));
    }
}
