//! The invitation as one recipient gets it.
//!
//! The engine renders an occurrence's `.ics` once, the same for all its
//! recipients, and queues it with each email. RFC 5546 asks a REQUEST or a
//! CANCEL to name its ORGANIZER and its ATTENDEE (Outlook ignores one that does
//! not), and only this connector knows both: its own sender address and the
//! message's recipient. So each VEVENT gets them here, as the email is built:
//!
//! ```text
//! ORGANIZER;CN=Dialogue Mopti:mailto:dialogue-mopti@example.org
//! ATTENDEE;CN=Oumar Tall;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=FALSE:mailto:oumar@example.org
//! ```
//!
//! `RSVP=FALSE`: palabre reads no iTIP replies, so clients should not offer to
//! send one. An event that already names an ORGANIZER or an ATTENDEE keeps its
//! own. Lines are folded at 75 octets (RFC 5545 §3.1), parameter values quoted
//! when they hold `:`, `;` or `,` (§3.2).

/// Someone the invitation names: a display name (possibly empty) and an address.
pub(crate) struct Party<'a> {
    pub name: &'a str,
    pub address: &'a str,
}

/// The iTIP method of a calendar (`REQUEST`, `CANCEL`, …): the value of its
/// top-level METHOD property, if it has one made of letters and dashes.
pub(crate) fn method(ics: &str) -> Option<String> {
    let mut depth = 0;
    for line in logical_lines(ics) {
        if line.starts_with("BEGIN:") {
            depth += 1;
        } else if line.starts_with("END:") {
            depth -= 1;
        } else if depth == 1
            && let Some(value) = line.strip_prefix("METHOD:")
        {
            let value = value.trim().to_ascii_uppercase();
            let token =
                !value.is_empty() && value.chars().all(|c| c.is_ascii_uppercase() || c == '-');
            return token.then_some(value);
        }
    }
    None
}

