//! Calendar invitations as mail clients read them: a meeting's invitation, its
//! move and its cancellation sent by the engine through the email connector to a
//! real SMTP server over TCP, then read back with a MIME parser (mail-parser)
//! and an iCalendar parser (icalendar). Outlook and Google act on the
//! `text/calendar; method=…` alternative of a `multipart/alternative`, and only
//! when the event names its ORGANIZER and ATTENDEE (RFC 5546).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use icalendar::{
    Attendee, Calendar, CalendarDateTime, Component, DatePerhapsTime, EventLike, PartStat, Role,
};
use mail_parser::{MessageParser, MimeHeaders};
use palabre_core::channel::Channel;
use palabre_core::clock::VirtualClock;
use palabre_core::connector::{Connector, Connectors, DeliveryError, OutgoingMessage};
use palabre_email::{EmailConnector, Security, SmtpConfig};
use palabre_lang::ics::{self, CalendarEvent, CalendarMethod};

use crate::runtime::{Recorder, at, run_until, worlds};
use crate::smtp::SmtpServer;

const FROM: &str = "Dialogue Mopti <dialogue-mopti@example.org>";

fn connector(smtp: &SmtpServer, from: &str) -> EmailConnector {
    EmailConnector::smtp(&SmtpConfig {
        host: "127.0.0.1".into(),
        port: smtp.port,
        security: Security::Plain,
        username: None,
        password: None,
        from: from.into(),
        timeout: std::time::Duration::from_secs(10),
        ca_certificate_pem: None,
    })
    .unwrap()
}

/// What one received invitation holds, its MIME structure checked on the way.
struct Invitation {
    /// The `text/calendar` alternative, the part clients act on.
    calendar: String,
    /// The plain text alternative.
    text: String,
}

/// Reads a received mail as an invitation: `multipart/mixed` holding a
/// `multipart/alternative` (text/plain, then `text/calendar; method=METHOD;
/// charset=UTF-8`, no disposition) and the same calendar attached as
/// `invitation.ics` (application/ics).
fn invitation(mail: &str, method: &str) -> Invitation {
    // Charset names are case-insensitive (RFC 2046 §4.1.2); lettre writes `utf-8`.
    assert!(
        mail.to_ascii_lowercase().contains(&format!(
            "content-type: text/calendar; method={}; charset=utf-8\r\n",
            method.to_ascii_lowercase()
        )),
        "{mail}"
    );
    let message = MessageParser::default().parse(mail.as_bytes()).unwrap();
    let kind = |part: &mail_parser::MessagePart<'_>| {
        let ct = part.content_type().unwrap();
        format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default())
    };
    let root = message.root_part();
    assert_eq!(kind(root), "multipart/mixed", "{mail}");
    let children = root.sub_parts().unwrap();
    assert_eq!(children.len(), 2, "the alternatives and the attachment");
    let alternative = message.part(children[0]).unwrap();
    assert_eq!(kind(alternative), "multipart/alternative", "{mail}");
    let alternatives = alternative.sub_parts().unwrap();
    assert_eq!(alternatives.len(), 2, "text/plain and text/calendar");
    let text = message.part(alternatives[0]).unwrap();
    assert_eq!(kind(text), "text/plain");
    let calendar = message.part(alternatives[1]).unwrap();
    assert_eq!(kind(calendar), "text/calendar");
    let ct = calendar.content_type().unwrap();
    assert_eq!(ct.attribute("method"), Some(method));
    assert!(
        ct.attribute("charset")
            .unwrap()
            .eq_ignore_ascii_case("utf-8")
    );
    assert!(
        calendar.content_disposition().is_none(),
        "the alternative is shown, not attached"
    );
    let attachment = message.part(children[1]).unwrap();
    assert_eq!(kind(attachment), "application/ics");
    assert_eq!(attachment.attachment_name(), Some("invitation.ics"));
    assert_eq!(
        attachment.content_disposition().map(|d| d.ctype()),
        Some("attachment")
    );
    let calendar = calendar.text_contents().unwrap().to_owned();
    assert_eq!(
        String::from_utf8(attachment.contents().to_vec()).unwrap(),
        calendar,
        "the attachment is the same calendar"
    );
    Invitation {
        calendar,
        text: text.text_contents().unwrap().to_owned(),
    }
}

/// Every content line at most 75 octets (RFC 5545 §3.1), CRLF-terminated.
fn assert_folded(ics: &str) {
    assert!(ics.ends_with("\r\n"), "{ics}");
    for line in ics.split("\r\n") {
        assert!(line.len() <= 75, "{} octets: {line}", line.len());
        assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
    }
}

