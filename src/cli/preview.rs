//! `palabre preview`: what would be sent in a window, when, to whom and how,
//! planned over a virtual clock against a directory CSV or the database's
//! directory, with moved and cancelled occurrences applied: each SMS with its
//! segments, each call with the clips it plays, how long it lasts and, with a
//! price in `calls.yaml`, what the calls cost. Nothing is sent and nothing is
//! written, not even a missing database.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, Utc};
use palabre_core::channel::Channel;
use palabre_core::clock::{Clock, SystemClock, VirtualClock};
use palabre_core::diagnostic::Diagnostics;
use palabre_lang::contacts::Contact;
use palabre_lang::occurrence::Changes;
use palabre_plan::definitions::Definitions;
use palabre_plan::planner::{self, PlannedMessage, Planner};
use palabre_store::Store;

use super::args::{Format, PreviewArgs, Sources};
use super::context::{
    append, load_definitions, parse_directory, print_table, read_file, read_if_exists, report,
    table_lines,
};

pub async fn run(args: &PreviewArgs, out: &mut String) -> anyhow::Result<()> {
    if !(1..=366).contains(&args.days) {
        bail!("--days must be between 1 and 366");
    }
    let (start, until) =
        planner::window(parse_from(args.from.as_deref(), &SystemClock)?, args.days);
    let definitions = load_definitions(&args.sources.workflows)?;
    let directory = directory(args.directory.as_deref(), &definitions, &args.sources).await?;
    if directory.is_empty() {
        eprintln!(
            "note: the directory is empty, so nobody receives anything; import one with `palabre contacts import FILE.csv` or pass --directory FILE.csv"
        );
    }
    // Moved and cancelled occurrences, when there is a database to read them from.
    let changes = Changes::new(read_if_exists(&args.sources, Store::occurrence_changes).await?);
    let clock = VirtualClock::new(start);
    let languages: BTreeMap<String, String> = directory
        .iter()
        .map(|c| (c.id.clone(), c.language.clone()))
        .collect();
    let places: BTreeMap<String, String> = directory
        .iter()
        .map(|c| (c.id.clone(), c.place.clone()))
        .collect();
    let mut planned =
        Planner::new(&definitions, Arc::new(directory)).preview(&clock, until, &changes);
    // Who sent STOP gets no SMS: the server sends the next channel, or nothing.
    let stopped = read_if_exists(&args.sources, Store::sms_stopped).await?;
    for message in &mut planned {
        if stopped.contains(&message.contact_id) {
            as_the_server_sends_to_a_stopped_contact(message);
        }
    }
    let lengths: Vec<Option<f64>> = planned
        .iter()
        .map(|message| call_seconds(&definitions, message))
        .collect();
    let waits: Vec<Option<DateTime<Utc>>> = planned
        .iter()
        .map(|m| {
            let place = places.get(&m.contact_id)?;
            let from = definitions.calls.next_allowed(place, m.due_utc);
            (m.channel == Some(Channel::Voice) && from > m.due_utc).then_some(from)
        })
        .collect();
    match args.format {
        Format::Json => {
            // Each SMS with its size in segments, each call with its length,
            // written straight from the messages.
            let with_segments: Vec<WithSegments<'_>> = planned
                .iter()
                .zip(lengths.iter().zip(&waits))
                .map(|(message, (call_seconds, call_from))| WithSegments {
                    message,
                    segments: sms_segment_count(message),
                    call_seconds: *call_seconds,
                    call_from: *call_from,
                })
                .collect();
            // About 600 bytes a message: written once, into a buffer big enough.
            let mut json = Vec::with_capacity(640 * with_segments.len() + 2);
            serde_json::to_writer_pretty(&mut json, &with_segments)?;
            json.push(b'\n');
            append(out, String::from_utf8(json)?);
        }
        Format::Table => {
            let calls = CallFacts {
                lengths: &lengths,
                waits: &waits,
            };
            print_preview(out, &planned, &calls, &languages, args.show_text);
            print_calls(out, &definitions, &lengths);
        }
    }
    Ok(())
}

