//! Checking rule scripts before they run: syntax, calls to functions that do not
//! exist or with the wrong number of arguments, hooks with the wrong arity,
//! top-level code, and scripts named after no place.
//!
//! Rhai itself finds an unknown function only when the call runs; walking the
//! compiled AST finds it at load time, so `palabre validate` reports it with its
//! position like any other mistake.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rhai::{ASTNode, Engine, Expr, Position as RhaiPosition, Stmt};

use super::{FunctionDoc, NATIONAL, Script, ScriptFunction, World, hooks};
use palabre_core::diagnostic::{Diagnostic, Diagnostics, Position};

/// Rule scripts are small; a larger file is a mistake.
const MAX_SCRIPT_BYTES: usize = 256 * 1024;

/// Functions Rhai handles itself, not listed among registered signatures.
const INTRINSICS: [&str; 9] = [
    "print",
    "debug",
    "type_of",
    "Fn",
    "call",
    "curry",
    "is_def_fn",
    "is_def_var",
    "is_shared",
];

/// Every function a script may call: name to the argument counts it accepts.
pub(super) type KnownFunctions = BTreeMap<String, BTreeSet<usize>>;

/// The name and arity of a signature `name(a: T, b: U) -> R`.
fn name_and_arity(signature: &str) -> Option<(&str, usize)> {
    let (name, rest) = signature.split_once('(')?;
    let params = rest.split_once(')')?.0.trim();
    let arity = if params.is_empty() {
        0
    } else {
        // Parameter types may hold commas inside brackets; count top-level commas.
        let mut depth = 0_i32;
        1 + params
            .chars()
            .filter(|c| {
                match c {
                    '<' | '(' | '[' => depth += 1,
                    '>' | ')' | ']' => depth -= 1,
                    _ => {}
                }
                *c == ',' && depth == 0
            })
            .count()
    };
    Some((name.trim(), arity))
}

pub(super) fn known_functions(engine: &Engine) -> KnownFunctions {
    let mut known = KnownFunctions::new();
    for signature in engine.gen_fn_signatures(true) {
        if let Some((name, arity)) = name_and_arity(&signature) {
            known.entry(name.to_owned()).or_default().insert(arity);
        }
    }
    known
}

/// The engine's and the plugins' functions (not Rhai's standard library).
pub(super) fn function_docs(engine: &Engine) -> Vec<FunctionDoc> {
    let Ok(json) = engine.gen_fn_metadata_to_json(false) else {
        return Vec::new();
    };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&json) else {
        return Vec::new();
    };
    let mut docs: Vec<FunctionDoc> = value["functions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| FunctionDoc {
            signature: f["signature"].as_str().unwrap_or_default().to_owned(),
            doc: f["docComments"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str())
                .flat_map(str::lines)
                .map(|l| l.trim_start_matches("///").trim())
                .collect::<Vec<_>>()
                .join("\n"),
        })
        .collect();
    docs.sort_by(|a, b| a.signature.cmp(&b.signature));
    docs
}

/// Why a function named `name` looks like a misspelt hook: it is no hook, but
/// one is within a typo of it. The engine would never ask it, so a function
/// nobody calls is almost surely a hook whose name went wrong.
fn misspelt_hook(name: &str) -> Option<String> {
    if hooks::spec(name).is_some() {
        return None;
    }
    let hook = palabre_core::suggest::closest(name, hooks::HOOKS.iter().map(|h| h.name))?;
    Some(format!(
        "'{name}' is not a hook and no function calls it, so it never runs (did you mean '{hook}'?)"
    ))
}

/// Where the `fn` that defines `name` stands, the function whose body opens at
/// `body` (the last `fn name(` before it), and how wide `fn name` is.
fn fn_keyword(text: &str, name: &str, body: RhaiPosition) -> Option<(Position, usize)> {
    let line = body.line()?;
    let column = body.position()?;
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let rest = text.get(line_start..)?;
    let in_line = rest
        .char_indices()
        .nth(column.saturating_sub(1))
        .map_or(rest.len(), |(i, _)| i);
    let before = text.get(..line_start + in_line)?;
    let mut end = before.len();
    while let Some(found) = before[..end].rfind(name) {
        end = found;
        let after = before[found + name.len()..].trim_start();
        let lead = before[..found].trim_end();
        let word_start = !before[..found].ends_with(|c: char| c.is_alphanumeric() || c == '_');
        if after.starts_with('(') && word_start && lead.ends_with("fn") {
            let keyword = lead.len() - 2;
            let ends_word = lead[..keyword].ends_with(|c: char| c.is_alphanumeric() || c == '_');
            if !ends_word {
                let width = before[keyword..found + name.len()].chars().count();
                return Some((Position::of_byte_offset(text.as_bytes(), keyword), width));
            }
        }
    }
    None
}

