//! Tenants the operator declares in the config file (`[[tenants]]`, keys given as hashes),
//! and the quotas of tenants that set none (`[default_quotas]`).
//!
//! Declared tenants live in the config file alone: the admin API shows them but does not
//! change them (change the file and restart). Tenants created over the admin API live in the
//! data directory's `tenants.json`; an id may be in one of the two, not both.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{KeyHash, Quotas, TenantId};

/// What the config file says of tenants.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantsConfig {
    /// The tenants it declares (`[[tenants]]`).
    #[serde(default, rename = "tenants", skip_serializing_if = "Vec::is_empty")]
    pub declared: Vec<DeclaredTenant>,
    /// Quotas of every tenant that does not set them itself, quota by quota
    /// (`[default_quotas]`).
    #[serde(default, skip_serializing_if = "Quotas::is_empty")]
    pub default_quotas: Quotas,
}

/// A tenant of the config file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredTenant {
    /// Its id.
    pub id: TenantId,
    /// The hashes of its API keys (`taskhost tenant key generate` makes a key and its hash).
    #[serde(default)]
    pub key_hashes: Vec<KeyHash>,
    /// Its quotas; those it leaves out come from `[default_quotas]`.
    #[serde(default, skip_serializing_if = "Quotas::is_empty")]
    pub quotas: Quotas,
}

impl TenantsConfig {
    /// What is wrong: an id or a key hash given twice.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut ids = HashSet::new();
        let mut hashes = HashSet::new();
        for tenant in &self.declared {
            if !ids.insert(&tenant.id) {
                problems.push(format!(
                    "tenants: tenant {} is declared twice; declare each once",
                    tenant.id.as_str()
                ));
            }
            for hash in &tenant.key_hashes {
                if !hashes.insert(hash) {
                    problems.push(format!(
                        "tenants: a key hash of tenant {} is given twice (each key belongs to one \
                         tenant, once)",
                        tenant.id.as_str()
                    ));
                }
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_or_key_declared_twice_is_a_problem() {
        let hash = KeyHash::of("th_one");
        let tenant = |id: &str, key_hashes: Vec<KeyHash>| DeclaredTenant {
            id: TenantId::try_from(id.to_owned()).unwrap(),
            key_hashes,
            quotas: Quotas::default(),
        };
        let config = TenantsConfig {
            declared: vec![
                tenant("a", vec![hash]),
                tenant("b", vec![hash]),
                tenant("a", vec![]),
            ],
            default_quotas: Quotas::default(),
        };
        assert_eq!(
            config.problems(),
            [
                "tenants: a key hash of tenant b is given twice (each key belongs to one tenant, \
                 once)",
                "tenants: tenant a is declared twice; declare each once",
            ]
        );
    }
}