/// `ics` with `organizer` and `attendee` added to each VEVENT that names
/// neither, when its METHOD is REQUEST or CANCEL; otherwise as it is.
pub(crate) fn addressed(ics: &str, organizer: &Party<'_>, attendee: &Party<'_>) -> String {
    if !matches!(method(ics).as_deref(), Some("REQUEST" | "CANCEL")) {
        return ics.to_owned();
    }
    let mut out = String::with_capacity(ics.len() + 400);
    let mut named = false;
    for line in physical_lines(ics) {
        let property = |name: &str| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with([';', ':']))
        };
        if line == "BEGIN:VEVENT" {
            named = false;
        } else if property("ORGANIZER") || property("ATTENDEE") {
            named = true;
        } else if line == "END:VEVENT" && !named {
            out.push_str(&fold(&format!(
                "ORGANIZER{}:{}",
                common_name(organizer.name),
                mailto(organizer.address)
            )));
            out.push_str(&fold(&format!(
                "ATTENDEE{};ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=FALSE:{}",
                common_name(attendee.name),
                mailto(attendee.address)
            )));
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

/// The lines of `ics` as they are written (folded), without their line breaks.
fn physical_lines(ics: &str) -> impl Iterator<Item = &str> {
    ics.split_terminator('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
}

/// The content lines of `ics`, unfolded.
fn logical_lines(ics: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for line in physical_lines(ics) {
        match (line.strip_prefix([' ', '\t']), lines.last_mut()) {
            (Some(rest), Some(last)) => last.push_str(rest),
            _ => lines.push(line.to_owned()),
        }
    }
    lines
}

/// `;CN=…` for a name, quoted if it holds a character a bare parameter value
/// cannot (`:`, `;`, `,`); nothing for an empty name. Control characters and
/// double quotes, which no parameter value can hold, are dropped (a quote
/// becomes an apostrophe).
fn common_name(name: &str) -> String {
    let name: String = name
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if c == '"' { '\'' } else { c })
        .collect();
    let name = name.trim();
    if name.is_empty() {
        String::new()
    } else if name.contains([':', ';', ',']) {
        format!(";CN=\"{name}\"")
    } else {
        format!(";CN={name}")
    }
}

/// A `mailto:` URI (RFC 6068) for an address: octets other than unreserved
/// characters and the few delimiters an address shows as they are (`!$'*+@`),
/// percent-encoded.
fn mailto(address: &str) -> String {
    let mut uri = String::from("mailto:");
    for byte in address.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~!$'*+@".contains(&byte) {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

/// A content line folded at 75 octets on character boundaries, with its CRLF.
fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 8);
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n\
                           UID:w-20261207T090000Z@palabre\r\nSUMMARY:METHOD:CANCEL\r\n\
                           END:VEVENT\r\nEND:VCALENDAR\r\n";

    fn organizer() -> Party<'static> {
        Party {
            name: "Dialogue Mopti",
            address: "dialogue-mopti@example.org",
        }
    }

    #[test]
    fn the_method_is_the_calendars_not_a_summarys() {
        assert_eq!(method(REQUEST).as_deref(), Some("REQUEST"));
        assert_eq!(
            method(&REQUEST.replace("METHOD:REQUEST", "METHOD:CANCEL")).as_deref(),
            Some("CANCEL")
        );
        assert_eq!(method("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"), None);
        assert_eq!(
            method("BEGIN:VCALENDAR\r\nMETHOD:REQ\r\n UEST\r\nEND:VCALENDAR\r\n").as_deref(),
            Some("REQUEST"),
            "unfolded"
        );
        assert_eq!(
            method("BEGIN:VCALENDAR\r\nMETHOD:x; y\r\nEND:VCALENDAR\r\n"),
            None
        );
    }

    #[test]
    fn each_event_names_its_organizer_and_its_attendee() {
        let attendee = Party {
            name: "Oumar Tall",
            address: "oumar@example.org",
        };
        let ics = addressed(REQUEST, &organizer(), &attendee);
        assert!(
            ics.replace("\r\n ", "").contains(
                "\r\nORGANIZER;CN=Dialogue Mopti:mailto:dialogue-mopti@example.org\r\n\
                 ATTENDEE;CN=Oumar Tall;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=FALSE:\
                 mailto:oumar@example.org\r\nEND:VEVENT\r\n"
            ),
            "{ics}"
        );
        assert!(
            ics.contains(";RSVP=FALS\r\n E:mailto:"),
            "folded at 75 octets: {ics}"
        );
        assert_eq!(
            addressed(&ics, &organizer(), &attendee),
            ics,
            "an event that names them keeps its own"
        );
        let publish = REQUEST.replace("METHOD:REQUEST", "METHOD:PUBLISH");
        assert_eq!(addressed(&publish, &organizer(), &attendee), publish);
    }

    #[test]
    fn names_are_quoted_and_lines_folded_on_characters() {
        let attendee = Party {
            name: "Aïssata \"Mama\" Traoré-Cissé, adjointe; état civil\r\n",
            address: "aïssata+mairie@example.org",
        };
        let ics = addressed(REQUEST, &organizer(), &attendee);
        for line in ics.split_terminator("\r\n") {
            assert!(line.len() <= 75, "{line}");
        }
        let unfolded = ics.replace("\r\n ", "");
        assert!(
            unfolded.contains(
                "ATTENDEE;CN=\"Aïssata 'Mama' Traoré-Cissé, adjointe; état civil\";\
                 ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=FALSE:\
                 mailto:a%C3%AFssata+mairie@example.org\r\n"
            ),
            "{unfolded}"
        );
        let nameless = Party {
            name: " ",
            address: "palabre@example.org",
        };
        assert!(
            addressed(REQUEST, &nameless, &nameless)
                .contains("\r\nORGANIZER:mailto:palabre@example.org\r\n")
        );
    }
}