/// Every `.rhai` file below `root`, sorted.
pub(super) fn script_files(root: &Path, diagnostics: &mut Diagnostics) -> Vec<PathBuf> {
    palabre_lang::files::files_below(root, &["rhai"], diagnostics)
}

fn position(at: RhaiPosition) -> Position {
    Position {
        line: at.line().unwrap_or(1),
        column: at.position().unwrap_or(1),
    }
}

/// The place a script answers for, from its path below `rules/`.
fn place_of(root: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(root).ok()?.with_extension("");
    let parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let place = parts.join("/");
    Some(if place == NATIONAL {
        String::new()
    } else {
        place
    })
}

/// Compiles and checks one script; `None` when it cannot be used.
pub(super) fn compile(
    engine: &Engine,
    world: &World,
    known: &KnownFunctions,
    root: &Path,
    file: &Path,
    diagnostics: &mut Diagnostics,
) -> Option<Script> {
    let error = |at: Position, message: String| Diagnostic::error(file, at, message);
    let text = match std::fs::read(file) {
        Ok(bytes) if bytes.len() > MAX_SCRIPT_BYTES => {
            diagnostics.push(error(
                Position::START,
                format!(
                    "script is {} bytes; rule scripts are limited to {MAX_SCRIPT_BYTES}",
                    bytes.len()
                ),
            ));
            return None;
        }
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(_) => {
                diagnostics.push(error(
                    Position::START,
                    "script is not UTF-8 text".to_owned(),
                ));
                return None;
            }
        },
        Err(e) => {
            diagnostics.push(error(Position::START, format!("cannot read file: {e}")));
            return None;
        }
    };
    let place = place_of(root, file)?;
    if !place.is_empty() && world.places.get(&place).is_none() {
        diagnostics.push(error(
            Position::START,
            format!(
                "this script is named after no place: {}; name scripts national.rhai or after a place path (rules/mopti/djenne.rhai)",
                world.places.unknown_message(&place)
            ),
        ));
        return None;
    }
    let mut ast = match engine.compile(&text) {
        Ok(ast) => ast,
        Err(e) => {
            diagnostics.push(
                error(
                    position(e.position()),
                    format!("syntax error: {}", e.err_type()),
                )
                .with_source(&text),
            );
            return None;
        }
    };
    // Named relative to the workflows folder (`rules/mopti/koro.rhai`): the name
    // reaches the ledger and the API, which must not show the server's paths.
    let shown = Path::new(super::RULES_DIR)
        .join(file.strip_prefix(root).unwrap_or(file))
        .display()
        .to_string();
    ast.set_source(shown.clone());
    let before = diagnostics.error_count();
    if let Some(statement) = ast.statements().first() {
        diagnostics.push(
            error(
                position(statement.position()),
                "only `fn` definitions belong at the top of a rule script: top-level code never runs".to_owned(),
            )
            .with_source(&text),
        );
    }
    // Each function's body span, to attribute calls to the function they are in.
    let mut spans: Vec<(String, usize, RhaiPosition, RhaiPosition)> = Vec::new();
    let mut functions: BTreeMap<String, ScriptFunction> = BTreeMap::new();
    for (_, _, name, params, definition) in ast.shared_lib().iter_script_fn_info() {
        let start = definition.body.start_position();
        spans.push((
            name.to_owned(),
            params,
            start,
            definition.body.end_position(),
        ));
        functions.insert(
            name.to_owned(),
            ScriptFunction {
                params,
                line: start.line().unwrap_or(1),
                calls_parent: false,
            },
        );
        if let Some(hook) = hooks::spec(name)
            && params != 1
        {
            diagnostics.push(
                error(
                    position(start),
                    format!(
                        "the hook {} takes one argument (the input map), not {params}",
                        hook.name
                    ),
                )
                .with_source(&text),
            );
        }
    }
    let within = |at: RhaiPosition| {
        let key = |p: RhaiPosition| (p.line().unwrap_or(0), p.position().unwrap_or(0));
        spans
            .iter()
            .find(|(_, _, start, end)| key(*start) <= key(at) && key(at) <= key(*end))
            .map(|(name, ..)| name.clone())
    };
    let mut parents = BTreeSet::new();
    // Every function some other function calls (a function calling itself aside).
    let mut called: BTreeSet<String> = BTreeSet::new();
    let mut problems = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        let (call, at, method) = match path.last() {
            Some(ASTNode::Expr(Expr::FnCall(call, at))) => (call, *at, false),
            Some(ASTNode::Expr(Expr::MethodCall(call, at))) => (call, *at, true),
            Some(ASTNode::Stmt(Stmt::FnCall(call, at))) => (call, *at, false),
            _ => return true,
        };
        if call.is_operator_call() || call.is_qualified() {
            return true;
        }
        let name = call.name.as_str();
        let caller = within(at);
        if name == "parent"
            && let Some(function) = &caller
        {
            parents.insert(function.clone());
        }
        // `Fn("helper")` names a function as surely as calling it does.
        let named = match (name, call.args.first()) {
            ("Fn", Some(Expr::StringConstant(target, _))) => target.as_str(),
            _ => name,
        };
        if caller.as_deref() != Some(named) {
            called.insert(named.to_owned());
        }
        let arity = call.args.len();
        let accepted: Option<BTreeSet<usize>> = known
            .get(name)
            .cloned()
            .or_else(|| functions.get(name).map(|f| BTreeSet::from([f.params])));
        match accepted {
            None if INTRINSICS.contains(&name) => {}
            None => {
                let candidates = known
                    .keys()
                    .map(String::as_str)
                    .chain(functions.keys().map(String::as_str));
                problems.push((
                    at,
                    format!(
                        "unknown function '{name}'{}",
                        palabre_core::suggest::did_you_mean(name, candidates)
                    ),
                ));
            }
            Some(arities) if !method && !arities.contains(&arity) => {
                let expected: Vec<String> = arities.iter().map(usize::to_string).collect();
                problems.push((
                    at,
                    format!(
                        "'{name}' takes {} argument(s), not {arity}",
                        expected.join(" or ")
                    ),
                ));
            }
            Some(_) => {}
        }
        true
    });
    for (at, message) in problems {
        diagnostics.push(error(position(at), message).with_source(&text));
    }
    for (name, _, body, _) in &spans {
        if called.contains(name) {
            continue;
        }
        if let Some(message) = misspelt_hook(name) {
            let (at, width) = fn_keyword(&text, name, *body).unwrap_or((position(*body), 1));
            diagnostics.push(
                Diagnostic::warning(file, at, message)
                    .with_width(width)
                    .with_source(&text),
            );
        }
    }
    for name in parents {
        if let Some(function) = functions.get_mut(&name) {
            function.calls_parent = true;
        }
    }
    if diagnostics.error_count() > before {
        return None;
    }
    Some(Script {
        place,
        file: file.to_path_buf(),
        shown,
        functions,
        ast,
        fingerprint: palabre_core::fingerprint::fnv1a([text.as_bytes()]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        assert_eq!(
            name_and_arity("weekday(date: &str) -> String"),
            Some(("weekday", 1))
        );
        assert_eq!(name_and_arity("f() -> i64"), Some(("f", 0)));
        assert_eq!(
            name_and_arity("g(a: Map<String, i64>, b: i64)"),
            Some(("g", 2))
        );
        assert_eq!(name_and_arity("nonsense"), None);
    }

    #[test]
    fn a_function_named_almost_like_a_hook_is_a_misspelt_hook() {
        assert_eq!(
            misspelt_hook("meeting_invitee").as_deref(),
            Some(
                "'meeting_invitee' is not a hook and no function calls it, so it never runs (did you mean 'meeting_invitees'?)"
            )
        );
        assert!(misspelt_hook("meeting_shedule").is_some());
        assert_eq!(misspelt_hook("meeting_invitees"), None);
        assert_eq!(misspelt_hook("committee_schedule"), None);
        assert_eq!(misspelt_hook("is_big_market"), None);
    }

    #[test]
    fn the_fn_of_a_function_is_found_before_its_body() {
        let text = "// x\nfn helper() { 1 }\n  private fn meeting_quorm(\n  input\n) {\n  ()\n}\n";
        let body = RhaiPosition::new(5, 3);
        assert_eq!(
            fn_keyword(text, "meeting_quorm", body),
            Some((
                Position {
                    line: 3,
                    column: 11
                },
                16
            ))
        );
        assert_eq!(fn_keyword(text, "nowhere", body), None);
    }
}
