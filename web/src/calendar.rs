//! A month as a calendar shows it: weeks from Monday to Sunday, the days of
//! the months around it left empty, and the months before and after.

use chrono::{Datelike, NaiveDate};

/// One month's grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Month {
    pub(crate) first: NaiveDate,
    /// Monday to Sunday; `None` outside the month.
    pub(crate) weeks: Vec<[Option<NaiveDate>; 7]>,
    /// `YYYY-MM` of the month before and after.
    pub(crate) previous: String,
    pub(crate) next: String,
}

/// The month `YYYY-MM`, if it is one.
pub(crate) fn parse_month(text: &str) -> Option<NaiveDate> {
    let (year, month) = text.split_once('-')?;
    NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, 1)
}

fn label(date: NaiveDate) -> String {
    format!("{:04}-{:02}", date.year(), date.month())
}

/// The grid of the month that holds `day`.
pub(crate) fn month_of(day: NaiveDate) -> Month {
    let first = day.with_day(1).unwrap_or(day);
    let next_first = first
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(first);
    let previous_first = first
        .checked_sub_months(chrono::Months::new(1))
        .unwrap_or(first);
    let lead = first.weekday().num_days_from_monday() as usize;
    let mut weeks = Vec::new();
    let mut week: [Option<NaiveDate>; 7] = [None; 7];
    let mut column = lead;
    let mut date = first;
    while date < next_first {
        week[column] = Some(date);
        column += 1;
        if column == 7 {
            weeks.push(week);
            week = [None; 7];
            column = 0;
        }
        date = date.succ_opt().unwrap_or(next_first);
    }
    if column > 0 {
        weeks.push(week);
    }
    Month {
        first,
        weeks,
        previous: label(previous_first),
        next: label(next_first),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn december_2026_starts_on_a_tuesday_and_fills_five_weeks() {
        let month = month_of(date("2026-12-17"));
        assert_eq!(month.first, date("2026-12-01"));
        assert_eq!(month.weeks.len(), 5);
        assert_eq!(month.weeks[0][0], None);
        assert_eq!(month.weeks[0][1], Some(date("2026-12-01")));
        assert_eq!(month.weeks[4][3], Some(date("2026-12-31")));
        assert_eq!(month.weeks[4][4], None);
        assert_eq!(
            (month.previous.as_str(), month.next.as_str()),
            ("2026-11", "2027-01")
        );
        let days: usize = month.weeks.iter().map(|w| w.iter().flatten().count()).sum();
        assert_eq!(days, 31);
    }

    #[test]
    fn a_february_that_starts_on_a_monday_fills_exactly_four_weeks() {
        let month = month_of(date("2027-02-10"));
        assert_eq!(month.weeks.len(), 4);
        assert_eq!(month.weeks[0][0], Some(date("2027-02-01")));
        assert_eq!(month.weeks[3][6], Some(date("2027-02-28")));
    }

    #[test]
    fn months_are_read_as_written_and_nothing_else() {
        assert_eq!(parse_month("2026-12"), Some(date("2026-12-01")));
        assert_eq!(parse_month("2026-13"), None);
        assert_eq!(parse_month("décembre"), None);
    }
}
