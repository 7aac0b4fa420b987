//! Ids of things the host creates (jobs, batches): UUIDv7s, so they sort by creation time, each
//! its own type so one cannot be passed for the other.
//!
//! An id cannot be guessed from another: after its 48-bit millisecond timestamp, its other 74
//! bits (`rand_a` and `rand_b`) come from the OS's random source. Ids minted in the same
//! millisecond still sort in the order they were minted (RFC 9562 §6.2, method 2, "monotonic
//! random"): the first of a millisecond takes 73 random bits (the top one clear, to leave room
//! above it), and each next one adds 1 plus a random 64-bit number to the one before, so even
//! knowing the previous id leaves 64 random bits to guess. When a millisecond runs out of room
//! (after about 2,000 ids), the next id takes the next millisecond; a clock that goes back is
//! outwaited the same way, so ids only ever grow, and listing jobs by id lists them in the
//! order they were submitted.

use std::cell::RefCell;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// Bits of an id after its timestamp that are not its version or variant.
const TAIL_BITS: u32 = 74;

/// The last id minted, as (milliseconds, tail).
static LAST: Mutex<(u64, u128)> = Mutex::new((0, 0));

/// A new UUIDv7, greater than every one minted before it in this process.
pub(crate) fn mint() -> uuid::Uuid {
    let random = random();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64);
    let mut last = LAST.lock().unwrap_or_else(PoisonError::into_inner);
    *last = next(*last, now, random);
    let (millis, tail) = *last;
    drop(last);
    uuid::Uuid::from_u128(v7(millis, tail))
}

/// Bytes drawn from the OS's random source at a time, by each thread: one system call per 32
/// ids instead of one per id (which cost a no-op job half a microsecond).
const POOL_BYTES: usize = 512;

thread_local! {
    /// This thread's random bytes, and how many of them are used.
    static POOL: RefCell<([u8; POOL_BYTES], usize)> =
        const { RefCell::new(([0; POOL_BYTES], POOL_BYTES)) };
}

/// 128 bits from the OS's random source, each used once.
fn random() -> u128 {
    POOL.with_borrow_mut(|(bytes, used)| {
        if *used == POOL_BYTES {
            // Fails only where the OS has no random source at all; nothing could be kept
            // secret there.
            getrandom::fill(bytes).expect("the OS random source");
            *used = 0;
        }
        let mut drawn = [0; 16];
        drawn.copy_from_slice(&bytes[*used..*used + 16]);
        *used += 16;
        u128::from_ne_bytes(drawn)
    })
}

/// The timestamp and tail of the id after `last`, minted at `now` (in milliseconds) with
/// `random` bits.
fn next((last_millis, last_tail): (u64, u128), now: u64, random: u128) -> (u64, u128) {
    let fresh = random & ((1 << (TAIL_BITS - 1)) - 1);
    if now > last_millis {
        return (now, fresh);
    }
    let tail = last_tail + 1 + u128::from(random as u64);
    if tail < 1 << TAIL_BITS {
        (last_millis, tail)
    } else {
        (last_millis + 1, fresh)
    }
}

/// The UUIDv7 of a timestamp and a tail: `unix_ts_ms` (48 bits), version 7 (4), `rand_a` (the
/// tail's top 12 bits), variant `10` (2), `rand_b` (its other 62).
fn v7(millis: u64, tail: u128) -> u128 {
    let rand_b = tail & ((1 << 62) - 1);
    let rand_a = tail >> 62;
    (u128::from(millis) & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
}

/// Defines `$name`, a UUIDv7 id type that serializes as its hyphenated text.
macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize, utoipa::ToSchema,
        )]
        #[serde(transparent)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A new id: unguessable, and greater than every id minted before it.
            pub fn new() -> Self {
                Self($crate::id::mint())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                text.parse().map(Self)
            }
        }
    };
}

pub(crate) use uuid_id;

#[cfg(test)]
mod tests {
    use super::*;

    /// The tail of an id: the 74 bits that are neither timestamp, version nor variant.
    fn tail(id: u128) -> u128 {
        (id >> 64 & 0xfff) << 62 | id & ((1 << 62) - 1)
    }

    #[test]
    fn ids_are_version_7_and_keep_their_timestamp() {
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let id = mint();
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        let millis = id.as_u128() >> 80;
        // A millisecond ahead at most: one that ran out of room moves on.
        assert!(
            (before.as_millis()..=after.as_millis() + 1).contains(&millis),
            "{millis}"
        );
        let (millis, all_ones) = (1_700_000_000_123, (1 << TAIL_BITS) - 1);
        let id = uuid::Uuid::from_u128(v7(millis, all_ones));
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(id.as_u128() >> 80, u128::from(millis));
        assert_eq!(tail(id.as_u128()), all_ones);
    }

    #[test]
    fn ids_minted_in_one_millisecond_differ_by_64_random_bits_and_keep_their_order() {
        let now = 1_700_000_000_000;
        let mut last = next((0, 0), now, random());
        let mut set_bits = [0u32; 64];
        let mut minted = 0;
        // About 2,000 fit in a millisecond; stop at the first that moves on.
        while minted < 1_000 {
            let id = next(last, now, random());
            assert_eq!(id.0, now, "ran out of room after {minted} ids");
            assert!(id.1 > last.1, "not in order");
            // What was added on top of the previous id, besides the 1.
            let step = (id.1 - last.1 - 1) as u64;
            for (bit, count) in set_bits.iter_mut().enumerate() {
                *count += (step >> bit & 1) as u32;
            }
            last = id;
            minted += 1;
        }
        // Each of the 64 bits is set in about half the steps: all 64 are random (a counter,
        // as `Uuid::now_v7` has, adds 1 and sets none of them). Off by 0.1 is 6 standard
        // deviations.
        for (bit, count) in set_bits.into_iter().enumerate() {
            let share = f64::from(count) / f64::from(minted);
            assert!((0.4..=0.6).contains(&share), "bit {bit} set in {share:.2}");
        }
    }

    #[test]
    fn a_full_millisecond_or_a_clock_that_goes_back_moves_ahead_in_order() {
        let full = (1_000, (1 << TAIL_BITS) - 1);
        let moved = next(full, 1_000, random());
        assert_eq!(moved.0, 1_001);
        assert!(moved.1 < 1 << (TAIL_BITS - 1));
        let back = next((1_000, 5), 900, u128::from(u64::MAX));
        assert_eq!(back, (1_000, 5 + 1 + u128::from(u64::MAX)));
        let fresh = next((1_000, 5), 1_001, u128::MAX);
        assert_eq!(fresh, (1_001, (1 << (TAIL_BITS - 1)) - 1));
    }

    #[test]
    fn ids_minted_at_once_are_distinct_and_increasing() {
        let ids: Vec<u128> = (0..100_000).map(|_| mint().as_u128()).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
        // Many share a millisecond, and still differ in their random bits.
        let shared = ids.windows(2).filter(|pair| pair[0] >> 80 == pair[1] >> 80);
        assert!(shared.count() > 1_000);
    }
}
