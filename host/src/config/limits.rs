//! Per-job limits: the defaults a request leaves out, and the ceilings it may not pass.

use std::time::Duration;

use crate::engine::{FuelMetering, Limits};

/// How request limits become a job's [`Limits`]: defaults for what a request leaves out, and
/// ceilings it may not pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitPolicy {
    /// Deadline of a job that asks for none.
    pub default_timeout: Duration,
    /// Longest deadline a job may ask for.
    pub max_timeout: Duration,
    /// Memory limit of a job that asks for none, in bytes.
    pub default_memory_bytes: usize,
    /// Largest memory limit a job may ask for, in bytes.
    pub max_memory_bytes: usize,
    /// Largest fuel a job may ask for; `None` is no ceiling.
    pub max_fuel: Option<u64>,
    /// Which jobs count fuel; with [`FuelMetering::Never`] none may ask for a budget.
    pub fuel_metering: FuelMetering,
    /// Largest output a job may return (and the limit of one that asks for none), in bytes.
    pub max_output_bytes: usize,
}

impl LimitPolicy {
    /// The policy of `taskhost serve` without flags: 30 s by default, at most 5 minutes;
    /// 256 MiB of memory by default, at most 1 GiB; fuel budgets allowed, with no ceiling; outputs of
    /// at most 1 MiB.
    pub const DEFAULT: Self = Self {
        default_timeout: Duration::from_secs(30),
        max_timeout: Duration::from_secs(300),
        default_memory_bytes: 256 << 20,
        max_memory_bytes: 1024 << 20,
        max_fuel: None,
        fuel_metering: FuelMetering::OnDemand,
        max_output_bytes: 1 << 20,
    };
}

impl Default for LimitPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Limits a job asked for, in the units of the API; `None` takes the default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestedLimits {
    /// `timeout_ms`.
    pub timeout_ms: Option<u64>,
    /// `fuel`.
    pub fuel: Option<u64>,
    /// `memory_mib`.
    pub memory_mib: Option<usize>,
    /// `max_output_kib`.
    pub max_output_kib: Option<usize>,
}

/// A limit a job asked for that this host does not allow.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// Above the host's ceiling, or zero.
    #[error("{field} must be between 1 and {max}, got {requested}")]
    OutOfRange {
        /// The request field.
        field: &'static str,
        /// What was asked.
        requested: u64,
        /// The ceiling.
        max: u64,
    },
    /// `fuel` was given but this host does not meter fuel.
    #[error(
        "this host runs without fuel metering (--fuel-metering never), so `fuel` cannot be set"
    )]
    FuelNotMetered,
}

impl LimitPolicy {
    /// The limits of a job that asked for `requested`.
    pub(crate) fn resolve(&self, requested: RequestedLimits) -> Result<Limits, LimitError> {
        let timeout_ms = in_range(
            "timeout_ms",
            requested.timeout_ms,
            self.default_timeout.as_millis() as u64,
            self.max_timeout.as_millis() as u64,
        )?;
        let memory_mib = in_range(
            "memory_mib",
            requested.memory_mib.map(|mib| mib as u64),
            (self.default_memory_bytes >> 20) as u64,
            (self.max_memory_bytes >> 20) as u64,
        )?;
        let fuel = match requested.fuel {
            Some(_) if !self.fuel_metering.allows_budgets() => {
                return Err(LimitError::FuelNotMetered);
            }
            Some(fuel) => Some(in_range(
                "fuel",
                Some(fuel),
                fuel,
                self.max_fuel.unwrap_or(u64::MAX),
            )?),
            None => self.max_fuel,
        };
        let max_output_kib = in_range(
            "max_output_kib",
            requested.max_output_kib.map(|kib| kib as u64),
            (self.max_output_bytes >> 10) as u64,
            (self.max_output_bytes >> 10) as u64,
        )?;
        Ok(Limits {
            timeout: Duration::from_millis(timeout_ms),
            fuel,
            memory_bytes: (memory_mib as usize) << 20,
            max_output_bytes: (max_output_kib as usize) << 10,
        })
    }
}

fn in_range(
    field: &'static str,
    requested: Option<u64>,
    default: u64,
    max: u64,
) -> Result<u64, LimitError> {
    match requested {
        None => Ok(default),
        Some(value) if (1..=max).contains(&value) => Ok(value),
        Some(requested) => Err(LimitError::OutOfRange {
            field,
            requested,
            max,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: LimitPolicy = LimitPolicy {
        max_fuel: Some(1_000_000),
        ..LimitPolicy::DEFAULT
    };

    #[test]
    fn a_request_without_limits_gets_the_defaults() {
        let limits = POLICY.resolve(RequestedLimits::default()).unwrap();
        assert_eq!(limits.timeout, Duration::from_secs(30));
        assert_eq!(limits.memory_bytes, 256 << 20);
        assert_eq!(
            limits.fuel,
            Some(1_000_000),
            "the fuel ceiling is the default"
        );
        assert_eq!(limits.max_output_bytes, 1 << 20, "so is the output's");
    }

    #[test]
    fn requested_limits_within_the_ceilings_are_kept() {
        let limits = POLICY
            .resolve(RequestedLimits {
                timeout_ms: Some(5),
                fuel: Some(7),
                memory_mib: Some(1024),
                max_output_kib: Some(3),
            })
            .unwrap();
        assert_eq!(limits.max_output_bytes, 3 << 10);
        assert_eq!(limits.timeout, Duration::from_millis(5));
        assert_eq!(limits.fuel, Some(7));
        assert_eq!(limits.memory_bytes, 1024 << 20);
    }

    #[test]
    fn limits_above_the_ceiling_or_zero_are_refused_with_the_field_named() {
        for (requested, field) in [
            (
                RequestedLimits {
                    timeout_ms: Some(300_001),
                    ..Default::default()
                },
                "timeout_ms",
            ),
            (
                RequestedLimits {
                    timeout_ms: Some(0),
                    ..Default::default()
                },
                "timeout_ms",
            ),
            (
                RequestedLimits {
                    memory_mib: Some(1025),
                    ..Default::default()
                },
                "memory_mib",
            ),
            (
                RequestedLimits {
                    fuel: Some(1_000_001),
                    ..Default::default()
                },
                "fuel",
            ),
            (
                RequestedLimits {
                    max_output_kib: Some(1025),
                    ..Default::default()
                },
                "max_output_kib",
            ),
        ] {
            let error = POLICY.resolve(requested).unwrap_err();
            assert!(error.to_string().starts_with(field), "{error}");
        }
    }

    #[test]
    fn fuel_cannot_be_asked_for_without_metering() {
        let policy = LimitPolicy {
            fuel_metering: FuelMetering::Never,
            max_fuel: None,
            ..POLICY
        };
        let requested = RequestedLimits {
            fuel: Some(10),
            ..Default::default()
        };
        assert_eq!(policy.resolve(requested), Err(LimitError::FuelNotMetered));
        assert_eq!(
            policy.resolve(RequestedLimits::default()).unwrap().fuel,
            None
        );
    }
}
