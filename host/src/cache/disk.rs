//! The disk tier: compiled artifacts under the cache directory, so a restarted host loads
//! its components instead of compiling them again.
//!
//! # Trust boundary
//!
//! Loading an artifact runs its machine code: wasmtime's deserialization trusts its input
//! completely. So only files this host wrote are ever loaded. Each artifact has a MAC beside
//! it (keyed blake3), keyed by a random secret created in the cache directory on first use
//! (`mac.key`, mode 0600). A file that is truncated, corrupt, written by another host, or
//! left by another wasmtime version or engine configuration fails the MAC (or wasmtime's own
//! compatibility check, or is simply never looked up: the file name carries the engine's
//! compatibility hash) and is deleted and recompiled; it never runs. The bytes are read once,
//! checked, and that same buffer is deserialized, so a file changing after the check cannot
//! matter; new files are written under temporary names and renamed in, never modified in place.
//! Whoever can read the key *and* write the directory can still plant code: keep the data
//! directory as private as the host's binary. The one other source of artifacts is this
//! host's compiler process (`compile`), whose output is loaded ([`DiskCache::verify`]) and
//! only then stored with its MAC.

use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::Engine;
use wasmtime::component::Component;

const KEY_FILE: &str = "mac.key";

/// Compiled artifacts on disk, each checked against its MAC before it is loaded.
pub struct DiskCache {
    dir: PathBuf,
    key: [u8; 32],
    temp_counter: AtomicU64,
}

/// What looking up an artifact found.
pub enum Lookup {
    /// A valid artifact, loaded.
    Hit(Component),
    /// No artifact for this component.
    Miss,
    /// An artifact that failed its checks; it has been deleted (and the reason logged).
    Rejected,
}

impl DiskCache {
    /// Opens (creating if needed) the cache directory and its MAC key.
    pub fn open(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            key: load_or_create_key(&dir.join(KEY_FILE))?,
            temp_counter: AtomicU64::new(0),
        })
    }

    /// Loads the artifact of the component with content hash `hash` compiled for `engine`, if
    /// a valid one exists.
    pub fn load(&self, hash: &blake3::Hash, engine: &Engine) -> Lookup {
        let (artifact_path, mac_path) = self.paths(hash, engine);
        let artifact = match fs::read(&artifact_path) {
            Ok(artifact) => artifact,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Lookup::Miss,
            Err(error) => return self.reject(hash, engine, format!("unreadable: {error}")),
        };
        let Ok(mac) = fs::read(&mac_path) else {
            return self.reject(hash, engine, "its MAC is missing".into());
        };
        let Ok(mac) = <[u8; 32]>::try_from(mac.as_slice()) else {
            return self.reject(hash, engine, "its MAC is malformed".into());
        };
        // blake3::Hash compares in constant time.
        if blake3::keyed_hash(&self.key, &artifact) != blake3::Hash::from(mac) {
            return self.reject(
                hash,
                engine,
                "its MAC does not match: corrupt, truncated or foreign".into(),
            );
        }
        match deserialize(engine, &artifact) {
            Ok(component) => Lookup::Hit(component),
            Err(error) => self.reject(hash, engine, format!("wasmtime refused it: {error:#}")),
        }
    }

    /// Loads an artifact this host's compiler has just written (in a process of its own:
    /// see `compile`), to be stored once it has loaded; wasmtime refuses one compiled for
    /// another engine configuration.
    pub fn verify(&self, artifact: &[u8], engine: &Engine) -> wasmtime::Result<Component> {
        deserialize(engine, artifact)
    }

    /// Writes the artifact of the component with content hash `hash` compiled for `engine`:
    /// the MAC first, then the artifact, each to a temporary file renamed into place, so a
    /// reader sees either no artifact or a complete one with its MAC.
    pub fn store(&self, hash: &blake3::Hash, engine: &Engine, artifact: &[u8]) -> io::Result<()> {
        let (artifact_path, mac_path) = self.paths(hash, engine);
        let mac = blake3::keyed_hash(&self.key, artifact);
        self.write_atomically(&mac_path, mac.as_bytes())?;
        self.write_atomically(&artifact_path, artifact)
    }

    /// The artifact's and its MAC's files. Their names carry the engine's compatibility hash:
    /// artifacts of other wasmtime versions, configurations (metered code or not) or targets
    /// have other names and are never looked up.
    fn paths(&self, hash: &blake3::Hash, engine: &Engine) -> (PathBuf, PathBuf) {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let stem = format!("{}-{:016x}", hash.to_hex(), hasher.finish());
        (
            self.dir.join(format!("{stem}.cwasm")),
            self.dir.join(format!("{stem}.mac")),
        )
    }

    fn reject(&self, hash: &blake3::Hash, engine: &Engine, reason: String) -> Lookup {
        let (artifact_path, mac_path) = self.paths(hash, engine);
        tracing::warn!(path = %artifact_path.display(), %reason, "deleting a cached artifact");
        let _ = fs::remove_file(artifact_path);
        let _ = fs::remove_file(mac_path);
        Lookup::Rejected
    }

    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let temp = self.dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            self.temp_counter.fetch_add(1, Ordering::Relaxed)
        ));
        crate::atomic_file::write(&temp, path, bytes, 0o644)
    }
}

/// The component in `artifact`, which this host's own wasmtime serialized: the bytes of a file
/// whose MAC was checked against this host's secret key, or what this host's compiler (the
/// same binary, in a child process, fed the component's bytes) has just written.
fn deserialize(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `artifact` is exactly what this host's wasmtime serialized (see the trust
    // boundary in the module docs, and the caller's contract above); wasmtime checks version
    // and configuration compatibility itself. A compiler process is trusted as a compile in
    // this process would be: it runs this binary's code on the same bytes.
    #[allow(unsafe_code)]
    unsafe {
        Component::deserialize(engine, artifact)
    }
}

/// Reads the cache's MAC key, or creates one (readable by this user only). Hosts sharing the
/// directory agree on one key: a new key is written whole to a file of its own, then linked
/// into place only if no key is there yet, so nobody ever reads a half-written key.
fn load_or_create_key(path: &Path) -> io::Result<[u8; 32]> {
    match fs::read(path) {
        Ok(key) => return parse_key(path, &key),
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
        Err(_) => {}
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(io::Error::other)?;
    // Unique per process and per attempt: the key's own first bytes.
    let temp = path.with_file_name(format!(
        ".{KEY_FILE}.tmp-{}-{}",
        std::process::id(),
        blake3::Hash::from_bytes(key)
            .to_hex()
            .get(..16)
            .unwrap_or_default()
    ));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)?;
    let linked = file
        .write_all(&key)
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::hard_link(&temp, path));
    let _ = fs::remove_file(&temp);
    match linked {
        Ok(()) => Ok(key),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            parse_key(path, &fs::read(path)?)
        }
        Err(error) => Err(error),
    }
}

fn parse_key(path: &Path, key: &[u8]) -> io::Result<[u8; 32]> {
    <[u8; 32]>::try_from(key).map_err(|_| {
        io::Error::other(format!(
            "{} is not a 32-byte key: delete it (and the cache) to start afresh",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_opening_one_directory_at_once_agree_on_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let keys: Vec<[u8; 32]> = std::thread::scope(|scope| {
            let openers: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| load_or_create_key(&path).unwrap()))
                .collect();
            openers.into_iter().map(|o| o.join().unwrap()).collect()
        });
        assert!(keys.iter().all(|key| *key == keys[0]));
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(files.len(), 1, "no temporary file is left behind");
    }
}
