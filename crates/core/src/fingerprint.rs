//! Stable 64-bit fingerprints (FNV-1a) for ids and change detection.
//!
//! Unlike std's hasher, FNV-1a gives the same value on every build and platform,
//! which matters for anything stored or shown to people.

/// The FNV-1a hash of the concatenated parts.
pub fn fnv1a<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(fnv1a([&b""[..]]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a([&b"a"[..]]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a([&b"ab"[..]]), fnv1a([&b"a"[..], &b"b"[..]]));
    }
}
