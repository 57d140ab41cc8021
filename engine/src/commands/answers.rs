//! Answering a meeting from its email's answer link: the page the link opens
//! (the question, in the recipient's language) and the answer it posts, which
//! goes the way an SMS reply goes (the same recording, the same quorum rule).
//! A link whose signature does not hold, whose contact is gone, or whose meeting
//! has started shows that it is no longer valid, and records nothing.

use std::sync::Arc;

use palabre_core::channel::Channel;
use palabre_lang::occurrence::occurrence_reference;
use palabre_lang::templates::{FALLBACK_LANGUAGE, ReplyFacts};
use palabre_plan::planner::Planner;

use super::{CommandError, Commands, InboundOutcome};

/// The template of the page an answer link opens.
pub const ANSWER_PAGE_TEMPLATE: &str = "answer-page";

/// What the page of an answer link shows, in the recipient's language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerPage {
    /// Whether the link is valid and its meeting still to come.
    pub open: bool,
    /// ISO 639-3 code of the text.
    pub language: String,
    pub title: String,
    pub text: String,
    /// The words of the two buttons: the language's yes and no of `replies.yaml`.
    pub yes: String,
    pub no: String,
}

impl Commands {
    /// The page of the answer link `token`, after recording `answer` (yes or no)
    /// when one is given and the link is open.
    pub async fn answer_page(
        &self,
        token: &str,
        answer: Option<bool>,
    ) -> Result<AnswerPage, CommandError> {
        let definitions = self.definitions();
        let now = self.now();
        let directory = Arc::new(self.store().contacts().await?);
        let subject = self.answer_links().and_then(|links| links.verify(token));
        let found = subject.as_ref().and_then(|s| {
            let meeting = definitions.meeting(&s.workflow)?;
            let contact = directory.iter().find(|c| c.id == s.contact)?;
            Some((meeting, contact, s.occurrence))
        });
        let changes =
            palabre_lang::occurrence::Changes::new(self.store().occurrence_changes().await?);
        let planner = Planner::new(&definitions, directory.clone());
        let page = |kind: &str,
                    language: &str,
                    context: Option<palabre_lang::templates::MessageContext>| {
            let mut context =
                context.unwrap_or_else(palabre_lang::templates::MessageContext::sample);
            context.reply = Some(ReplyFacts {
                kind: kind.to_owned(),
                reference: context.occurrence.reference.clone(),
            });
            let rendered = definitions
                .templates
                .render(ANSWER_PAGE_TEMPLATE, Channel::Email, language, &context)
                .map_err(|e| CommandError::Invalid(e.to_string()))?;
            let words = |meaning| {
                definitions
                    .replies
                    .first_word(&rendered.language, meaning)
                    .unwrap_or_default()
            };
            Ok(AnswerPage {
                open: kind != "closed",
                yes: words("yes"),
                no: words("no"),
                language: rendered.language.clone(),
                title: rendered.subject.unwrap_or_default(),
                text: rendered.body,
            })
        };
        let Some((meeting, contact, occurrence)) = found else {
            return page("closed", FALLBACK_LANGUAGE, None);
        };
        let change = changes.get(&meeting.definition.id, occurrence);
        let Some(start) = (match change {
            Some(change) => change.starts_at,
            None => Some(occurrence),
        }) else {
            // Cancelled.
            let context = planner.meeting_context(meeting, occurrence, occurrence, "answer");
            return page("closed", &contact.language, Some(context));
        };
        let context = planner.meeting_context(meeting, occurrence, start, "answer");
        if now >= start {
            return page("closed", &contact.language, Some(context));
        }
        let kind = match answer {
            None => "ask",
            Some(yes) => {
                let reference = occurrence_reference(&meeting.definition.id, occurrence);
                let answered = self
                    .answer_meeting(
                        &definitions,
                        contact,
                        &directory,
                        (yes, &reference),
                        Channel::Email,
                        now,
                    )
                    .await?;
                match answered {
                    Some(InboundOutcome::Answered { .. }) if yes => "yes",
                    Some(InboundOutcome::Answered { .. }) => "no",
                    _ => "closed",
                }
            }
        };
        page(kind, &contact.language, Some(context))
    }
}
