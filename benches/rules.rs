//! How fast rules decide, as a bench binary.
//!
//! ```text
//! cargo bench --bench rules                  # 1,000,000 decisions per hook
//! cargo bench --bench rules -- --calls 200000
//! ```
//!
//! Two decisions the runtime asks before every step (`meeting_schedule`), over a
//! year of dates, each call building its input map the way the engine does:
//!
//! - *typical*: the cercle dialogue of Koro, answered by the national script alone
//!   (a holiday lookup and an alert lookup);
//! - *chained*: the communal dialogue of Djenné, answered by the commune's script,
//!   which first asks the national one through `parent()`, then checks the market
//!   day; one date in seven is a Monday and is moved.
//!
//! Scripts are compiled once, at load; one thread.

// A bench is a measurement harness: a broken set-up stops it with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use palabre_plan::definitions::{Definitions, Meeting};
use palabre_rules::{ScheduleDecision, Subject, meeting_input};

fn decide_all(definitions: &Definitions, meeting: &Meeting, calls: usize) -> (f64, usize) {
    let rules = &definitions.rules;
    let def = &meeting.definition;
    let first: DateTime<Utc> = "2026-12-01T09:00:00Z".parse().expect("an instant");
    let starts: Vec<DateTime<Utc>> = (0..364).map(|d| first + TimeDelta::days(d)).collect();
    let mut changed = 0_usize;
    let mut failed = 0_usize;
    let directory = std::sync::Arc::new(Vec::new());
    let started = Instant::now();
    for i in 0..calls {
        let start = starts[i % starts.len()];
        let answer = rules.decide::<ScheduleDecision>(
            &def.place,
            None,
            || meeting_input(rules.world(), &meeting.facts, start, start),
            Subject {
                workflow: &def.id,
                occurrence: Some(start),
            },
            &directory,
        );
        failed += usize::from(answer.failure.is_some());
        if answer.decision != ScheduleDecision::Hold {
            changed += 1;
        }
    }
    let rate = calls as f64 / started.elapsed().as_secs_f64();
    assert_eq!(failed, 0, "the shipped rules never fail");
    (rate, changed)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let calls: usize = args
        .iter()
        .position(|a| a == "--calls")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
    let (definitions, diagnostics) = Definitions::load(&root, None, palabre_sms::RULE_FUNCTIONS);
    assert!(!diagnostics.has_errors(), "{:?}", diagnostics.sorted());
    for (label, id) in [
        ("typical (Koro: national.rhai)", "dialogue-koro"),
        ("chained (Djenné: commune → national)", "commune-djenne"),
    ] {
        let meeting = definitions
            .meetings
            .iter()
            .find(|m| m.definition.id == id)
            .expect("a shipped meeting");
        let (rate, changed) = decide_all(&definitions, meeting, calls);
        println!(
            "meeting_schedule, {label}: {rate:.0} decisions/s on one thread ({calls} decisions, {changed} skipped or moved)"
        );
    }
}