fn parse_from(text: Option<&str>, clock: &dyn Clock) -> anyhow::Result<DateTime<Utc>> {
    let Some(text) = text else {
        return Ok(clock.now());
    };
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| format!("--from '{text}': write YYYY-MM-DD or an RFC 3339 instant"))
}

/// The directory a preview plans against: a CSV given on the command line, else the
/// database, else nobody.
async fn directory(
    csv: Option<&Path>,
    definitions: &Definitions,
    sources: &Sources,
) -> anyhow::Result<Vec<Contact>> {
    let Some(csv) = csv else {
        return read_if_exists(sources, Store::contacts).await;
    };
    let bytes = read_file(csv)?;
    let mut diagnostics = Diagnostics::default();
    let directory = parse_directory(csv, &bytes, definitions, &mut diagnostics);
    report(diagnostics)?;
    Ok(directory)
}

/// A planned message as `--format json` shows it: with the segments of an SMS.
#[derive(serde::Serialize)]
struct WithSegments<'a> {
    #[serde(flatten)]
    message: &'a PlannedMessage,
    #[serde(skip_serializing_if = "Option::is_none")]
    segments: Option<usize>,
    /// A call's length in seconds, its keypad question played once, when its
    /// language is recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    call_seconds: Option<f64>,
    /// When a call due outside its callee's hours is placed.
    #[serde(skip_serializing_if = "Option::is_none")]
    call_from: Option<DateTime<Utc>>,
}

/// How long a call plays (its clips, then the keypad's question once), when
/// its language has recordings; `None` for other channels.
fn call_seconds(definitions: &Definitions, message: &PlannedMessage) -> Option<f64> {
    let body = message
        .body
        .as_deref()
        .filter(|_| message.channel == Some(Channel::Voice))?;
    let language = message.language.as_deref()?;
    definitions.audio.has_recordings(language).then(|| {
        definitions
            .audio
            .call_length(language, body, definitions.keypad(&message.workflow))
            .as_secs_f64()
    })
}

/// The calls of a preview, in all: how many, how long, and what they cost at
/// the price of `calls.yaml` (each started minute counted; calls not answered
/// and redials not counted).
fn print_calls(out: &mut String, definitions: &Definitions, lengths: &[Option<f64>]) {
    let seconds: Vec<f64> = lengths.iter().flatten().copied().collect();
    if seconds.is_empty() {
        return;
    }
    let total: f64 = seconds.iter().sum();
    let cost = definitions.calls.price().map_or_else(
        || "no price_per_minute in calls.yaml to estimate their cost".to_owned(),
        |price| {
            format!(
                "about {:.0} {} if each is answered once",
                price.of_calls(seconds.iter().copied()),
                price.currency
            )
        },
    );
    let _ = writeln!(
        out,
        "{} call(s), {:.0} s on average, {:.1} min in all; {cost}",
        seconds.len(),
        total / seconds.len() as f64,
        total / 60.0
    );
}

/// The segments an SMS is sent in; `None` for other channels.
fn sms_segment_count(message: &PlannedMessage) -> Option<usize> {
    (message.channel == Some(Channel::Sms))
        .then_some(message.body.as_deref())
        .flatten()
        .map(|body| palabre_sms::encoding::sms_size(body).segments)
}

/// A message to a contact who sent STOP, as the server handles it: an SMS becomes
/// its fallback on the next channel the step allows, or is not sent at all.
fn as_the_server_sends_to_a_stopped_contact(message: &mut PlannedMessage) {
    if message.channel != Some(Channel::Sms) {
        return;
    }
    match message.fallback.take() {
        Some((channel, subject, body)) => {
            message.channel = Some(channel);
            message.subject = subject;
            message.body = Some(body);
        }
        None => {
            message.channel = None;
            message.problem =
                Some("sent STOP: no SMS, and no other channel the step allows".to_owned());
        }
    }
}

