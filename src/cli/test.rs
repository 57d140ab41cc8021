//! `palabre test`: runs the rule cases (`*.test.yaml` beside the scripts) and
//! reports like a test runner; a failed or broken case is exit code 1.

use std::fmt::Write as _;
use std::path::Path;

use palabre_core::diagnostic::Diagnostics;

use super::args::Sources;
use super::context::{Invalid, load_definitions, report};

pub fn run(path: Option<&Path>, sources: &Sources, out: &mut String) -> anyhow::Result<()> {
    let definitions = load_definitions(&sources.workflows)?;
    let rules_dir = sources.workflows.join(palabre_rules::RULES_DIR);
    let path = path.unwrap_or(&rules_dir);
    let mut diagnostics = Diagnostics::default();
    let reports = palabre_rules::run_cases(&definitions.rules, path, &mut diagnostics);
    // Errors in the case files themselves: a case that cannot be run also fails
    // (and is counted there), a file that cannot be read has no case to count.
    let errors = diagnostics.error_count();
    let broken_cases = report(diagnostics).is_err();
    writeln!(out, "running {} rule case(s)", reports.len())?;
    for case in &reports {
        let verdict = if case.failure.is_some() {
            "FAILED"
        } else {
            "ok"
        };
        writeln!(
            out,
            "case {}:{} {} ... {verdict}",
            case.file.display(),
            case.line,
            case.name
        )?;
    }
    let failed: Vec<_> = reports.iter().filter(|r| r.failure.is_some()).collect();
    if !failed.is_empty() {
        writeln!(out, "\nfailures:")?;
        for case in &failed {
            if let Some(failure) = &case.failure {
                writeln!(
                    out,
                    "\n---- {}:{} {} ----\nexpected: {}\n     got: {}",
                    case.file.display(),
                    case.line,
                    case.name,
                    failure.expected,
                    failure.got
                )?;
            }
        }
    }
    let passed = reports.len() - failed.len();
    // FAILED names failed cases: with none, a broken file is an error, not a failure.
    let (verdict, unread) = match (failed.is_empty(), broken_cases) {
        (true, false) => ("ok", String::new()),
        (false, _) => ("FAILED", String::new()),
        (true, true) => (
            "error",
            format!("; {errors} error(s) in the case files: fix them to run their cases"),
        ),
    };
    writeln!(
        out,
        "\ntest result: {verdict}. {passed} passed; {} failed{unread}",
        failed.len()
    )?;
    if verdict == "ok" {
        Ok(())
    } else {
        Err(Invalid.into())
    }
}
