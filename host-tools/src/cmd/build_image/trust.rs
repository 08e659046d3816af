//! What build-image trusts, and what it tells the device to trust: the model verified
//! against the store's roots with snapd's authority rules, every seeded snap's
//! declaration and revision verified the same way and matched to the file's bytes, and
//! the device pin and the store's current account-keys for the initramfs.

use std::fs;
use std::path::Path;

use anyhow::{ensure, Context, Result};
use coreforge_assertions::{
    Assertion, DevicePin, Model, SnapDeclaration, SnapRevision, Timestamp, TrustDb, Verified,
};

use super::resolve::SeedSnap;
use crate::store::{ResolvedSnap, Store};

/// The build's trust database and what verified in it.
pub(super) struct Trust {
    db: TrustDb,
    /// The verified model.
    pub model: Verified,
    /// The model file's bytes as written to the seed (the model assertion alone).
    pub model_bytes: Vec<u8>,
    /// The brand's account and account-keys, as the store has them (the seed's `model-etc`).
    pub brand_chain: Vec<Assertion>,
}

/// Verifies the model (and the chain given with it) against the store's roots, with the
/// brand's account and keys as the store has them; before anything else is done.
pub(super) fn verify_model(path: &Path, roots: &[Assertion], store: &dyn Store) -> Result<Trust> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let all = Assertion::decode_all(&bytes)
        .with_context(|| format!("cannot decode {}", path.display()))?;
    let mut db = TrustDb::new();
    for root in roots {
        db.add_trusted(root.clone());
    }
    let mut models = all.iter().filter(|a| a.type_name() == "model");
    let model = models
        .next()
        .with_context(|| format!("{} holds no model assertion", path.display()))?
        .clone();
    ensure!(
        models.next().is_none(),
        "{} holds more than one model assertion: give one model (with its chain, if any)",
        path.display()
    );
    for a in all {
        db.add(a);
    }
    let brand = model.header_str("brand-id").unwrap_or_default().to_owned();
    let brand_chain = store.account_assertions(&brand)?;
    for a in &brand_chain {
        db.add(a.clone());
    }
    let verified = db.verify(&model).with_context(|| {
        format!(
            "the model {} does not verify against the store's roots",
            path.display()
        )
    })?;
    Ok(Trust {
        db,
        model_bytes: model.encode().to_vec(),
        model: verified,
        brand_chain,
    })
}

impl Trust {
    /// The store's assertions for a seeded snap, verified: its declaration, its revision,
    /// and the accounts they name. The revision must be the file's: `digest` and `size`
    /// are the SHA3-384 and size of the bytes copied into the seed. Returns what the seed's
    /// `assertions/snaps` needs for it.
    pub fn vouch(
        &mut self,
        model: &Model,
        snap: &SeedSnap,
        resolved: &ResolvedSnap,
        store: &dyn Store,
        digest: &str,
        size: u64,
    ) -> Result<Vec<Assertion>> {
        let name = &snap.name;
        let given = store.snap_assertions(resolved)?;
        for a in &given {
            self.db.add(a.clone());
        }
        let decl = self
            .db
            .find("snap-declaration", &["16", &resolved.snap_id])
            .cloned()
            .with_context(|| {
                format!(
                    "the store gave no snap-declaration for {name:?} (snap id {:?})",
                    resolved.snap_id
                )
            })?;
        let declared = SnapDeclaration::from_assertion(&decl)?;
        let mut out = vec![decl.clone()];
        out.extend(self.add_account(&declared.publisher_id, store)?);
        let verified_decl = self
            .db
            .verify(&decl)
            .with_context(|| format!("the store's snap-declaration of {name:?} does not verify"))?;
        let rev = self
            .db
            .find("snap-revision", &[digest])
            .cloned()
            .with_context(|| {
                format!(
                    "snap {name:?} r{}: the store's file has SHA3-384 {digest}, and no \
                     snap-revision the store gave vouches for it (the store's file or its \
                     assertions were changed)",
                    resolved.revision
                )
            })?;
        let revision = SnapRevision::from_assertion(&rev)?;
        out.extend(self.add_account(&revision.developer_id, store)?);
        self.db.verify(&rev).with_context(|| {
            format!(
                "the store's snap-revision of {name:?} r{} does not verify",
                resolved.revision
            )
        })?;
        ensure!(
            revision.snap_size == size,
            "snap {name:?}: the file is {size} bytes, its snap-revision says {}",
            revision.snap_size
        );
        ensure!(
            revision.snap_revision == resolved.revision,
            "snap {name:?}: the store resolved r{}, but its file is r{}",
            resolved.revision,
            revision.snap_revision
        );
        let declared = SnapDeclaration::from_assertion(verified_decl.assertion())?;
        ensure!(
            declared.snap_name == *name,
            "snap {name:?}: snap id {:?} is declared as {:?}",
            declared.snap_id,
            declared.snap_name
        );
        ensure!(
            revision.snap_id == declared.snap_id && resolved.snap_id == declared.snap_id,
            "snap {name:?}: its snap-revision is for snap id {:?}, its declaration for {:?}",
            revision.snap_id,
            declared.snap_id
        );
        if let Some(id) = model
            .snaps
            .iter()
            .find(|s| s.name == *name)
            .and_then(|s| s.id.as_ref())
        {
            ensure!(
                *id == declared.snap_id,
                "snap {name:?}: the model names snap id {id:?}, the store declares {:?}",
                declared.snap_id
            );
        }
        out.push(rev);
        Ok(out)
    }

