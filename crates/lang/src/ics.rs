//! iCalendar (RFC 5545) invitations attached to meeting emails, and the
//! milestones timeline as a calendar to import.
//!
//! One occurrence has one stable UID (`<workflow>-<occurrence>@palabre`), so a
//! calendar that received the invitation updates the same event when a later
//! message carries a higher SEQUENCE (the occurrence moved) or METHOD:CANCEL.
//!
//! [`render`] writes what is the same for every recipient of an occurrence; it
//! is queued with each email of the occurrence. The email connector adds the
//! `ORGANIZER` (its own sender address) and the recipient's `ATTENDEE` to each
//! VEVENT as it sends, which RFC 5546 asks of a REQUEST or a CANCEL: only the
//! connector knows both, and the stored text stays free of addresses.

use chrono::{DateTime, TimeDelta, Utc};

/// What the invitation says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalendarMethod {
    Request,
    Cancel,
}

/// The facts of one occurrence needed for its calendar entry.
#[derive(Debug, Clone)]
pub struct CalendarEvent<'a> {
    pub workflow: &'a str,
    pub occurrence: DateTime<Utc>,
    pub start: DateTime<Utc>,
    pub duration: TimeDelta,
    pub title: &'a str,
    pub venue: &'a str,
    pub sequence: u32,
    pub method: CalendarMethod,
}

/// Escapes a TEXT value (RFC 5545 §3.3.11): backslash, semicolon, comma and line
/// breaks escaped; other control characters, which TEXT cannot hold, dropped.
fn text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {
                // CRLF and a lone CR are both one line break.
                if chars.peek() != Some(&'\n') {
                    out.push_str("\\n");
                }
            }
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Folds a content line at 75 octets (RFC 5545 §3.1), on character boundaries.
fn fold(line: &str) -> String {
    let mut out = String::new();
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out
}

/// Content lines folded, each ended by CRLF.
fn lines(lines: &[String]) -> String {
    lines.iter().map(|l| fold(l) + "\r\n").collect()
}

/// The stable UID of an occurrence.
pub fn uid(workflow: &str, occurrence: DateTime<Utc>) -> String {
    format!("{workflow}-{}@palabre", occurrence.format("%Y%m%dT%H%M%SZ"))
}

/// The iCalendar text of an invitation (or its cancellation), without its
/// ORGANIZER and ATTENDEE, which the email connector adds per recipient.
pub fn render(event: &CalendarEvent<'_>, stamp: DateTime<Utc>) -> String {
    let format = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
    let (method, status) = match event.method {
        CalendarMethod::Request => ("REQUEST", "CONFIRMED"),
        CalendarMethod::Cancel => ("CANCEL", "CANCELLED"),
    };
    lines(&[
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//palabre//EN".to_owned(),
        format!("METHOD:{method}"),
        "BEGIN:VEVENT".to_owned(),
        format!("UID:{}", uid(event.workflow, event.occurrence)),
        format!("SEQUENCE:{}", event.sequence),
        format!("DTSTAMP:{}", format(stamp)),
        format!("DTSTART:{}", format(event.start)),
        format!("DTEND:{}", format(event.start + event.duration)),
        format!("SUMMARY:{}", text(event.title)),
        format!("LOCATION:{}", text(event.venue)),
        format!("STATUS:{status}"),
        "END:VEVENT".to_owned(),
        "END:VCALENDAR".to_owned(),
    ])
}

/// The stable UID of a milestone's due date: its plan and id, nothing that
/// changes when it slips, so a calendar importing the timeline again updates
/// the event. (`.due`, not the UID the to-dos of earlier versions had, so that
/// a client that kept those does not see an event replace a to-do.)
pub fn milestone_uid(plan: &str, milestone: &str) -> String {
    format!("{plan}.{milestone}.due@palabre")
}

