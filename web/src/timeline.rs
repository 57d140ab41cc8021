//! A milestone plan drawn as a timeline, in SVG made on the server: one row
//! per milestone, its bar from start to due date coloured by status (a
//! stylesheet class; a diamond on its due date when it has no start), late
//! ones marked, today's line, and an arrow from each milestone to those that
//! wait for it. The drawing says the same as the table
//! beside it, for readers who cannot see it.

use std::fmt::Write as _;

use chrono::NaiveDate;
use palabre_lang::milestones::TimelineRow;

const LABELS: f64 = 200.0;
const WIDTH: f64 = 760.0;
const ROW: f64 = 30.0;
const TOP: f64 = 26.0;

/// Text for SVG, in an element or a quoted attribute (the templates' escaping).
fn escape(text: &str) -> String {
    minijinja::HtmlEscape(text).to_string()
}

/// The timeline of one plan's rows (by due date) at `today`; `title` names it
/// for assistive technology, `late` is the word marking a late milestone.
pub(crate) fn draw(rows: &[TimelineRow], today: NaiveDate, title: &str, late: &str) -> String {
    let starts = |r: &TimelineRow| r.start.unwrap_or(r.due).min(r.due);
    let first = rows
        .iter()
        .map(starts)
        .chain([today])
        .min()
        .unwrap_or(today);
    let last = rows
        .iter()
        .map(|r| r.due)
        .chain([today])
        .max()
        .unwrap_or(today);
    let span = (last - first).num_days().max(1) as f64 + 2.0;
    let x = |date: NaiveDate| {
        LABELS + ((date - first).num_days() as f64 + 1.0) / span * (WIDTH - LABELS - 10.0)
    };
    let height = TOP + ROW * rows.len() as f64 + 10.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"timeline\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" \
         aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <defs><marker id=\"arrow\" viewBox=\"0 0 8 8\" refX=\"7\" refY=\"4\" \
         markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L8,4 L0,8 z\" \
         class=\"arrowhead\"/></marker></defs>",
        escape(title)
    );
    let _ = write!(
        svg,
        "<text class=\"axis\" x=\"{LABELS}\" y=\"14\">{}</text>\
         <text class=\"axis\" x=\"{}\" y=\"14\" text-anchor=\"end\">{}</text>",
        first.format("%d/%m/%Y"),
        WIDTH - 10.0,
        last.format("%d/%m/%Y")
    );
    let row_of = |id: &str| rows.iter().position(|r| r.id == id);
    let middle = |index: usize| TOP + ROW * index as f64 + ROW / 2.0;
    for (index, row) in rows.iter().enumerate() {
        let y = TOP + ROW * index as f64;
        let (from, to) = (x(starts(row)), x(row.due));
        let width = (to - from).max(6.0);
        let late_mark = row.days_late > 0;
        let classes = format!(
            "{}{}",
            row.status.as_str(),
            if late_mark { " late" } else { "" }
        );
        let tooltip = escape(&format!("{} ({} → {})", row.title, starts(row), row.due));
        let _ = write!(
            svg,
            "<text class=\"label\" x=\"4\" y=\"{}\">{}</text>",
            y + ROW / 2.0 + 4.0,
            escape(&truncate(&row.title, 28)),
        );
        if row.start.is_some() {
            let _ = write!(
                svg,
                "<rect class=\"bar {classes}\" x=\"{from:.1}\" y=\"{}\" width=\"{width:.1}\" \
                 height=\"{}\" rx=\"3\"><title>{tooltip}</title></rect>",
                y + 6.0,
                ROW - 12.0,
            );
        } else {
            let (cx, cy, r) = (to, y + ROW / 2.0, ROW / 2.0 - 5.0);
            let _ = write!(
                svg,
                "<path class=\"bar {classes}\" d=\"M{cx:.1},{:.1} L{:.1},{cy:.1} L{cx:.1},{:.1} \
                 L{:.1},{cy:.1} z\"><title>{tooltip}</title></path>",
                cy - r,
                cx + r,
                cy + r,
                cx - r,
            );
        }
        if late_mark {
            let _ = write!(
                svg,
                "<text class=\"late-mark\" x=\"{:.1}\" y=\"{}\">{} +{}</text>",
                from + width + 4.0,
                y + ROW / 2.0 + 4.0,
                escape(late),
                row.days_late
            );
        }
        for waiting in &row.blocks {
            if let Some(other) = row_of(waiting) {
                let (x1, y1) = (to, middle(index));
                let (x2, y2) = (x(starts(&rows[other])), middle(other));
                let _ = write!(
                    svg,
                    "<path class=\"depends\" d=\"M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}\" \
                     marker-end=\"url(#arrow)\"/>",
                    x1 + 16.0,
                    x2 - 16.0
                );
            }
        }
    }
    let line = x(today);
    let _ = write!(
        svg,
        "<line class=\"today\" x1=\"{line:.1}\" y1=\"18\" x2=\"{line:.1}\" y2=\"{height}\"/></svg>"
    );
    svg
}

