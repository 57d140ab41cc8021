//! iCalendar (RFC 5545) invitations attached to meeting emails.
//!
//! One occurrence has one stable UID (`<workflow>-<occurrence>@palabre`), so a
//! calendar that received the invitation updates the same event when a later
//! message carries a higher SEQUENCE (the occurrence moved) or METHOD:CANCEL.

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

/// Escapes a TEXT value (RFC 5545 §3.3.11).
fn text(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace(';', "\\;")
        .replace(',', "\\,")
        .replace('\n', "\\n")
        .replace('\r', "")
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

/// The stable UID of an occurrence.
pub fn uid(workflow: &str, occurrence: DateTime<Utc>) -> String {
    format!("{workflow}-{}@palabre", occurrence.format("%Y%m%dT%H%M%SZ"))
}

/// The iCalendar text of an invitation (or its cancellation).
pub fn render(event: &CalendarEvent<'_>, stamp: DateTime<Utc>) -> String {
    let format = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
    let (method, status) = match event.method {
        CalendarMethod::Request => ("REQUEST", "CONFIRMED"),
        CalendarMethod::Cancel => ("CANCEL", "CANCELLED"),
    };
    let lines = [
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
    ];
    lines
        .iter()
        .map(|l| fold(l))
        .collect::<Vec<_>>()
        .join("\r\n")
        + "\r\n"
}

/// Milestones as an iCalendar of to-dos: one VTODO per milestone, due all day,
/// with its dependencies as `RELATED-TO;RELTYPE=DEPENDS-ON`.
pub fn todos(rows: &[crate::milestones::TimelineRow], stamp: DateTime<Utc>) -> String {
    use crate::milestones::MilestoneStatus;
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//palabre//milestones//FR".to_owned(),
    ];
    for row in rows {
        let status = match row.status {
            MilestoneStatus::Planned | MilestoneStatus::Blocked => "NEEDS-ACTION",
            MilestoneStatus::InProgress => "IN-PROCESS",
            MilestoneStatus::Done => "COMPLETED",
            MilestoneStatus::Cancelled => "CANCELLED",
        };
        lines.push("BEGIN:VTODO".to_owned());
        lines.push(format!("UID:{}.{}@palabre", row.plan, row.id));
        lines.push(format!("DTSTAMP:{}", stamp.format("%Y%m%dT%H%M%SZ")));
        lines.push(format!("SUMMARY:{}", text(&row.title)));
        if let Some(start) = row.start {
            lines.push(format!("DTSTART;VALUE=DATE:{}", start.format("%Y%m%d")));
        }
        lines.push(format!("DUE;VALUE=DATE:{}", row.due.format("%Y%m%d")));
        lines.push(format!("STATUS:{status}"));
        for dep in &row.blocked_by {
            lines.push(format!(
                "RELATED-TO;RELTYPE=DEPENDS-ON:{}.{dep}@palabre",
                row.plan
            ));
        }
        lines.push("END:VTODO".to_owned());
    }
    lines.push("END:VCALENDAR".to_owned());
    lines.iter().map(|l| fold(l) + "\r\n").collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invitation_has_a_stable_uid_and_escaped_text() {
        let occurrence = DateTime::parse_from_rfc3339("2026-12-01T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let event = CalendarEvent {
            workflow: "dialogue-mopti",
            occurrence,
            start: occurrence,
            duration: TimeDelta::hours(4),
            title: "Cadre de concertation; Mopti, cercle",
            venue: "Salle de la préfecture de Mopti, bâtiment principal, premier étage, à gauche",
            sequence: 2,
            method: CalendarMethod::Request,
        };
        let ics = render(&event, occurrence);
        assert!(ics.contains("UID:dialogue-mopti-20261201T090000Z@palabre\r\n"));
        assert!(ics.contains("SEQUENCE:2\r\n"));
        assert!(ics.contains("DTEND:20261201T130000Z\r\n"));
        assert!(ics.contains("SUMMARY:Cadre de concertation\\; Mopti\\, cercle\r\n"));
        assert!(ics.lines().all(|l| l.len() <= 75), "lines are folded");
        let cancel = render(
            &CalendarEvent {
                method: CalendarMethod::Cancel,
                ..event
            },
            occurrence,
        );
        assert!(cancel.contains("METHOD:CANCEL\r\n") && cancel.contains("STATUS:CANCELLED\r\n"));
    }
}
