//! API keys: random, prefixed so that a leaked one is recognisable, kept only as a hash.
//!
//! A key is `th_` (a tenant's) or `th_admin_` (the operator's) and 64 hex digits: 256 bits
//! from the OS. The host keeps its blake3 hash, never the key; a key that high in entropy
//! needs no slow password hash, and looking it up by hash (a map of hashes, compared in
//! constant time by `blake3::Hash`) reveals nothing of keys the caller does not hold.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The prefix of every tenant's key.
const TENANT_PREFIX: &str = "th_";

/// The prefix of the admin key.
const ADMIN_PREFIX: &str = "th_admin_";

/// A key in clear: shown once, when issued, and written only to the key files the host
/// creates for the operator.
pub struct ApiKey(String);

impl ApiKey {
    /// A new tenant key.
    pub fn new_tenant_key() -> std::io::Result<Self> {
        Self::random(TENANT_PREFIX)
    }

    /// A new admin key.
    pub fn new_admin_key() -> std::io::Result<Self> {
        Self::random(ADMIN_PREFIX)
    }

    fn random(prefix: &str) -> std::io::Result<Self> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(std::io::Error::other)?;
        let hex: String = secret.iter().map(|byte| format!("{byte:02x}")).collect();
        Ok(Self(format!("{prefix}{hex}")))
    }

    /// The key as sent in `Authorization: Bearer KEY`.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the host keeps of it.
    pub fn hash(&self) -> KeyHash {
        KeyHash::of(&self.0)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("ApiKey(..)")
    }
}

/// The blake3 hash of a key: all the host keeps of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyHash(blake3::Hash);

impl KeyHash {
    /// The hash of `key` as a caller sent it.
    pub fn of(key: &str) -> Self {
        Self(blake3::hash(key.as_bytes()))
    }
}

impl Serialize for KeyHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_hex())
    }
}

impl<'de> Deserialize<'de> for KeyHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let hex = String::deserialize(deserializer)?;
        blake3::Hash::from_hex(&hex)
            .map(Self)
            .map_err(|_| serde::de::Error::custom("a key hash is 64 hex digits"))
    }
}

/// A key's id, to name it (and revoke it) without showing it: 8 hex digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyId(String);

impl KeyId {
    /// A new random id.
    pub fn new() -> std::io::Result<Self> {
        let mut bytes = [0u8; 4];
        getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
        Ok(Self(
            bytes.iter().map(|byte| format!("{byte:02x}")).collect(),
        ))
    }
}

impl KeyId {
    /// The id of a key known only by its `hash` (one of the config file's): the hash's
    /// first 8 hex digits, which tell nothing of the key.
    pub fn of_hash(hash: &KeyHash) -> Self {
        Self(hash.0.to_hex()[..8].to_owned())
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_random_prefixed_and_kept_only_as_hashes() {
        let (one, other) = (
            ApiKey::new_tenant_key().unwrap(),
            ApiKey::new_tenant_key().unwrap(),
        );
        assert!(one.expose().starts_with("th_"), "{}", one.expose());
        assert_eq!(one.expose().len(), 3 + 64);
        assert_ne!(one.expose(), other.expose());
        assert_eq!(one.hash(), KeyHash::of(one.expose()));
        assert_ne!(one.hash(), other.hash());
        assert!(
            ApiKey::new_admin_key()
                .unwrap()
                .expose()
                .starts_with("th_admin_")
        );
        assert_eq!(
            format!("{one:?}"),
            "ApiKey(..)",
            "a key never reaches a log"
        );

        let hash = serde_json::to_string(&one.hash()).unwrap();
        assert_eq!(serde_json::from_str::<KeyHash>(&hash).unwrap(), one.hash());
        assert!(!hash.contains(&one.expose()[3..]));
    }
}