    /// The account `id` from the store, added to the database; returned unless it is a
    /// trusted root already (the device has those).
    fn add_account(&mut self, id: &str, store: &dyn Store) -> Result<Vec<Assertion>> {
        if self.db.is_trusted_account(id) {
            return Ok(Vec::new());
        }
        let found = store.account_assertions(id)?;
        let account: Vec<Assertion> = found
            .iter()
            .filter(|a| a.type_name() == "account")
            .cloned()
            .collect();
        for a in found {
            self.db.add(a);
        }
        Ok(account)
    }

    /// The store's current accounts and account-keys, each verified, for the initramfs: a
    /// key revoked at the store is revoked on the device even if the card holds an older
    /// revision of it.
    pub fn current_keys(&mut self, store: &dyn Store) -> Result<Vec<Assertion>> {
        let all = store.all_account_assertions()?;
        for a in &all {
            self.db.add(a.clone());
        }
        let mut out = Vec::new();
        for a in &all {
            let key = a.primary_key();
            let current = self.db.find(a.type_name(), &key);
            if current.is_some_and(|c| c.encode() != a.encode()) {
                continue; // an older revision
            }
            self.db.verify(a).with_context(|| {
                format!(
                    "the store's {} {:?} does not verify against its roots",
                    a.type_name(),
                    key.join("/")
                )
            })?;
            out.push(a.clone());
        }
        Ok(out)
    }
}

/// When the image is built: `SOURCE_DATE_EPOCH` when set, else now.
pub(super) fn build_time(epoch: u64) -> Timestamp {
    if epoch == 0 && std::env::var_os("SOURCE_DATE_EPOCH").is_none() {
        Timestamp::from_unix(Timestamp::now().unix())
    } else {
        Timestamp::from_unix(i64::try_from(epoch).unwrap_or(0))
    }
}

/// What the device is: this model, this seed label, built now, with this preseed.
pub(super) fn device_pin(
    trust: &Trust,
    model: &Model,
    label: &str,
    built: Timestamp,
    preseed_digest: Option<String>,
) -> DevicePin {
    DevicePin {
        brand_id: model.brand_id.clone(),
        model: model.model.clone(),
        grade: model.grade.clone(),
        model_sha3_384: coreforge_assertions::sha3_384(&trust.model_bytes),
        seed_label: label.to_owned(),
        build_time: built,
        preseed_sha3_384: preseed_digest,
    }
}
