//! The account database files for the new user: the base snap's `etc/passwd`, `etc/group`,
//! `etc/shadow` (and `etc/gshadow` when the base has one) plus one account in group `sudo`.
//!
//! Pure text in, text out: the commit decides where the files go.

use std::collections::BTreeSet;

/// The first uid/gid for people, as Debian's `adduser` (`FIRST_UID`).
const FIRST_ID: u32 = 1000;
/// The last one (`LAST_UID`): above it are `nobody` and reserved ranges.
const LAST_ID: u32 = 59999;
/// Debian's gid for `sudo`, used when the base has no such group and the gid is free.
const DEBIAN_SUDO_GID: u32 = 27;

/// Why the account cannot be added to the base's files.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccountError {
    /// The base already has an account or group of that name.
    #[error("the name {0:?} is already used by the OS (an account or group of the base snap); choose another user name")]
    NameTaken(String),
    /// No uid/gid between 1000 and 59999 is free.
    #[error("no free user id between 1000 and 59999 in the base snap's etc/passwd and etc/group")]
    NoFreeId,
    /// No gid below 1000 is free for the sudo group.
    #[error("no free group id below 1000 for the sudo group in the base snap's etc/group")]
    NoFreeSystemGid,
    /// The password hash is not a crypt(3) string.
    #[error("the account's password is not a crypt(3) hash ($6$salt$hash): it is not written")]
    BadPassword,
}

/// The base snap's account files, as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaseFiles {
    /// `etc/passwd`.
    pub passwd: String,
    /// `etc/group`.
    pub group: String,
    /// `etc/shadow`, if the base has one.
    pub shadow: Option<String>,
    /// `etc/gshadow`, if the base has one.
    pub gshadow: Option<String>,
}

/// The account files with the new user added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountFiles {
    /// New `etc/passwd`.
    pub passwd: String,
    /// New `etc/group`.
    pub group: String,
    /// New `etc/shadow` (made from `etc/passwd`, as `pwconv` does, when the base has none).
    pub shadow: String,
    /// New `etc/gshadow`, only when the base has one.
    pub gshadow: Option<String>,
    /// The gid of group `shadow`, if there is one: `etc/shadow` is then `root:shadow 0640`.
    pub shadow_gid: Option<u32>,
    /// The new user's uid.
    pub uid: u32,
    /// The new user's primary group, of the same name.
    pub gid: u32,
}

/// Adds `user` (no password, home `/home/USER`, shell `/bin/sh`, member of `sudo`) to `base`.
/// `days` is today as days since 1970, for the shadow entries' last change; `None` when the
/// clock is not set (a Pi has no real-time clock), which leaves the field empty: `0` there
/// would mean "change the password at next login".
pub fn add_account(
    base: &BaseFiles,
    user: &str,
    password: Option<&str>,
    days: Option<u64>,
) -> Result<AccountFiles, AccountError> {
    if let Some(hash) = password {
        if !is_crypt_hash(hash) {
            return Err(AccountError::BadPassword);
        }
    }
    let users = entries(&base.passwd);
    let groups = entries(&base.group);
    if users.iter().chain(&groups).any(|e| e[0] == user) {
        return Err(AccountError::NameTaken(user.to_string()));
    }
    let used_uids: BTreeSet<u32> = users.iter().filter_map(|e| id(e, 2)).collect();
    let mut used_gids: BTreeSet<u32> = groups.iter().filter_map(|e| id(e, 2)).collect();

    // The sudo group: join it, or create it first.
    let mut group = base.group.clone();
    let mut new_sudo_gid = None;
    if groups.iter().any(|e| e[0] == "sudo") {
        group = add_member(&group, "sudo", user);
    } else {
        let gid = if used_gids.contains(&DEBIAN_SUDO_GID) {
            (100..FIRST_ID)
                .find(|g| !used_gids.contains(g))
                .ok_or(AccountError::NoFreeSystemGid)?
        } else {
            DEBIAN_SUDO_GID
        };
        push_line(&mut group, &format!("sudo:x:{gid}:{user}"));
        used_gids.insert(gid);
        new_sudo_gid = Some(gid);
    }

    // One number for both uid and the user's own group, as adduser prefers.
    let uid = (FIRST_ID..=LAST_ID)
        .find(|n| !used_uids.contains(n) && !used_gids.contains(n))
        .ok_or(AccountError::NoFreeId)?;
    let gid = uid;
    push_line(&mut group, &format!("{user}:x:{gid}:"));

    let mut passwd = base.passwd.clone();
    let mut shadow = match &base.shadow {
        Some(shadow) => shadow.clone(),
        None => {
            let (converted_passwd, shadow) = pwconv(&base.passwd, days);
            passwd = converted_passwd;
            shadow
        }
    };
    push_line(
        &mut passwd,
        &format!("{user}:x:{uid}:{gid}::/home/{user}:/bin/sh"),
    );
    // `*`: no password works, but the account is not locked (SSH keys log in), and
    // `sudo passwd USER` sets one later. A system-user assertion may give a hash instead.
    push_line(
        &mut shadow,
        &shadow_entry(user, password.unwrap_or("*"), days),
    );

    let gshadow = base.gshadow.as_ref().map(|gshadow| {
        let mut gshadow = if new_sudo_gid.is_some() {
            let mut g = gshadow.clone();
            push_line(&mut g, &format!("sudo:*::{user}"));
            g
        } else {
            add_member(gshadow, "sudo", user)
        };
        push_line(&mut gshadow, &format!("{user}:!::"));
        gshadow
    });

    let shadow_gid = groups
        .iter()
        .find(|e| e[0] == "shadow")
        .and_then(|e| id(e, 2));
    Ok(AccountFiles {
        passwd,
        group,
        shadow,
        gshadow,
        shadow_gid,
        uid,
        gid,
    })
}

