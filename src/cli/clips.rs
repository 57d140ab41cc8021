//! `palabre clips`: every recording calls can play, per language, and whether
//! the workflows folder has it: the list a programme records from.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::bail;
use palabre_plan::definitions::Definitions;

use super::context::RULE_EXTENSIONS;

pub fn run(root: &Path, out: &mut String) -> anyhow::Result<()> {
    if !root.is_dir() {
        bail!("workflows folder '{}' does not exist", root.display());
    }
    // Missing recordings are what this lists: the folder's errors do not stop it.
    let (definitions, _) = Definitions::load(root, None, RULE_EXTENSIONS);
    let mut by_language: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for template in definitions.templates.names() {
        for (language, clips) in definitions.templates.voice_clips(template) {
            for clip in clips {
                by_language
                    .entry(language.to_owned())
                    .or_default()
                    .entry(clip)
                    .or_default()
                    .insert(template.to_owned());
            }
        }
    }
    if by_language.is_empty() {
        writeln!(
            out,
            "no template has a voice text: no call needs a recording"
        )?;
    }
    for (language, clips) in &by_language {
        let folder = root.join(palabre_lang::voice::AUDIO_DIR).join(language);
        let missing = clips
            .keys()
            .filter(|clip| definitions.audio.clip(language, clip).is_none())
            .count();
        writeln!(
            out,
            "{language}: {} clips in {} ({missing} to record)",
            clips.len(),
            folder.display()
        )?;
        for (clip, templates) in clips {
            let state = match definitions.audio.clip(language, clip) {
                Some(recorded) => format!("{:.1} s", recorded.duration.as_secs_f64()),
                None => "MISSING".to_owned(),
            };
            // The keypad's questions and answers are played by calls of any template.
            let used_by = if palabre_lang::voice::CALL_CLIPS.contains(&clip.as_str()) {
                "every call (the keypad)".to_owned()
            } else {
                let names: Vec<&str> = templates.iter().map(String::as_str).collect();
                names.join(", ")
            };
            writeln!(out, "  {clip:<16} {state:>8}  {used_by}")?;
        }
    }
    Ok(())
}
