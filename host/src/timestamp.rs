//! Wall-clock instants as the API shows them: RFC 3339 in UTC, to the millisecond.

use std::time::SystemTime;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A moment in wall-clock time, serialized as e.g. `2026-11-23T06:21:27.123Z`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, utoipa::ToSchema)]
#[schema(value_type = String, format = DateTime, example = "2026-11-23T06:21:27.123Z")]
pub struct Timestamp(SystemTime);

impl Timestamp {
    /// Now.
    pub fn now() -> Self {
        Self(SystemTime::now())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_rfc3339(&text)
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_rfc3339_millis(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn serializes_as_rfc3339_utc_with_milliseconds() {
        let moment = Timestamp(SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_414_887_123));
        let text = serde_json::to_string(&moment).unwrap();
        assert_eq!(text, "\"2026-11-23T06:21:27.123Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&text).unwrap(), moment);
    }
}