/// The fields of every well-formed entry (at least 3 fields), skipping blanks and comments.
/// A `$id$[rounds=N$]salt$hash` string with nothing that could end a shadow field or line
/// (the system-user assertion's rules were checked already; this keeps `etc/shadow` intact).
fn is_crypt_hash(s: &str) -> bool {
    s.starts_with('$')
        && s.len() <= 512
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'$' | b'.' | b'/' | b'='))
}

fn entries(text: &str) -> Vec<Vec<&str>> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .collect()
}

/// Field `n` as a number.
fn id(fields: &[&str], n: usize) -> Option<u32> {
    fields.get(n).and_then(|f| f.parse().ok())
}

/// Appends `line` on a line of its own.
fn push_line(text: &mut String, line: &str) {
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(line);
    text.push('\n');
}

/// `etc/group` or `etc/gshadow` with `user` appended to the member list of group `name`
/// (the fourth field in both files).
fn add_member(text: &str, name: &str, user: &str) -> String {
    const MEMBERS: usize = 3;
    let mut out = String::with_capacity(text.len() + user.len() + 1);
    for line in text.split_inclusive('\n') {
        let (body, end) = match line.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (line, ""),
        };
        let mut fields: Vec<String> = body.split(':').map(str::to_string).collect();
        if fields[0] == name && fields.len() > MEMBERS {
            let members = &mut fields[MEMBERS];
            if !members.split(',').any(|m| m == user) {
                if !members.is_empty() {
                    members.push(',');
                }
                members.push_str(user);
            }
            out.push_str(&fields.join(":"));
        } else {
            out.push_str(body);
        }
        out.push_str(end);
    }
    out
}

/// What `pwconv` does for a base with no `etc/shadow`: each password moves to a new shadow
/// entry (`x` becomes `*`, locked) and `etc/passwd` keeps `x`.
fn pwconv(passwd: &str, days: Option<u64>) -> (String, String) {
    let mut new_passwd = String::with_capacity(passwd.len());
    let mut shadow = String::new();
    for line in passwd.lines() {
        let mut fields: Vec<&str> = line.split(':').collect();
        if fields.len() >= 7 && !line.starts_with('#') {
            let password = match fields[1] {
                "x" => "*",
                other => other,
            };
            push_line(&mut shadow, &shadow_entry(fields[0], password, days));
            fields[1] = "x";
        }
        push_line(&mut new_passwd, &fields.join(":"));
    }
    (new_passwd, shadow)
}

