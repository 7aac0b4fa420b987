//! `Idempotency-Key`: a client that retries a submission (after a timeout, say) with the same
//! key gets the job the first attempt created instead of a second job.
//!
//! Keys are remembered, with a fingerprint of the request they came with, for the most recent
//! `capacity` submissions. The same key with a different request is refused: it is a client
//! bug, and guessing which request was meant would be worse.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::jobs::JobId;

/// Longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 255;

/// What a key says about a submission.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim<T> {
    /// The key is new: this job (what `create` made) was created for it.
    New(T),
    /// The key was used before, for this job.
    Existing(JobId),
}

/// A key was used before for a different request.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("the Idempotency-Key {0:?} was used for a different request; use a new key")]
pub struct KeyReused(pub String);

/// The keys of recent submissions.
pub struct IdempotencyKeys {
    seen: Mutex<Seen>,
    capacity: usize,
}

#[derive(Default)]
struct Seen {
    jobs: HashMap<String, (blake3::Hash, JobId)>,
    /// Keys, oldest first, to forget past the capacity.
    order: VecDeque<String>,
}

impl IdempotencyKeys {
    /// Remembers the keys of the last `capacity` keyed submissions.
    pub fn new(capacity: usize) -> Self {
        Self {
            seen: Mutex::default(),
            capacity: capacity.max(1),
        }
    }

    /// The job for `key`: the one created before for the same request (`fingerprint`), or
    /// one `create`d now (it returns the new job's id and whatever the caller wants back).
    /// Runs `create` under the lock, so two submissions racing with one key create one job.
    pub fn claim<T, E>(
        &self,
        key: &str,
        fingerprint: blake3::Hash,
        create: impl FnOnce() -> Result<(JobId, T), E>,
    ) -> Result<Result<Claim<T>, KeyReused>, E> {
        let mut seen = self.seen.lock().expect("idempotency keys poisoned");
        if let Some((known, id)) = seen.jobs.get(key) {
            return Ok(if *known == fingerprint {
                Ok(Claim::Existing(*id))
            } else {
                Err(KeyReused(key.to_owned()))
            });
        }
        let (id, created) = create()?;
        seen.jobs.insert(key.to_owned(), (fingerprint, id));
        seen.order.push_back(key.to_owned());
        if seen.order.len() > self.capacity
            && let Some(oldest) = seen.order.pop_front()
        {
            seen.jobs.remove(&oldest);
        }
        Ok(Ok(Claim::New(created)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(keys: &IdempotencyKeys, key: &str, request: &str) -> Result<Claim<JobId>, KeyReused> {
        let id = JobId::new();
        keys.claim(key, blake3::hash(request.as_bytes()), || {
            Ok::<_, ()>((id, id))
        })
        .unwrap()
    }

    #[test]
    fn a_retry_gets_the_first_job_and_a_different_request_is_refused() {
        let keys = IdempotencyKeys::new(10);
        let Ok(Claim::New(first)) = claim(&keys, "k", "a") else {
            panic!("a new key creates a job")
        };
        assert_eq!(claim(&keys, "k", "a"), Ok(Claim::Existing(first)));
        assert_eq!(claim(&keys, "k", "b"), Err(KeyReused("k".into())));
        assert!(matches!(claim(&keys, "other", "a"), Ok(Claim::New(_))));
    }

    #[test]
    fn old_keys_are_forgotten_past_the_capacity() {
        let keys = IdempotencyKeys::new(2);
        for key in ["a", "b", "c"] {
            assert!(matches!(claim(&keys, key, "r"), Ok(Claim::New(_))));
        }
        assert!(matches!(claim(&keys, "a", "r"), Ok(Claim::New(_))));
        assert!(matches!(claim(&keys, "c", "r"), Ok(Claim::Existing(_))));
    }

    #[test]
    fn a_failed_creation_remembers_nothing() {
        let keys = IdempotencyKeys::new(2);
        let failed = keys.claim("k", blake3::hash(b"r"), || {
            Err::<(JobId, ()), _>("queue full")
        });
        assert_eq!(failed, Err("queue full"));
        assert!(matches!(claim(&keys, "k", "r"), Ok(Claim::New(_))));
    }
}
