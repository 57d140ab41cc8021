//! Signed spans of time written the way coordinators write them: `-7d`, `-2h`,
//! `+3d`, `-1d12h`, `90m`, `0`.
//!
//! An [`Offset`] places a step relative to a meeting's start (negative = before)
//! and also serves for non-negative lengths (a meeting's duration, a misfire
//! grace window). Units are `w` (7 days), `d` (24 hours), `h`, `m` and `s`; a
//! day is always 24 hours of absolute time, so `-1d` before a 09:00 meeting is
//! 09:00 the day before except across a DST change, where it is 24 real hours.

use std::fmt;
use std::str::FromStr;

use chrono::TimeDelta;

/// A signed number of seconds, parsed from and printed as `[+-]<n><unit>...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset {
    seconds: i64,
}

/// Why an offset string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OffsetError {
    #[error("empty offset: write e.g. -7d, -2h or +3d")]
    Empty,
    #[error(
        "'{0}' is not an offset: write a number and a unit (w, d, h, m, s), e.g. -7d, -2h30m or +3d"
    )]
    Malformed(String),
    #[error("offset '{0}' is too large")]
    TooLarge(String),
}

/// Offsets beyond a year are almost surely typos (`-700d`), and keep arithmetic far from overflow.
const MAX_SECONDS: i64 = 366 * 24 * 3600;

impl Offset {
    pub const ZERO: Offset = Offset { seconds: 0 };

    pub const fn from_seconds(seconds: i64) -> Offset {
        Offset { seconds }
    }

    pub const fn seconds(self) -> i64 {
        self.seconds
    }

    pub fn is_negative(self) -> bool {
        self.seconds < 0
    }

    pub fn as_delta(self) -> TimeDelta {
        TimeDelta::seconds(self.seconds)
    }
}

impl FromStr for Offset {
    type Err = OffsetError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(OffsetError::Empty);
        }
        if trimmed == "0" {
            return Ok(Offset::ZERO);
        }
        let malformed = || OffsetError::Malformed(trimmed.to_owned());
        let (sign, rest) = match trimmed.as_bytes()[0] {
            b'-' => (-1, &trimmed[1..]),
            b'+' => (1, &trimmed[1..]),
            _ => (1, trimmed),
        };
        if rest.is_empty() {
            return Err(malformed());
        }
        let mut total: i64 = 0;
        let mut number: Option<i64> = None;
        let mut last_unit_rank: Option<usize> = None;
        for c in rest.chars() {
            if let Some(digit) = c.to_digit(10) {
                let n = number.unwrap_or(0);
                number = Some(
                    n.checked_mul(10)
                        .and_then(|n| n.checked_add(i64::from(digit)))
                        .ok_or_else(|| OffsetError::TooLarge(trimmed.to_owned()))?,
                );
                continue;
            }
            let (rank, unit_seconds) = match c {
                'w' => (0, 7 * 86_400),
                'd' => (1, 86_400),
                'h' => (2, 3_600),
                'm' => (3, 60),
                's' => (4, 1),
                _ => return Err(malformed()),
            };
            // Units must come largest first, each once: `1d12h`, not `12h1d` or `1h1h`.
            if last_unit_rank.is_some_and(|last| rank <= last) {
                return Err(malformed());
            }
            last_unit_rank = Some(rank);
            let n = number.take().ok_or_else(malformed)?;
            total = n
                .checked_mul(unit_seconds)
                .and_then(|s| total.checked_add(s))
                .ok_or_else(|| OffsetError::TooLarge(trimmed.to_owned()))?;
        }
        if number.is_some() {
            return Err(malformed()); // digits with no unit: `-7`
        }
        if total > MAX_SECONDS {
            return Err(OffsetError::TooLarge(trimmed.to_owned()));
        }
        Ok(Offset {
            seconds: sign * total,
        })
    }
}

impl fmt::Display for Offset {
    /// The shortest canonical form: `-7d`, `+2h30m`, `0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.seconds == 0 {
            return f.write_str("0");
        }
        f.write_str(if self.seconds < 0 { "-" } else { "+" })?;
        let mut rest = self.seconds.unsigned_abs();
        for (unit, size) in [('d', 86_400u64), ('h', 3_600), ('m', 60), ('s', 1)] {
            if rest >= size {
                write!(f, "{}{unit}", rest / size)?;
                rest %= size;
            }
        }
        Ok(())
    }
}

impl serde::Serialize for Offset {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Offset {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Offset;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an offset such as -7d, -2h, +3d or 0")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Offset, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Offset, E> {
                if v == 0 {
                    Ok(Offset::ZERO)
                } else {
                    Err(E::custom(OffsetError::Malformed(v.to_string())))
                }
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Offset, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl schemars::JsonSchema for Offset {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Offset".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^(0|[+-]?([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?)$",
            "description": "A signed span of time: a number and a unit, largest unit first (w, d, h, m, s). Negative means before. Examples: -7d, -2h, -1d12h, +3d, 0.",
            "examples": ["-7d", "-1d", "-2h", "+3d"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_coordinators_write() {
        let cases = [
            ("-7d", -7 * 86_400),
            ("+3d", 3 * 86_400),
            ("3d", 3 * 86_400),
            ("-2h", -7_200),
            ("-1d12h", -(86_400 + 12 * 3_600)),
            ("90m", 5_400),
            ("1w", 7 * 86_400),
            ("0", 0),
            ("-0d", 0),
            (" -2h30m ", -(2 * 3_600 + 1_800)),
        ];
        for (text, seconds) in cases {
            assert_eq!(
                text.parse::<Offset>(),
                Ok(Offset::from_seconds(seconds)),
                "{text}"
            );
        }
    }

    #[test]
    fn refuses_what_is_ambiguous_or_wrong() {
        for text in [
            "", "-", "7", "-7", "d", "7x", "1h1d", "1h1h", "--1d", "1.5h", "-7 d", "٣d",
        ] {
            assert!(
                text.parse::<Offset>().is_err(),
                "{text:?} should be refused"
            );
        }
        assert!(matches!(
            "99999999999999999999d".parse::<Offset>(),
            Err(OffsetError::TooLarge(_))
        ));
        assert!(matches!(
            "400d".parse::<Offset>(),
            Err(OffsetError::TooLarge(_))
        ));
    }

    #[test]
    fn prints_a_canonical_form_that_parses_back() {
        for text in ["-7d", "+2h30m", "0", "+1d12h", "-45s"] {
            let offset: Offset = text.parse().unwrap();
            assert_eq!(offset.to_string(), text);
            assert_eq!(offset.to_string().parse::<Offset>().unwrap(), offset);
        }
    }
}
