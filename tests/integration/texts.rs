//! What people read, read as a person would: every shipped template rendered in
//! every language it has, for the sample occurrence, case and milestone. The
//! replies a text asks for are read back as replies; French keeps its accents;
//! dates read as words, with no ISO date and no zone name; French texts carry no
//! English or internal words; and no email asks for a reply word (emails are not
//! read: they carry the answer link).

use palabre_core::channel::Channel;
use palabre_lang::reply_words::Reply;
use palabre_lang::templates::MessageContext;
use palabre_plan::definitions::Definitions;

use crate::util::repo;

/// Every text of every shipped template: (template, language, channel, text).
fn shipped_texts() -> (Definitions, Vec<(String, String, Channel, String)>) {
    let (definitions, diagnostics) =
        Definitions::load(&repo().join("workflows"), None, palabre_sms::RULE_FUNCTIONS);
    assert!(!diagnostics.has_errors(), "{:?}", diagnostics.sorted());
    let sample = MessageContext::sample();
    let mut texts = Vec::new();
    for template in definitions.templates.names() {
        for language in definitions.templates.languages(template) {
            for channel in [Channel::Sms, Channel::Email] {
                let Ok(rendered) = definitions
                    .templates
                    .render(template, channel, language, &sample)
                else {
                    continue;
                };
                if rendered.language != language {
                    continue;
                }
                let text = format!(
                    "{}\n{}",
                    rendered.subject.unwrap_or_default(),
                    rendered.body
                );
                texts.push((template.to_owned(), language.to_owned(), channel, text));
            }
        }
    }
    (definitions, texts)
}

#[test]
fn every_shipped_text_reads_as_people_expect() {
    let (definitions, texts) = shipped_texts();
    assert!(texts.len() > 40, "{} texts", texts.len());
    let iso_date = |text: &str| {
        text.as_bytes().windows(10).any(|w| {
            w[4] == b'-'
                && w[7] == b'-'
                && w.iter()
                    .enumerate()
                    .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        })
    };
    for (template, language, channel, text) in &texts {
        let at = format!("{template} {language} {channel}: {text}");
        assert!(!iso_date(text), "an ISO date: {at}");
        assert!(!text.contains("Africa/"), "a zone name: {at}");
        // The replies it asks for read back as answers with their reference.
        let words: Vec<&str> = text.split_whitespace().collect();
        for pair in words.windows(2) {
            let reference = pair[1].trim_matches(|c: char| !c.is_alphanumeric());
            let asked = pair[0].trim_matches(|c: char| !c.is_alphanumeric());
            let is_reference = ["4821", "5127", "LT-0007"].contains(&reference);
            let in_capitals = asked.chars().count() >= 2
                && asked
                    .chars()
                    .all(|c| c.is_alphabetic() && !c.is_lowercase());
            if !(is_reference && in_capitals) {
                continue;
            }
            assert_eq!(*channel, Channel::Sms, "an email asks for '{asked}': {at}");
            let read = definitions.replies.read(&format!("{asked} {reference}"));
            assert!(
                matches!(
                    &read,
                    Reply::Answer { reference: Some(r), .. } | Reply::Done { reference: Some(r) }
                        if r == reference
                ),
                "'{asked} {reference}' is read as {read:?}: {at}"
            );
        }
        if language == "fra" {
            for plain in [
                "Repondez",
                "repondez",
                "deplace",
                "notee",
                "presence",
                "reception",
                " a 9",
                " a 1",
                "Ref ",
                "Etape",
            ] {
                assert!(!text.contains(plain), "'{plain}' without its accent: {at}");
            }
            for english in [
                " the ", " by hand", " by cli", " by api", "deadline", "opened", "level ", "token",
                "Reply", "meeting",
            ] {
                assert!(
                    !text.contains(english),
                    "English '{english}' in French: {at}"
                );
            }
        }
    }
    // The invitation reads its date as words, in each language.
    let invitation = |language: &str, channel| {
        texts
            .iter()
            .find(|(t, l, c, _)| t == "meeting-invitation" && l == language && *c == channel)
            .map(|(_, _, _, text)| text.clone())
            .unwrap()
    };
    assert!(invitation("fra", Channel::Email).contains("le mardi 5 janvier 2027 à 9 h"));
    assert!(invitation("fra", Channel::Sms).contains("le mardi 5 janvier à 9 h"));
    assert!(invitation("eng", Channel::Email).contains("on Tuesday 5 January 2027 at 9:00"));
    assert!(invitation("bam", Channel::Sms).contains("Tarata 5 Zanwuyekalo"));
}