/// The one event of a parsed invitation, with what RFC 5546 asks of a REQUEST
/// or a CANCEL checked: METHOD, UID, SEQUENCE, DTSTAMP, DTSTART in UTC,
/// ORGANIZER and ATTENDEE.
struct Checked {
    uid: String,
    sequence: u32,
    start: DateTime<Utc>,
    organizer: (String, String),
    attendee: Attendee,
    summary: String,
    location: String,
    status: String,
}

fn parse(ics: &str, method: &str) -> Checked {
    assert_folded(ics);
    let calendar: Calendar = ics.parse().unwrap();
    assert_eq!(calendar.property_value("METHOD"), Some(method), "{ics}");
    assert_eq!(calendar.property_value("VERSION"), Some("2.0"));
    let events: Vec<_> = calendar.events().collect();
    assert_eq!(events.len(), 1, "{ics}");
    let event = events[0];
    assert!(event.get_timestamp().is_some(), "DTSTAMP: {ics}");
    let start = match event.get_start() {
        Some(DatePerhapsTime::DateTime(CalendarDateTime::Utc(start))) => start,
        other => panic!("DTSTART in UTC, not {other:?}: {ics}"),
    };
    assert!(matches!(
        event.get_end(),
        Some(DatePerhapsTime::DateTime(CalendarDateTime::Utc(end))) if end > start
    ));
    let organizer = event.properties().get("ORGANIZER").expect("ORGANIZER");
    let organizer = (
        organizer.value().to_owned(),
        organizer
            .params()
            .get("CN")
            .map(|p| p.value().to_owned())
            .unwrap_or_default(),
    );
    let attendees = event.get_attendees();
    assert_eq!(attendees.len(), 1, "{ics}");
    Checked {
        uid: event.get_uid().unwrap().to_owned(),
        sequence: event.get_sequence().unwrap(),
        start,
        organizer,
        attendee: attendees[0].clone(),
        summary: event.get_summary().unwrap().to_owned(),
        location: event.get_location().unwrap().to_owned(),
        status: event.property_value("STATUS").unwrap().to_owned(),
    }
}

fn assert_addressed(event: &Checked, address: &str, name: &str) {
    assert_eq!(
        event.organizer,
        (
            "mailto:dialogue-mopti@example.org".to_owned(),
            "Dialogue Mopti".to_owned()
        )
    );
    assert_eq!(event.attendee.cal_address, format!("mailto:{address}"));
    assert_eq!(event.attendee.cn.as_deref(), Some(name));
    assert_eq!(event.attendee.role, Some(Role::ReqParticipant));
    assert_eq!(event.attendee.part_stat, Some(PartStat::NeedsAction));
    assert_eq!(event.attendee.rsvp, Some(false), "we read no iTIP replies");
}

#[tokio::test]
async fn an_invitation_its_move_and_its_cancellation_reach_calendars_over_smtp() {
    for world in worlds("invitations", "once").await {
        let smtp = SmtpServer::start();
        let sms = Recorder::new(Channel::Sms, 0, DeliveryError::Transient(String::new()));
        let connectors = Connectors::default()
            .with(sms)
            .with(Arc::new(connector(&smtp, FROM)));
        let clock = Arc::new(VirtualClock::new(at("2026-12-03T12:00:00Z")));
        let runtime = world.runtime(&clock, connectors, "a").await;
        let monday = at("2026-12-07T09:00:00Z");

        // The invitation, three days ahead: Oumar, the mayor, is reached by email.
        run_until(&runtime, &clock, at("2026-12-04T09:30:00Z")).await;
        let mails = smtp.mails();
        assert_eq!(mails.len(), 1, "{mails:#?}");
        let first = invitation(&mails[0], "REQUEST");
        assert!(first.text.contains("Oumar"), "{}", first.text);
        let request = parse(&first.calendar, "REQUEST");
        assert_eq!(request.uid, "weekly-koro-20261207T090000Z@palabre");
        assert_eq!(request.sequence, 0);
        assert_eq!(request.start, monday);
        assert_eq!(request.summary, "Réunion hebdomadaire");
        assert_eq!(request.location, "Mairie de Koro");
        assert_eq!(request.status, "CONFIRMED");
        assert_addressed(&request, "oumar@example.org", "Oumar Tall");

        // Moved to Tuesday 10:00: the same event, a higher SEQUENCE.
        let tuesday = at("2026-12-08T10:00:00Z");
        runtime
            .commands()
            .change_occurrence("weekly-koro", monday, Some(tuesday), "jour de marché")
            .await
            .unwrap();
        runtime.tick().await.unwrap();
        let mails = smtp.mails();
        assert_eq!(mails.len(), 2, "{mails:#?}");
        let moved = parse(&invitation(&mails[1], "REQUEST").calendar, "REQUEST");
        assert_eq!(moved.uid, request.uid, "the same event, updated");
        assert_eq!(moved.sequence, 1);
        assert_eq!(moved.start, tuesday);
        assert_addressed(&moved, "oumar@example.org", "Oumar Tall");

        // Cancelled: METHOD:CANCEL, the same UID, the next SEQUENCE.
        runtime
            .commands()
            .change_occurrence("weekly-koro", monday, None, "alerte de sécurité")
            .await
            .unwrap();
        runtime.tick().await.unwrap();
        let mails = smtp.mails();
        assert_eq!(mails.len(), 3, "{mails:#?}");
        let cancel = parse(&invitation(&mails[2], "CANCEL").calendar, "CANCEL");
        assert_eq!(cancel.uid, request.uid);
        assert_eq!(cancel.sequence, 2, "above the move's");
        assert_eq!(cancel.status, "CANCELLED");
        assert_addressed(&cancel, "oumar@example.org", "Oumar Tall");
    }
}