fn truncate(text: &str, at: usize) -> String {
    if text.chars().count() <= at {
        return text.to_owned();
    }
    let cut: String = text.chars().take(at - 1).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use palabre_lang::milestones::MilestoneStatus;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn row(id: &str, start: &str, due: &str, status: MilestoneStatus, late: i64) -> TimelineRow {
        TimelineRow {
            plan: "p".to_owned(),
            place: "mopti".to_owned(),
            id: id.to_owned(),
            title: format!("Jalon <{id}> & co"),
            owner: "maire@mopti".to_owned(),
            start: Some(date(start)),
            due: date(due),
            status,
            note: String::new(),
            days_late: late,
            blocked_by: Vec::new(),
            blocks: Vec::new(),
        }
    }

    #[test]
    fn bars_lines_arrows_and_late_marks_are_drawn_and_text_is_escaped() {
        let mut a = row("a", "2026-11-01", "2026-11-20", MilestoneStatus::Done, 0);
        a.blocks = vec!["b".to_owned()];
        let b = row(
            "b",
            "2026-11-21",
            "2026-11-30",
            MilestoneStatus::InProgress,
            2,
        );
        let svg = draw(&[a, b], date("2026-12-02"), "Plan <Mopti>", "retard");
        assert_eq!(svg.matches("<rect class=\"bar").count(), 2);
        assert!(svg.contains(">01/11/2026</text>"), "{svg}");
        assert!(svg.contains("class=\"bar done\""));
        assert!(svg.contains("class=\"bar in_progress late\""));
        assert!(svg.contains("retard +2"));
        assert_eq!(svg.matches("class=\"depends\"").count(), 1);
        assert_eq!(svg.matches("class=\"today\"").count(), 1);
        assert!(svg.contains("Jalon &lt;a&gt; &amp; co"));
        assert!(svg.contains("aria-label=\"Plan &lt;Mopti&gt;\""));
        assert!(!svg.contains("<a>"));
    }

    #[test]
    fn a_milestone_without_a_start_is_a_diamond_on_its_due_date() {
        let mut a = row("a", "2026-11-01", "2026-11-20", MilestoneStatus::Planned, 0);
        a.start = None;
        let svg = draw(&[a], date("2026-11-02"), "p", "late");
        assert_eq!(svg.matches("<rect class=\"bar").count(), 0);
        assert_eq!(
            svg.matches("<path class=\"bar planned\"").count(),
            1,
            "{svg}"
        );
    }

    #[test]
    fn today_after_every_due_date_is_still_inside_the_drawing() {
        let a = row(
            "a",
            "2026-01-01",
            "2026-01-10",
            MilestoneStatus::Planned,
            300,
        );
        let svg = draw(&[a], date("2026-12-02"), "p", "late");
        let x: f64 = svg
            .split("class=\"today\" x1=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert!(x > LABELS && x < WIDTH, "{x}");
    }
}
