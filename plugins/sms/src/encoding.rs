//! What an SMS costs: its encoding (GSM-7 or UCS-2) and how many segments it is
//! sent in.
//!
//! A text whose every character is in the GSM 03.38 alphabet goes as GSM-7: 160
//! septets in one SMS, 153 per segment once it is split (the rest of each segment
//! holds the concatenation header). The extension table (`€ [ ] { } \ ^ ~ |` and
//! form feed) costs two septets, and an escape pair is never split across two
//! segments. Any other character (`ɛ`, `ɔ`, `ŋ` of Bambara, `’`, an emoji) sends
//! the whole text as UCS-2: 70 UTF-16 units in one SMS, 67 per segment, a
//! surrogate pair never split.

/// How a text is encoded on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

/// The encoding, size and segment count of one SMS text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmsSize {
    pub encoding: Encoding,
    /// Septets (GSM-7) or UTF-16 units (UCS-2).
    pub units: usize,
    pub segments: usize,
}

/// The GSM 03.38 basic character set, in table order (0x1B, the escape, excluded).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// The GSM 03.38 extension table: two septets each.
const GSM7_EXTENSION: &str = "\u{0C}^{}\\[~]|€";

/// The cost of `c` in septets, or `None` if GSM-7 cannot carry it.
fn gsm7_septets(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Segments needed for units of the given costs: one if all fit in `single`,
/// else packed greedily into segments of `multi` without splitting a unit.
fn segments(costs: impl Iterator<Item = usize>, single: usize, multi: usize) -> (usize, usize) {
    let costs: Vec<usize> = costs.collect();
    let total: usize = costs.iter().sum();
    if total <= single {
        return (total, 1);
    }
    let mut count = 1;
    let mut used = 0;
    for cost in costs {
        if used + cost > multi {
            count += 1;
            used = 0;
        }
        used += cost;
    }
    (total, count)
}

/// The size of `text` as one SMS.
pub fn sms_size(text: &str) -> SmsSize {
    let septets: Option<Vec<usize>> = text.chars().map(gsm7_septets).collect();
    match septets {
        Some(costs) => {
            let (units, segments) = segments(costs.into_iter(), 160, 153);
            SmsSize {
                encoding: Encoding::Gsm7,
                units,
                segments,
            }
        }
        None => {
            let (units, segments) = segments(text.chars().map(char::len_utf16), 70, 67);
            SmsSize {
                encoding: Encoding::Ucs2,
                units,
                segments,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(text: &str) -> (Encoding, usize, usize) {
        let s = sms_size(text);
        (s.encoding, s.units, s.segments)
    }

    #[test]
    fn tricky_strings() {
        use Encoding::{Gsm7, Ucs2};
        let a = |n: usize| "a".repeat(n);
        let open_e = |n: usize| "ɛ".repeat(n);
        let cases: Vec<(String, (Encoding, usize, usize))> = vec![
            (String::new(), (Gsm7, 0, 1)),
            ("Réunion à Djenné, Ségou".into(), (Gsm7, 23, 1)),
            ("Fête".into(), (Ucs2, 4, 1)),
            ("I bɛ se wa?".into(), (Ucs2, 11, 1)),
            ("Rendez-vous ’demain’".into(), (Ucs2, 20, 1)),
            ("Prix: 5€ [x]".into(), (Gsm7, 15, 1)),
            (a(160), (Gsm7, 160, 1)),
            (a(161), (Gsm7, 161, 2)),
            (a(158) + "€", (Gsm7, 160, 1)),
            // An escape pair at the boundary of two segments moves whole to the next one.
            (a(152) + "€" + a(152).as_str(), (Gsm7, 306, 3)),
            (a(153) + "€" + a(151).as_str(), (Gsm7, 306, 2)),
            (open_e(70), (Ucs2, 70, 1)),
            (open_e(71), (Ucs2, 71, 2)),
            ("👍".into(), (Ucs2, 2, 1)),
            // A surrogate pair is never split either.
            (open_e(66) + "👍" + open_e(66).as_str(), (Ucs2, 134, 3)),
            (open_e(65) + "👍" + open_e(67).as_str(), (Ucs2, 134, 2)),
        ];
        for (text, expected) in cases {
            assert_eq!(size(&text), expected, "{text}");
        }
    }

    #[test]
    fn the_basic_table_has_its_127_characters() {
        assert_eq!(GSM7_BASIC.chars().count(), 127);
        assert_eq!(GSM7_EXTENSION.chars().count(), 10);
    }
}
