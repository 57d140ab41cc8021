//! How dates and times read in a message, in the message's language: "mercredi
//! 2 décembre 2026 à 9 h", "Wednesday 2 December 2026 at 9:00", "Araba 2
//! Desanburukalo 2026, lɛrɛ 9". Templates get them as filters on the ISO facts
//! (`{{ occurrence.date | date_long }}`, `{{ occurrence.time | clock }}`); the
//! language is the one the text is written in. A value that is not an ISO date
//! or time is shown as it is: a filter never stops a message. Languages without
//! their own forms here read the French ones (their texts fall back to French).
//! The Bambara names are the usual ones (Ntɛnɛ … Kari, Zanwuyekalo …
//! Desanburukalo), to be reviewed by a native speaker.

use chrono::{Datelike, NaiveDate, NaiveTime, Timelike};

/// The language a message is rendered in, as templates see it (`lang`).
pub const LANGUAGE_VARIABLE: &str = "lang";

const FRENCH_DAYS: [&str; 7] = [
    "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
];
const FRENCH_MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];
const ENGLISH_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const ENGLISH_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const BAMBARA_DAYS: [&str; 7] = [
    "Ntɛnɛ", "Tarata", "Araba", "Alamisa", "Juma", "Sibiri", "Kari",
];
const BAMBARA_MONTHS: [&str; 12] = [
    "Zanwuyekalo",
    "Feburuyekalo",
    "Marisikalo",
    "Awirilikalo",
    "Mɛkalo",
    "Zuwɛnkalo",
    "Zuluyekalo",
    "Utikalo",
    "Sɛtanburukalo",
    "Ɔkutɔburukalo",
    "Nowanburukalo",
    "Desanburukalo",
];

/// The date of `value` (`YYYY-MM-DD`, or `YYYY-MM-DD HH:MM`), if it has one.
pub(crate) fn date_of(value: &str) -> Option<NaiveDate> {
    crate::calendars::parse_iso_date(value.get(..10)?)
}

/// The time of `value` (`HH:MM`, or `YYYY-MM-DD HH:MM`), if it has one.
pub(crate) fn time_of(value: &str) -> Option<NaiveTime> {
    let text = value.rsplit(' ').next()?;
    text.parse().ok()
}

fn names(language: &str) -> (&'static [&'static str; 7], &'static [&'static str; 12]) {
    match language {
        "eng" => (&ENGLISH_DAYS, &ENGLISH_MONTHS),
        "bam" => (&BAMBARA_DAYS, &BAMBARA_MONTHS),
        _ => (&FRENCH_DAYS, &FRENCH_MONTHS),
    }
}

fn day_and_month(language: &str, date: NaiveDate) -> String {
    let (days, months) = names(language);
    let weekday = days[date.weekday().num_days_from_monday() as usize];
    let month = months[date.month0() as usize];
    match language {
        "fra" if date.day() == 1 => format!("{weekday} 1er {month}"),
        _ => format!("{weekday} {} {month}", date.day()),
    }
}

/// "mercredi 2 décembre 2026": the weekday, the day, the month and the year.
pub fn date_long(language: &str, value: &str) -> String {
    date_of(value).map_or_else(
        || value.to_owned(),
        |date| format!("{} {}", day_and_month(language, date), date.year()),
    )
}

/// "mercredi 2 décembre": for SMS, where the year goes without saying.
pub fn date_short(language: &str, value: &str) -> String {
    date_of(value).map_or_else(|| value.to_owned(), |date| day_and_month(language, date))
}

/// "9 h", "9 h 30" in French; "9:00" in English; "lɛrɛ 9" in Bambara.
pub fn clock(language: &str, value: &str) -> String {
    let Some(time) = time_of(value) else {
        return value.to_owned();
    };
    let (hour, minute) = (time.hour(), time.minute());
    match (language, minute) {
        ("eng", _) => format!("{hour}:{minute:02}"),
        ("bam", 0) => format!("lɛrɛ {hour}"),
        ("bam", _) => format!("lɛrɛ {hour} ni miniti {minute}"),
        (_, 0) => format!("{hour} h"),
        (_, _) => format!("{hour} h {minute:02}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_read_as_people_say_them() {
        assert_eq!(date_long("fra", "2026-12-02"), "mercredi 2 décembre 2026");
        assert_eq!(
            date_long("fra", "2027-01-01 09:00"),
            "vendredi 1er janvier 2027"
        );
        assert_eq!(date_short("fra", "2026-12-02"), "mercredi 2 décembre");
        assert_eq!(date_long("eng", "2026-12-02"), "Wednesday 2 December 2026");
        assert_eq!(date_long("bam", "2026-12-02"), "Araba 2 Desanburukalo 2026");
        assert_eq!(clock("fra", "09:00"), "9 h");
        assert_eq!(clock("fra", "2027-01-06 14:30"), "14 h 30");
        assert_eq!(clock("eng", "09:05"), "9:05");
        assert_eq!(clock("bam", "09:00"), "lɛrɛ 9");
        // Other languages read the French forms; what is not ISO stays as it is.
        assert_eq!(date_long("ffm", "2026-12-02"), "mercredi 2 décembre 2026");
        assert_eq!(date_long("fra", "bientôt"), "bientôt");
        assert_eq!(clock("fra", ""), "");
        assert_eq!(clock("fra", "midi"), "midi");
        assert_eq!(date_long("fra", "2026-13-02"), "2026-13-02");
        assert_eq!(date_long("fra", "2026-1-023"), "2026-1-023");
        assert_eq!(date_long("fra", "+2026-1-02"), "+2026-1-02");
    }
}