#[tokio::test]
async fn a_long_french_invitation_is_folded_escaped_and_read_back_whole() {
    let smtp = SmtpServer::start();
    let email = connector(&smtp, FROM);
    let start = at("2027-01-11T08:30:00Z");
    let title = "Cadre communal de concertation sur la sécurité, la réconciliation; \
                 l'accès aux pâturages et le retour des déplacés à Bandiagara — séance élargie";
    let venue = "Salle de réunion de la préfecture, bâtiment annexe, près du marché; \
                 entrée côté fleuve";
    let ics = ics::render(
        &CalendarEvent {
            workflow: "cadre-bandiagara",
            occurrence: start,
            start,
            duration: chrono::TimeDelta::hours(3),
            title,
            venue,
            sequence: 0,
            method: CalendarMethod::Request,
        },
        start,
    );
    let message = OutgoingMessage {
        key: "cadre-bandiagara|1799656200|invitation|c-40|email".to_owned(),
        channel: Channel::Email,
        to_address: "aissata.traore@example.org".to_owned(),
        // A long name with accents, a comma and a semicolon, as a directory may hold.
        to_name: "Aïssata Maïmouna Traoré-Cissé, adjointe au maire; chargée de l'état civil"
            .to_owned(),
        language: "fra".to_owned(),
        subject: Some(format!("Invitation : {title}")),
        body: "Bonjour,\nvous êtes invitée.".to_owned(),
        calendar: Some(ics),
    };
    email.deliver(&message).await.unwrap();
    let mails = smtp.mails();
    let received = invitation(&mails[0], "REQUEST");
    let event = parse(&received.calendar, "REQUEST");
    assert_eq!(event.summary, title, "escaped, folded and read back whole");
    assert_eq!(event.location, venue);
    assert_eq!(
        event.attendee.cn.as_deref(),
        Some("Aïssata Maïmouna Traoré-Cissé, adjointe au maire; chargée de l'état civil")
    );
    assert_eq!(
        event.attendee.cal_address,
        "mailto:aissata.traore@example.org"
    );
    assert_eq!(event.organizer.1, "Dialogue Mopti");
    // Folding happened (these lines are longer than 75 octets) on character boundaries.
    assert!(received.calendar.contains("\r\n "), "{}", received.calendar);
}

#[tokio::test]
async fn a_sender_without_a_name_is_the_organizer_by_address_alone() {
    let smtp = SmtpServer::start();
    let email = connector(&smtp, "palabre@example.org");
    let start = at("2027-01-11T08:30:00Z");
    let ics = ics::render(
        &CalendarEvent {
            workflow: "weekly-koro",
            occurrence: start,
            start,
            duration: chrono::TimeDelta::hours(1),
            title: "Réunion",
            venue: "Mairie",
            sequence: 3,
            method: CalendarMethod::Cancel,
        },
        start,
    );
    let message = OutgoingMessage {
        key: "weekly-koro|1799656200|cancel|c-3|email".to_owned(),
        channel: Channel::Email,
        to_address: "oumar@example.org".to_owned(),
        to_name: String::new(),
        language: "fra".to_owned(),
        subject: Some("Annulation".to_owned()),
        body: "Annulée.".to_owned(),
        calendar: Some(ics),
    };
    email.deliver(&message).await.unwrap();
    let event = parse(&invitation(&smtp.mails()[0], "CANCEL").calendar, "CANCEL");
    assert_eq!(event.sequence, 3);
    assert_eq!(
        event.organizer,
        ("mailto:palabre@example.org".to_owned(), String::new())
    );
    assert_eq!(event.attendee.cal_address, "mailto:oumar@example.org");
    assert_eq!(event.attendee.cn, None);
}