/// Milestones as a calendar to import: one all-day VEVENT per milestone on its
/// due date (DTEND the next day, as RFC 5545 §3.6.1 has it), transparent, since
/// a due date makes nobody busy. Google Calendar and Outlook import events and
/// ignore to-dos; there are no VTODOs beside them, which clients reading both
/// (Thunderbird, Apple) would show twice. The owner, the status and what a
/// milestone waits for are in its DESCRIPTION; the dependencies also as
/// `RELATED-TO;RELTYPE=DEPENDS-ON` (RFC 9253).
pub fn milestone_events(rows: &[crate::milestones::TimelineRow], stamp: DateTime<Utc>) -> String {
    use crate::milestones::MilestoneStatus;
    let mut out = vec![
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//palabre//milestones//FR".to_owned(),
        "CALSCALE:GREGORIAN".to_owned(),
    ];
    let date = |d: chrono::NaiveDate| d.format("%Y%m%d").to_string();
    for row in rows {
        let status = match row.status {
            MilestoneStatus::Cancelled => "CANCELLED",
            _ => "CONFIRMED",
        };
        let mut description = format!("owner: {}\nstatus: {}", row.owner, row.status);
        if !row.blocked_by.is_empty() {
            description.push_str(&format!("\nwaits for: {}", row.blocked_by.join(", ")));
        }
        out.push("BEGIN:VEVENT".to_owned());
        out.push(format!("UID:{}", milestone_uid(&row.plan, &row.id)));
        out.push(format!("DTSTAMP:{}", stamp.format("%Y%m%dT%H%M%SZ")));
        out.push(format!("DTSTART;VALUE=DATE:{}", date(row.due)));
        out.push(format!(
            "DTEND;VALUE=DATE:{}",
            date(row.due + chrono::Days::new(1))
        ));
        out.push(format!("SUMMARY:{}", text(&row.title)));
        out.push(format!("DESCRIPTION:{}", text(&description)));
        out.push("TRANSP:TRANSPARENT".to_owned());
        out.push(format!("STATUS:{status}"));
        for dep in &row.blocked_by {
            out.push(format!(
                "RELATED-TO;RELTYPE=DEPENDS-ON:{}",
                milestone_uid(&row.plan, dep)
            ));
        }
        out.push("END:VEVENT".to_owned());
    }
    out.push("END:VCALENDAR".to_owned());
    lines(&out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::milestones::{MilestoneStatus, TimelineRow};
    use icalendar::{Calendar, CalendarDateTime, Component, DatePerhapsTime, EventLike};

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    /// Every content line at most 75 octets and CRLF-terminated (RFC 5545 §3.1).
    fn assert_folded(ics: &str) {
        assert!(ics.ends_with("\r\n"));
        for line in ics.split_terminator("\r\n") {
            assert!(line.len() <= 75, "{} octets: {line}", line.len());
            assert!(!line.contains(['\r', '\n']), "{line:?}");
        }
    }

    /// A long French title with accents, commas and semicolons, as programmes name
    /// their meetings.
    const TITLE: &str = "Cadre de concertation; Mopti, cercle — réunion élargie aux \
                         chefs de village, aux associations de femmes et de jeunes, \
                         à l'état civil; « sécurité »";

    fn event(method: CalendarMethod, sequence: u32) -> CalendarEvent<'static> {
        let occurrence = at("2026-12-01T09:00:00Z");
        CalendarEvent {
            workflow: "dialogue-mopti",
            occurrence,
            start: occurrence + TimeDelta::days(1),
            duration: TimeDelta::hours(4),
            title: TITLE,
            venue: "Salle de la préfecture de Mopti, bâtiment principal, premier étage, à gauche",
            sequence,
            method,
        }
    }

    #[test]
    fn invitation_has_a_stable_uid_and_escaped_text() {
        let ics = render(
            &event(CalendarMethod::Request, 2),
            at("2026-11-20T10:00:00Z"),
        );
        assert!(ics.contains("UID:dialogue-mopti-20261201T090000Z@palabre\r\n"));
        assert!(ics.contains("SEQUENCE:2\r\n"));
        assert!(ics.contains("DTEND:20261202T130000Z\r\n"));
        assert!(ics.contains("SUMMARY:Cadre de concertation\\; Mopti\\, cercle"));
        assert_folded(&ics);
    }

    #[test]
    fn ics_request_and_cancel_read_back_with_a_calendar_parser() {
        for (method, word, status, sequence) in [
            (CalendarMethod::Request, "REQUEST", "CONFIRMED", 0),
            (CalendarMethod::Cancel, "CANCEL", "CANCELLED", 3),
        ] {
            let ics = render(&event(method, sequence), at("2026-11-20T10:00:00Z"));
            assert_folded(&ics);
            let calendar: Calendar = ics.parse().unwrap();
            assert_eq!(calendar.property_value("METHOD"), Some(word));
            assert_eq!(calendar.property_value("VERSION"), Some("2.0"));
            let events: Vec<_> = calendar.events().collect();
            assert_eq!(events.len(), 1, "{ics}");
            let parsed = events[0];
            assert_eq!(
                parsed.get_uid(),
                Some("dialogue-mopti-20261201T090000Z@palabre")
            );
            assert_eq!(parsed.get_sequence(), Some(sequence));
            assert_eq!(
                parsed.get_start(),
                Some(DatePerhapsTime::DateTime(CalendarDateTime::Utc(at(
                    "2026-12-02T09:00:00Z"
                ))))
            );
            assert_eq!(
                parsed.get_end(),
                Some(DatePerhapsTime::DateTime(CalendarDateTime::Utc(at(
                    "2026-12-02T13:00:00Z"
                ))))
            );
            assert_eq!(parsed.get_timestamp(), Some(at("2026-11-20T10:00:00Z")));
            assert_eq!(
                parsed.get_summary(),
                Some(TITLE),
                "escaped and folded whole"
            );
            assert_eq!(
                parsed.get_location(),
                Some(
                    "Salle de la préfecture de Mopti, bâtiment principal, premier étage, à gauche"
                )
            );
            assert_eq!(parsed.property_value("STATUS"), Some(status));
        }
    }

    #[test]
    fn ics_text_escapes_line_breaks_and_drops_other_control_characters() {
        assert_eq!(text("a\\b;c,d\r\ne\rf\ng"), "a\\\\b\\;c\\,d\\ne\\nf\\ng");
        assert_eq!(text("bell\u{7}\u{0}\tend"), "bell\tend");
    }

    #[test]
    fn ics_folding_keeps_multibyte_characters_whole() {
        // 2-octet characters after one octet: a naive fold at 75 octets would cut one.
        let line = format!("SUMMARY:x{}", "é".repeat(100));
        let folded = fold(&line);
        for part in folded.split("\r\n") {
            assert!(part.len() <= 75, "{part}");
        }
        assert_eq!(folded.replace("\r\n ", ""), line);
    }

    fn row(id: &str, due: &str, status: MilestoneStatus, blocked_by: &[&str]) -> TimelineRow {
        TimelineRow {
            plan: "redeploiement-koro".to_owned(),
            place: "mopti/koro".to_owned(),
            id: id.to_owned(),
            title: format!("Réouverture, {id}; étape"),
            owner: "mayor@mopti/koro".to_owned(),
            start: None,
            due: due.parse().unwrap(),
            status,
            note: String::new(),
            days_late: 0,
            blocked_by: blocked_by.iter().map(|s| (*s).to_owned()).collect(),
            blocks: Vec::new(),
        }
    }

    #[test]
    fn ics_milestones_are_all_day_transparent_events() {
        let rows = [
            row("logement", "2027-01-15", MilestoneStatus::Done, &[]),
            row(
                "ecole",
                "2027-02-28",
                MilestoneStatus::Planned,
                &["logement"],
            ),
            row("etat-civil", "2027-12-31", MilestoneStatus::Cancelled, &[]),
        ];
        let ics = milestone_events(&rows, at("2026-12-01T08:00:00Z"));
        assert_folded(&ics);
        assert!(!ics.contains("VTODO"), "{ics}");
        let calendar: Calendar = ics.parse().unwrap();
        let events: Vec<_> = calendar.events().collect();
        assert_eq!(events.len(), 3, "{ics}");
        let date = |d: &str| Some(DatePerhapsTime::Date(d.parse().unwrap()));
        for (event, (row, end, status)) in events.iter().zip([
            (&rows[0], "2027-01-16", "CONFIRMED"),
            (&rows[1], "2027-03-01", "CONFIRMED"),
            (&rows[2], "2028-01-01", "CANCELLED"),
        ]) {
            let uid = format!("redeploiement-koro.{}.due@palabre", row.id);
            assert_eq!(event.get_uid(), Some(uid.as_str()));
            assert_eq!(event.get_start(), date(&row.due.to_string()), "{uid}");
            assert_eq!(event.get_end(), date(end), "{uid}: the next day");
            assert_eq!(event.get_summary(), Some(row.title.as_str()));
            assert_eq!(event.property_value("TRANSP"), Some("TRANSPARENT"));
            assert_eq!(event.property_value("STATUS"), Some(status));
            assert!(event.get_timestamp().is_some());
        }
        assert_eq!(
            events[1].get_description(),
            Some("owner: mayor@mopti/koro\nstatus: planned\nwaits for: logement")
        );
        assert!(
            ics.contains(
                "RELATED-TO;RELTYPE=DEPENDS-ON:redeploiement-koro.logement.due@palabre\r\n"
            ),
            "{ics}"
        );
        // The same rows give the same UIDs at any other time.
        let later = milestone_events(&rows, at("2027-02-01T08:00:00Z"));
        let uids = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| l.starts_with("UID:"))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(uids(&later), uids(&ics));
    }
}
