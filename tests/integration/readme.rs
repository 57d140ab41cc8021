//! Every command the README shows parses with the current command line: the
//! README is what a coordinator copies, so a renamed flag or subcommand fails
//! here, not in Mopti. The CLI's argument types are the binary's own, included
//! from `src/cli/args.rs`.

#[allow(dead_code)]
#[path = "../../src/cli/args.rs"]
mod args;

use clap::Parser;

use crate::util::repo;

/// The words of one shell line, quotes removed (the README uses no escapes).
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    words.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(word);
    }
    words
}

/// The `palabre` command lines of the README's shell blocks (continuations
/// joined, comments and redirections dropped), as argument lists after the
/// program name. `a|b` and `[--x]` stand for each alternative and both forms.
fn readme_commands() -> Vec<(String, Vec<String>)> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let mut lines = Vec::new();
    let mut in_shell = false;
    let mut pending = String::new();
    for line in readme.lines() {
        if line.starts_with("```") {
            in_shell = line == "```sh";
            continue;
        }
        if !in_shell {
            continue;
        }
        let line = line.split(" #").next().unwrap_or(line).trim_end();
        if let Some(start) = line.strip_suffix('\\') {
            pending.push_str(start);
            continue;
        }
        pending.push_str(line);
        lines.push(std::mem::take(&mut pending));
    }
    let mut commands = Vec::new();
    for line in lines {
        let line = line.split(" > ").next().unwrap_or(&line).trim().to_owned();
        let args = if let Some(rest) = line.strip_prefix("palabre ") {
            rest.to_owned()
        } else if let Some((_, rest)) = line.split_once("cargo run --release -- ") {
            rest.to_owned()
        } else {
            continue;
        };
        let mut variants: Vec<Vec<String>> = vec![Vec::new()];
        for word in words(&args) {
            if let Some(optional) = word.strip_prefix('[').and_then(|w| w.strip_suffix(']')) {
                let with: Vec<Vec<String>> = variants
                    .iter()
                    .map(|v| [v.clone(), vec![optional.to_owned()]].concat())
                    .collect();
                variants.extend(with);
            } else if word.contains('|') && !word.contains('/') {
                variants = variants
                    .iter()
                    .flat_map(|v| {
                        word.split('|')
                            .map(|alternative| [v.clone(), vec![alternative.to_owned()]].concat())
                    })
                    .collect();
            } else {
                for v in &mut variants {
                    v.push(word.clone());
                }
            }
        }
        commands.extend(variants.into_iter().map(|v| (line.clone(), v)));
    }
    commands
}

#[test]
fn every_command_the_readme_shows_parses() {
    let commands = readme_commands();
    assert!(
        commands.len() > 30,
        "the README's commands were not found: {commands:?}"
    );
    let mut problems = Vec::new();
    for (line, args) in &commands {
        let argv = std::iter::once("palabre".to_owned()).chain(args.iter().cloned());
        if let Err(error) = args::Cli::try_parse_from(argv) {
            problems.push(format!(
                "{line}\n  {}",
                error.to_string().lines().next().unwrap_or_default()
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "README commands that do not parse:\n{}",
        problems.join("\n")
    );
}

/// The check itself catches a wrong flag.
#[test]
fn a_wrong_flag_does_not_parse() {
    for (argv, parses) in [
        (vec!["palabre", "status"], true),
        (vec!["palabre", "status", "--colour"], false),
        (vec!["palabre", "case", "frobnicate", "LM-0001"], false),
    ] {
        assert_eq!(
            args::Cli::try_parse_from(argv.clone()).is_ok(),
            parses,
            "{argv:?}"
        );
    }
}