/// A shadow line with Debian's default ageing: no minimum, 99999 days maximum, warn 7 days.
fn shadow_entry(user: &str, password: &str, days: Option<u64>) -> String {
    let days = days.map(|d| d.to_string()).unwrap_or_default();
    format!("{user}:{password}:{days}:0:99999:7:::")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debian bookworm's base files, trimmed.
    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
    const GROUP: &str =
        "root:x:0:\ndaemon:x:1:\nshadow:x:42:\nsudo:x:27:\nusers:x:100:\nnogroup:x:65534:\n";
    const SHADOW: &str =
        "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n";

    fn debian() -> BaseFiles {
        BaseFiles {
            passwd: PASSWD.into(),
            group: GROUP.into(),
            shadow: Some(SHADOW.into()),
            gshadow: Some("root:*::\nsudo:*::\nshadow:*::\n".into()),
        }
    }

    #[test]
    fn a_password_hash_goes_into_shadow_and_nothing_else_does() {
        let hash = "$6$rounds=5000$salt$abcdefghijklmnopqrstuvwxyz0123456789./ABCDEFGHIJKLMNOPQRST";
        let files = add_account(&debian(), "ops", Some(hash), Some(20417)).unwrap();
        assert!(
            files.shadow.contains(&format!("\nops:{hash}:20417:")),
            "{}",
            files.shadow
        );
        for bad in ["plain", "$6$salt$x:0:0:::::\nroot::", "$6$s a$h"] {
            assert_eq!(
                add_account(&debian(), "ops", Some(bad), Some(1)),
                Err(AccountError::BadPassword),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn adds_the_user_to_a_debian_base() {
        let files = add_account(&debian(), "alice", None, Some(20417)).unwrap();
        assert_eq!((files.uid, files.gid), (1000, 1000));
        assert_eq!(
            files.passwd,
            format!("{PASSWD}alice:x:1000:1000::/home/alice:/bin/sh\n")
        );
        assert_eq!(
            files.group,
            "root:x:0:\ndaemon:x:1:\nshadow:x:42:\nsudo:x:27:alice\nusers:x:100:\nnogroup:x:65534:\nalice:x:1000:\n"
        );
        assert_eq!(
            files.shadow,
            format!("{SHADOW}alice:*:20417:0:99999:7:::\n")
        );
        assert_eq!(
            files.gshadow.as_deref(),
            Some("root:*::\nsudo:*::alice\nshadow:*::\nalice:!::\n")
        );
        assert_eq!(files.shadow_gid, Some(42));
    }

    #[test]
    fn joins_existing_sudo_members_and_skips_used_ids() {
        let base = BaseFiles {
            passwd: format!("{PASSWD}bob:x:1000:1000::/home/bob:/bin/sh\n"),
            // gid 1001 is a group without a user: 1002 is the first number free for both.
            group: "root:x:0:\nsudo:x:27:bob\nbob:x:1000:\nextra:x:1001:".into(),
            shadow: Some(SHADOW.into()),
            gshadow: None,
        };
        let files = add_account(&base, "alice", None, Some(1)).unwrap();
        assert_eq!((files.uid, files.gid), (1002, 1002));
        assert_eq!(
            files.group,
            "root:x:0:\nsudo:x:27:bob,alice\nbob:x:1000:\nextra:x:1001:\nalice:x:1002:\n"
        );
        assert_eq!(files.gshadow, None);
        assert_eq!(files.shadow_gid, None);
    }

    #[test]
    fn creates_sudo_and_shadow_for_a_minimal_base() {
        // busybox-style base: no shadow, no sudo group, a password hash left in passwd.
        let base = BaseFiles {
            passwd: "root:x:0:0:root:/root:/bin/sh\nold:$6$hash:5:5::/:/bin/sh\n".into(),
            group: "root:x:0:\n".into(),
            shadow: None,
            gshadow: None,
        };
        let files = add_account(&base, "alice", None, Some(20000)).unwrap();
        assert_eq!(files.group, "root:x:0:\nsudo:x:27:alice\nalice:x:1000:\n");
        assert_eq!(
            files.passwd,
            "root:x:0:0:root:/root:/bin/sh\nold:x:5:5::/:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n"
        );
        assert_eq!(
            files.shadow,
            "root:*:20000:0:99999:7:::\nold:$6$hash:20000:0:99999:7:::\nalice:*:20000:0:99999:7:::\n"
        );
    }

    #[test]
    fn leaves_the_last_change_empty_when_the_clock_is_not_set() {
        let base = BaseFiles {
            shadow: None,
            ..debian()
        };
        let files = add_account(&base, "alice", None, None).unwrap();
        assert!(
            files.shadow.starts_with("root:*::0:99999:7:::\n"),
            "{}",
            files.shadow
        );
        assert!(
            files.shadow.ends_with("\nalice:*::0:99999:7:::\n"),
            "{}",
            files.shadow
        );
    }

    #[test]
    fn sudo_group_takes_another_gid_when_27_is_used() {
        let base = BaseFiles {
            passwd: "root:x:0:0:root:/root:/bin/sh\n".into(),
            group: "root:x:0:\nother:x:27:\nusers:x:100:\n".into(),
            ..BaseFiles::default()
        };
        let files = add_account(&base, "alice", None, Some(1)).unwrap();
        assert!(
            files.group.contains("\nsudo:x:101:alice\n"),
            "{}",
            files.group
        );
    }

    #[test]
    fn refuses_names_the_base_uses() {
        for name in ["daemon", "users", "sudo"] {
            assert_eq!(
                add_account(&debian(), name, None, Some(1)),
                Err(AccountError::NameTaken(name.into()))
            );
        }
    }

    #[test]
    fn reports_when_no_id_is_free() {
        let mut base = debian();
        for n in FIRST_ID..=LAST_ID {
            base.group.push_str(&format!("g{n}:x:{n}:\n"));
        }
        assert_eq!(
            add_account(&base, "alice", None, Some(1)),
            Err(AccountError::NoFreeId)
        );
    }
}
