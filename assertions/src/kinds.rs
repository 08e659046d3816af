//! The assertion types snapd knows, with their primary keys.

/// An assertion type: its name, primary-key headers, and whether it has an authority.
#[derive(Debug, PartialEq, Eq)]
pub struct AssertionType {
    /// The `type` header value.
    pub name: &'static str,
    /// Headers that identify one assertion of this type, in their declared order.
    pub primary_key: &'static [&'static str],
    /// Self-signed requests carry no `authority-id`.
    pub has_authority: bool,
}

const fn t(name: &'static str, primary_key: &'static [&'static str]) -> AssertionType {
    AssertionType {
        name,
        primary_key,
        has_authority: true,
    }
}

const fn no_authority(name: &'static str, primary_key: &'static [&'static str]) -> AssertionType {
    AssertionType {
        name,
        primary_key,
        has_authority: false,
    }
}

/// Every type snapd's `asserts` package registers.
pub static TYPES: &[AssertionType] = &[
    t("account", &["account-id"]),
    t("account-key", &["public-key-sha3-384"]),
    no_authority("account-key-request", &["public-key-sha3-384"]),
    t("base-declaration", &["series"]),
    t("confdb-schema", &["account-id", "name"]),
    t("confdb-control", &["brand-id", "model", "serial"]),
    no_authority("device-session-request", &["brand-id", "model", "serial"]),
    t("model", &["series", "brand-id", "model"]),
    t("preseed", &["series", "brand-id", "model", "system-label"]),
    t("repair", &["brand-id", "repair-id"]),
    t("serial", &["brand-id", "model", "serial"]),
    no_authority("serial-request", &["brand-id", "model"]),
    t("snap-build", &["snap-sha3-384"]),
    t("snap-declaration", &["series", "snap-id"]),
    t("snap-developer", &["snap-id", "publisher-id"]),
    t(
        "snap-resource-pair",
        &[
            "snap-id",
            "resource-name",
            "resource-revision",
            "snap-revision",
            "provenance",
        ],
    ),
    t(
        "snap-resource-revision",
        &[
            "snap-id",
            "resource-name",
            "resource-sha3-384",
            "provenance",
        ],
    ),
    t("snap-revision", &["snap-sha3-384"]),
    t("store", &["store"]),
    t("system-user", &["brand-id", "email"]),
    t(
        "validation",
        &[
            "series",
            "snap-id",
            "approved-snap-id",
            "approved-snap-revision",
        ],
    ),
    t(
        "validation-set",
        &["series", "account-id", "name", "sequence"],
    ),
];

/// The type named `name`, if snapd knows it.
pub fn lookup(name: &str) -> Option<&'static AssertionType> {
    TYPES.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_known_types_only() {
        assert_eq!(
            lookup("model").unwrap().primary_key,
            ["series", "brand-id", "model"]
        );
        assert!(!lookup("account-key-request").unwrap().has_authority);
        assert!(lookup("modle").is_none());
        assert!(TYPES.iter().all(|t| crate::headers::is_valid_name(t.name)));
    }
}
