//! The functions the engine gives rules: dates, calendars, places, contacts, and
//! `parent()`, the next rule up.
//!
//! Each is registered with its signature and doc comment, which `palabre rules
//! docs` prints from Rhai's metadata. All are pure reads of the loaded
//! definitions: none touches a file, the network or a clock. A bad argument (a
//! date that is not `YYYY-MM-DD`) is a rule error at the call's line.

use std::sync::Arc;

use chrono::{NaiveDate, TimeDelta};
use rhai::{Array, Dynamic, Engine, EvalAltResult, FuncRegistration, Map, NativeCallContext};

use super::{ChainTag, World};
use palabre_lang::calendars::{Weekday, format_iso_date, parse_iso_date};
use palabre_lang::places::Places;

type Fallible<T> = Result<T, Box<EvalAltResult>>;

fn parse_date(text: &str) -> Fallible<NaiveDate> {
    parse_iso_date(text).ok_or_else(|| format!("'{text}' is not a date: write YYYY-MM-DD").into())
}

/// A registration with its doc comment (one `///` line per line of `doc`) and parameters.
fn documented(name: &str, doc: &str, params: &[&str]) -> FuncRegistration {
    let comment = doc
        .lines()
        .map(|l| format!("/// {l}"))
        .collect::<Vec<_>>()
        .join("\n");
    FuncRegistration::new(name)
        .with_comments([comment])
        .with_params_info(params)
}

/// Registers the engine's own functions, reading from `world`.
pub(super) fn register(engine: &mut Engine, world: &Arc<World>) {
    register_dates(engine);
    register_calendars(engine, world);
    register_places(engine, world);
    register_contacts(engine);
    documented(
        "parent",
        "What the next rule up decides for the same input: the same hook in the script of\n\
         the place above (cercle, region, national), or the built-in default at the top.\n\
         A commune can add to its region's answer: `parent(input) + [\"c-0042\"]`.",
        &["input: Map", "Dynamic"],
    )
    .register_into_engine(engine, parent);
}

fn parent(context: NativeCallContext, input: Map) -> Fallible<Dynamic> {
    let Some(tag) = context.tag().and_then(|t| t.clone().try_cast::<ChainTag>()) else {
        return Err("parent() can only be called from a hook".into());
    };
    tag.call_next(context.engine(), input)
}

fn register_dates(engine: &mut Engine) {
    documented(
        "weekday",
        "The day of the week of `date` (YYYY-MM-DD), in English: \"monday\" ... \"sunday\".",
        &["date: &str", "String"],
    )
    .register_into_engine(engine, |date: &str| -> Fallible<String> {
        Ok(Weekday::of(parse_date(date)?).as_str().to_owned())
    });
    documented(
        "add_days",
        "The date `days` days after `date` (before it when negative), as YYYY-MM-DD.",
        &["date: &str", "days: i64", "String"],
    )
    .register_into_engine(engine, |date: &str, days: i64| -> Fallible<String> {
        let moved = TimeDelta::try_days(days)
            .and_then(|d| parse_date(date).ok()?.checked_add_signed(d))
            .ok_or_else(|| format!("{date} plus {days} days is out of range"))?;
        Ok(format_iso_date(moved))
    });
    documented(
        "days_between",
        "Whole days from `from` to `to` (negative when `to` is earlier).",
        &["from: &str", "to: &str", "i64"],
    )
    .register_into_engine(engine, |from: &str, to: &str| -> Fallible<i64> {
        Ok((parse_date(to)? - parse_date(from)?).num_days())
    });
}

fn register_calendars(engine: &mut Engine, world: &Arc<World>) {
    let w = world.clone();
    documented(
        "is_holiday",
        "Whether `date` is a public holiday or a religious feast (workflows/calendars/).",
        &["date: &str", "bool"],
    )
    .register_into_engine(engine, move |date: &str| -> Fallible<bool> {
        Ok(w.calendars.holiday(parse_date(date)?).is_some())
    });
    let w = world.clone();
    documented(
        "holiday",
        "The name of the holiday or feast on `date`, or \"\" on an ordinary day.",
        &["date: &str", "String"],
    )
    .register_into_engine(engine, move |date: &str| -> Fallible<String> {
        Ok(w.calendars
            .holiday(parse_date(date)?)
            .unwrap_or_default()
            .to_owned())
    });
    let w = world.clone();
    documented(
        "period",
        "The name of the period `date` falls in (\"Ramadan\" ...), or \"\".",
        &["date: &str", "String"],
    )
    .register_into_engine(engine, move |date: &str| -> Fallible<String> {
        Ok(w.calendars
            .period(parse_date(date)?)
            .unwrap_or_default()
            .to_owned())
    });
    let w = world.clone();
    documented(
        "is_market_day",
        "Whether `date` is a weekly market day at `place` (or at a place above it).",
        &["date: &str", "place: &str", "bool"],
    )
    .register_into_engine(engine, move |date: &str, place: &str| -> Fallible<bool> {
        Ok(w.calendars.is_market_day(parse_date(date)?, place))
    });
    let w = world.clone();
    documented(
        "alert",
        "The reason of an insecurity alert covering `place` on `date`, or \"\" when there is none.",
        &["date: &str", "place: &str", "String"],
    )
    .register_into_engine(engine, move |date: &str, place: &str| -> Fallible<String> {
        Ok(w.calendars
            .alert(parse_date(date)?, place)
            .unwrap_or_default()
            .to_owned())
    });
}

fn register_places(engine: &mut Engine, world: &Arc<World>) {
    let w = world.clone();
    documented(
        "place_name",
        "The name people use for a place path (\"mopti/djenne\" → \"Djenné\"), or \"\" if unknown.",
        &["place: &str", "String"],
    )
    .register_into_engine(engine, move |place: &str| -> String {
        w.places
            .get(place)
            .map(|p| p.name.clone())
            .unwrap_or_default()
    });
    documented(
        "parent_place",
        "The place above `place` (\"mopti/djenne/fakala\" → \"mopti/djenne\"), or \"\" for a region.",
        &["place: &str", "String"],
    )
    .register_into_engine(engine, |place: &str| -> String {
        Places::parent(place).unwrap_or_default().to_owned()
    });
    documented(
        "is_within",
        "Whether `place` is `area` or lies below it (\"mopti/koro/bondo\" is within \"mopti\").",
        &["place: &str", "area: &str", "bool"],
    )
    .register_into_engine(engine, |place: &str, area: &str| -> bool {
        Places::contains(area, place)
    });
}

fn register_contacts(engine: &mut Engine) {
    documented(
        "contacts_with_role",
        "The contacts holding `role` at `place` or below, as maps of id, name, roles, place\n\
         and language (never a phone number or an address).",
        &["role: &str", "place: &str", "Array"],
    )
    .register_into_engine(engine, contacts_with_role);
}

fn contacts_with_role(context: NativeCallContext, role: &str, place: &str) -> Fallible<Array> {
    let Some(tag) = context.tag().and_then(|t| t.clone().try_cast::<ChainTag>()) else {
        return Err("contacts_with_role() can only be called from a hook".into());
    };
    Ok(tag
        .directory
        .iter()
        .filter(|c| c.roles.iter().any(|r| r == role) && Places::contains(place, &c.place))
        .map(|c| Dynamic::from_map(super::hooks::contact_facts(c)))
        .collect())
}
