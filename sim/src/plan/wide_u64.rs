//! A u64 that may exceed `i64::MAX` (a drawn seed, a fault's `pick` or `arrangement`) in a
//! human-readable file: TOML integers are i64, so such a value is written as a decimal string
//! and read back from either form. Binary encodings (the trace hash's bincode) keep the plain
//! u64, so no hash changes.

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

pub fn serialize<S: Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    if serializer.is_human_readable() && i64::try_from(*value).is_err() {
        serializer.serialize_str(&value.to_string())
    } else {
        serializer.serialize_u64(*value)
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    if deserializer.is_human_readable() {
        deserializer.deserialize_any(WideU64)
    } else {
        deserializer.deserialize_u64(WideU64)
    }
}

struct WideU64;

impl Visitor<'_> for WideU64 {
    type Value = u64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an unsigned 64-bit integer, or one written as a decimal string")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<u64, E> {
        Ok(value)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<u64, E> {
        u64::try_from(value).map_err(|_| E::custom(format!("{value} is negative")))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<u64, E> {
        text.parse()
            .map_err(|_| E::custom(format!("{text:?} is not an unsigned 64-bit integer")))
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Holder {
        #[serde(with = "super")]
        value: u64,
    }

    #[test]
    fn values_past_i64_round_trip_through_toml() {
        for value in [0, 7, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX] {
            let text = toml::to_string(&Holder { value }).expect("serializes");
            assert_eq!(
                toml::from_str::<Holder>(&text).expect("parses"),
                Holder { value }
            );
        }
        let err = toml::from_str::<Holder>("value = \"x1\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not an unsigned 64-bit integer"), "{err}");
        assert!(toml::from_str::<Holder>("value = -1").is_err());
    }

    #[test]
    fn binary_encodings_keep_the_plain_u64() {
        let value = u64::MAX - 3;
        let bytes = bincode::serialize(&Holder { value }).expect("serializes");
        assert_eq!(bytes, bincode::serialize(&value).expect("serializes"));
    }
}
