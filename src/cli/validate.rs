//! `palabre validate`: every problem of the workflow files (the whole folder or
//! the files named), recipients checked against the directory when there is one,
//! and the size of every SMS text; warnings for calendars that end soon and for
//! recurrences too frequent to plan in one pass; all of it on stderr.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::bail;
use palabre_core::channel::Channel;
use palabre_core::clock::{Clock, SystemClock};
use palabre_core::diagnostic::{Diagnostic, Diagnostics, Position};
use palabre_engine::runtime::RuntimeConfig;
use palabre_lang::voice::Keypad;
use palabre_plan::definitions::{CASE_TEMPLATE, Definitions, MILESTONE_TEMPLATES};
use palabre_sms::encoding::{Encoding, sms_size};

use super::args::Sources;
use super::context::{RULE_EXTENSIONS, existing_store, has_key, report};

/// SMS above this many segments get a warning (they cost as many messages).
const SMS_MAX_SEGMENTS: usize = 2;

pub async fn run(paths: &[PathBuf], sources: &Sources) -> anyhow::Result<()> {
    for path in paths {
        if !path.exists() {
            bail!("'{}' does not exist", path.display());
        }
    }
    let (root, only) = match paths {
        [] => (sources.workflows.clone(), None),
        [dir] if dir.is_dir() => (dir.clone(), None),
        files => {
            if let Some(dir) = files.iter().find(|p| p.is_dir()) {
                bail!(
                    "'{}' is a folder: give one workflows folder, or workflow files",
                    dir.display()
                );
            }
            (sources.workflows.clone(), Some(files.to_vec()))
        }
    };
    if !root.is_dir() {
        bail!(
            "workflows folder '{}' does not exist (use --workflows)",
            root.display()
        );
    }
    let (definitions, mut diagnostics) = Definitions::load(&root, only.as_deref(), RULE_EXTENSIONS);
    for ending in definitions.calendars_ending(SystemClock.now().date_naive()) {
        diagnostics.push(ending.diagnostic());
    }
    for crowded in definitions.crowded_meetings(RuntimeConfig::default().horizon) {
        diagnostics.push(crowded);
    }
    // Recipients are checked against the directory when there is one to check
    // against and its key is given; validating never creates a database.
    let url = sources.database_url();
    if palabre_store::exists(url) && !has_key(sources) {
        eprintln!(
            "recipients not checked against the directory in {url}: it is encrypted and no key \
             was given (--key-file or PALABRE_KEY_FILE)"
        );
    } else {
        check_recipients(&definitions, sources, &mut diagnostics).await?;
    }
    sms_segments(&definitions, &root, &mut diagnostics)?;
    call_lengths(&definitions)?;
    report(diagnostics)?;
    let workflows = definitions.workflow_ids().count();
    eprintln!("ok: {workflows} workflow(s) valid in {}", root.display());
    Ok(())
}

/// Recipients checked against the directory of the database, if there is one;
/// how many contacts fall back to French.
async fn check_recipients(
    definitions: &Definitions,
    sources: &Sources,
    diagnostics: &mut Diagnostics,
) -> anyhow::Result<()> {
    match existing_store(sources).await? {
        Some(store) => {
            let directory = store.contacts().await?;
            store.close().await;
            diagnostics.extend(definitions.check_directory(&directory));
            eprintln!("recipients checked against {} contacts", directory.len());
            for line in french_fallbacks(definitions, &directory) {
                eprintln!("{line}");
            }
        }
        None if sources.db.is_some() => eprintln!(
            "no database at {}: recipients not checked against a directory",
            sources.database_url()
        ),
        None => {}
    }
    Ok(())
}

/// Prints the size of every SMS text, per template and language, rendered with
/// the sample values; a text over [`SMS_MAX_SEGMENTS`] is a warning.
fn sms_segments(
    definitions: &Definitions,
    root: &Path,
    diagnostics: &mut Diagnostics,
) -> anyhow::Result<()> {
    let sample = palabre_lang::templates::MessageContext::sample();
    let mut err = std::io::stderr().lock();
    for template in definitions.templates.names() {
        for language in definitions.templates.sms_languages(template) {
            let Ok(rendered) =
                definitions
                    .templates
                    .render(template, Channel::Sms, language, &sample)
            else {
                continue;
            };
            let size = sms_size(&rendered.body);
            let encoding = match size.encoding {
                Encoding::Gsm7 => "GSM-7",
                Encoding::Ucs2 => "UCS-2",
            };
            writeln!(
                err,
                "sms {template:<22} {language}  {} segment(s), {encoding}, {} units",
                size.segments, size.units
            )?;
            if size.segments > SMS_MAX_SEGMENTS {
                diagnostics.push(Diagnostic::warning(
                    root.join("templates").join(format!("{template}.yaml")),
                    Position::START,
                    format!(
                        "the {language} SMS is {} segments ({encoding}) with sample values; more than {SMS_MAX_SEGMENTS} costs more (shorten it, or set sms_gsm: true)",
                        size.segments
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The keypad a template's calls end with: by the kind of workflow that sends it.
fn keypad_of_template(template: &str) -> Keypad {
    if template == CASE_TEMPLATE {
        Keypad::Dispute
    } else if MILESTONE_TEMPLATES.contains(&template) {
        Keypad::Milestone
    } else {
        Keypad::Attendance
    }
}

/// Prints how long every voice text plays, per template and language, rendered
/// with the sample values, the keypad's question included.
fn call_lengths(definitions: &Definitions) -> anyhow::Result<()> {
    let sample = palabre_lang::templates::MessageContext::sample();
    let mut err = std::io::stderr().lock();
    for template in definitions.templates.names() {
        for language in definitions.templates.voice_clips(template).into_keys() {
            let Ok(rendered) =
                definitions
                    .templates
                    .render(template, Channel::Voice, language, &sample)
            else {
                continue;
            };
            let keypad = keypad_of_template(template);
            let clips = palabre_lang::voice::call_clips(&rendered.body, keypad).count();
            let length = if definitions.audio.has_recordings(language) {
                let played = definitions
                    .audio
                    .call_length(language, &rendered.body, keypad);
                format!("{:.1} s with the keypad's question", played.as_secs_f64())
            } else {
                "not recorded yet".to_owned()
            };
            writeln!(
                err,
                "voice {template:<20} {language}  {clips} clips, {length}"
            )?;
        }
    }
    Ok(())
}

/// Per template, how many contacts of the directory read it in French because it
/// has no text in their language: `template meeting-invitation: in French for 23
/// ffm, 12 bzo (no text in their language)`.
fn french_fallbacks(
    definitions: &Definitions,
    directory: &[palabre_lang::contacts::Contact],
) -> Vec<String> {
    let mut by_language: std::collections::BTreeMap<&str, usize> = Default::default();
    for contact in directory {
        *by_language.entry(contact.language.as_str()).or_default() += 1;
    }
    definitions
        .templates
        .names()
        .filter_map(|template| {
            let written = definitions.templates.languages(template);
            let missing: Vec<String> = by_language
                .iter()
                .filter(|(language, _)| !written.contains(language))
                .map(|(language, count)| format!("{count} {language}"))
                .collect();
            (!missing.is_empty()).then(|| {
                format!(
                    "template {template}: in French for {} contact(s) (no text in their language)",
                    missing.join(", ")
                )
            })
        })
        .collect()
}