/// What a preview says of its calls, message by message: how long each plays,
/// and from when it is placed when it is due outside its callee's hours.
struct CallFacts<'a> {
    lengths: &'a [Option<f64>],
    waits: &'a [Option<DateTime<Utc>>],
}

fn print_preview(
    out: &mut String,
    planned: &[PlannedMessage],
    calls: &CallFacts<'_>,
    languages: &BTreeMap<String, String>,
    show_text: bool,
) {
    // A message written in French to someone whose language the template lacks.
    let in_french_instead = |m: &PlannedMessage| {
        m.language.as_deref().is_some_and(|used| {
            languages
                .get(&m.contact_id)
                .is_some_and(|wanted| wanted != used)
        })
    };
    let headers = [
        "due (UTC)",
        "local",
        "workflow",
        "step",
        "contact",
        "name",
        "channel",
        "lang",
        "size",
    ];
    let row = |(m, length): (&PlannedMessage, &Option<f64>)| {
        vec![
            m.due_utc.format("%Y-%m-%d %H:%M").to_string(),
            m.due_local
                .get(..16)
                .unwrap_or(&m.due_local)
                .replace('T', " "),
            m.workflow.clone(),
            m.step.clone(),
            m.contact_id.clone(),
            m.contact_name.clone(),
            m.channel.map_or_else(|| "-".to_owned(), |c| c.to_string()),
            match &m.language {
                Some(used) if in_french_instead(m) => format!("{used}*"),
                Some(used) => used.clone(),
                None => "-".to_owned(),
            },
            match (sms_segment_count(m), length) {
                (Some(segments), _) => format!("{segments} seg"),
                (None, Some(seconds)) => format!("{seconds:.0} s"),
                (None, None) => String::new(),
            },
        ]
    };
    let rows = || planned.iter().zip(calls.lengths);
    if show_text {
        let lines = table_lines(&headers, rows().map(row));
        let _ = writeln!(out, "{}", lines[0]);
        for ((m, line), wait) in planned.iter().zip(&lines[1..]).zip(calls.waits) {
            let _ = writeln!(out, "{line}");
            if let Some(from) = wait {
                let _ = writeln!(
                    out,
                    "    called from {} UTC: outside the call hours of calls.yaml",
                    from.format("%Y-%m-%d %H:%M")
                );
            }
            if let Some(subject) = &m.subject {
                let _ = writeln!(out, "    subject: {subject}");
            }
            if m.channel == Some(Channel::Voice) {
                let _ = writeln!(
                    out,
                    "    plays: {}, then the keypad's question",
                    m.body.as_deref().unwrap_or_default()
                );
            } else {
                for line in m.body.as_deref().unwrap_or_default().lines() {
                    let _ = writeln!(out, "    | {line}");
                }
            }
            if let Some(problem) = &m.problem {
                let _ = writeln!(out, "    problem: {problem}");
            }
        }
    } else {
        print_table(out, &headers, rows().map(row));
    }
    let mut fallbacks: BTreeMap<&str, usize> = BTreeMap::new();
    for m in planned.iter().filter(|m| in_french_instead(m)) {
        let wanted = languages.get(&m.contact_id).map_or("?", String::as_str);
        *fallbacks.entry(wanted).or_default() += 1;
    }
    if !fallbacks.is_empty() {
        let by_language: Vec<String> = fallbacks
            .iter()
            .map(|(language, count)| format!("{count} {language}"))
            .collect();
        let _ = writeln!(
            out,
            "* {} message(s) in French, the template having no text in the contact's language: {}",
            fallbacks.values().sum::<usize>(),
            by_language.join(", ")
        );
    }
    let problems = planned.iter().filter(|m| m.problem.is_some()).count();
    let _ = writeln!(
        out,
        "{} message(s) planned, {problems} cannot be prepared",
        planned.len()
    );
    for m in planned.iter().filter(|m| m.problem.is_some()) {
        let _ = writeln!(
            out,
            "  {} {} {}: {}",
            m.workflow,
            m.step,
            m.contact_id,
            m.problem.as_deref().unwrap_or_default()
        );
    }
}
