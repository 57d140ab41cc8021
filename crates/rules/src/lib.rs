//! Local rules in Rhai: loading the scripts along the place hierarchy, resolving
//! a hook to the most local script that defines it, calling it in the sandbox,
//! and checking what it returns.
//!
//! Scripts live in `workflows/rules/`: `national.rhai`, then one per place named
//! after its path (`mopti.rhai`, `mopti/djenne.rhai`, `mopti/djenne/fakala.rhai`).
//! A hook asked at a place is answered by the most local script that defines the
//! hook's function; that function may call `parent(input)` for the answer of the
//! next script up, and at the top `parent` gives the built-in default. A rule that
//! fails (an error, a limit, a wrong return type) does not stop anything: the
//! decision falls back to the hook's default, and the answer carries the failure
//! ([`Answer::failure`]) for the caller's ledger. Rules hold no state between
//! decisions: the contact directory a decision reads is given with it.
//!
//! Scripts are compiled once, when the definitions are loaded; a call costs a
//! function call, not a compilation.

mod check;
mod functions;
mod hooks;
mod rule_tests;
mod sandbox;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rhai::{AST, CallFnOptions, Dynamic, Engine, EvalAltResult, Map, Scope};

pub use hooks::{
    COMMON_INPUT, CallTimeDecision, DeadlinesDecision, Decision, EntryDecision, ExtraReminder,
    HOOKS, HookSpec, InviteesDecision, MeetingFacts, MissedDecision, OverdueDecision,
    QuorumDecision, RemindersDecision, ScheduleDecision, call_input, case_input, contact_facts,
    meeting_input, milestone_input, spec, with_participants, with_responses,
};
pub use rule_tests::{CaseFailure, CaseFile, CaseReport, RuleCase, run_cases};
pub use sandbox::Limits;

use palabre_core::diagnostic::Diagnostics;
use palabre_core::rule_function::{RuleFunction, RuleFunctionBody};
use palabre_lang::calendars::Calendars;
use palabre_lang::contacts::Contact;
use palabre_lang::places::{Level, Places};

/// The folder of rule scripts, below the workflows folder.
pub const RULES_DIR: &str = "rules";
/// The script that answers for every place.
pub const NATIONAL: &str = "national";

/// Registers the functions plugins add to the rule language, with their doc
/// comment and signature for `palabre rules docs` and for the script checks.
fn register_plugin_functions(engine: &mut Engine, functions: &[RuleFunction]) {
    for function in functions {
        let comment = function
            .doc
            .lines()
            .map(|l| format!("/// {l}"))
            .collect::<Vec<_>>()
            .join("\n");
        let registration = rhai::FuncRegistration::new(function.name)
            .with_comments([comment])
            .with_params_info(function.body.signature());
        match function.body {
            RuleFunctionBody::TextToInteger(body) => {
                registration.register_into_engine(engine, move |text: &str| body(text));
            }
        }
    }
}

/// What rules can read that comes with the definitions: the map, the calendars,
/// roles and templates. The contact directory is not part of it: each decision is
/// given the directory of its caller's snapshot.
#[derive(Debug, Default)]
pub struct World {
    pub(crate) places: Places,
    pub(crate) calendars: Calendars,
    pub(crate) roles: BTreeSet<String>,
    pub(crate) templates: BTreeSet<String>,
    /// The `place` input field of every place, built once.
    place_facts: BTreeMap<String, Dynamic>,
}

impl World {
    pub fn new(
        places: Places,
        calendars: Calendars,
        roles: BTreeSet<String>,
        templates: BTreeSet<String>,
    ) -> World {
        let place_facts = places
            .paths()
            .map(|path| {
                (
                    path.to_owned(),
                    Dynamic::from_map(World::facts_of(&places, path)),
                )
            })
            .collect();
        World {
            places,
            calendars,
            roles,
            templates,
            place_facts,
        }
    }

    /// The calendars rules read (working time for deadlines reads them too).
    pub fn calendars(&self) -> &Calendars {
        &self.calendars
    }

    /// `place` input field: path, name, level and the region/cercle/commune it sits in.
    pub(crate) fn place_facts(&self, path: &str) -> Dynamic {
        self.place_facts
            .get(path)
            .cloned()
            .unwrap_or_else(|| Dynamic::from_map(World::facts_of(&self.places, path)))
    }

    fn facts_of(places: &Places, path: &str) -> Map {
        let mut map = Map::new();
        let segments: Vec<&str> = path.split('/').collect();
        let level = places.get(path).map(|p| match p.level {
            Level::Region => "region",
            Level::Cercle => "cercle",
            Level::Commune => "commune",
        });
        let upto = |n: usize| {
            Dynamic::from(if segments.len() >= n {
                segments[..n].join("/")
            } else {
                String::new()
            })
        };
        map.insert("path".into(), Dynamic::from(path.to_owned()));
        map.insert(
            "name".into(),
            Dynamic::from(places.get(path).map_or(path, |p| &p.name).to_owned()),
        );
        map.insert(
            "level".into(),
            Dynamic::from(level.unwrap_or_default().to_owned()),
        );
        map.insert("region".into(), upto(1));
        map.insert("cercle".into(), upto(2));
        map.insert("commune".into(), upto(3));
        map
    }
}

/// One function a script defines.
#[derive(Debug, Clone)]
pub struct ScriptFunction {
    pub params: usize,
    pub line: usize,
    /// Whether its body calls `parent(...)`.
    pub calls_parent: bool,
}

/// One compiled rule script.
#[derive(Debug)]
pub struct Script {
    /// The place it answers for; `""` for the national script.
    pub place: String,
    pub file: PathBuf,
    /// Its name as people see it, relative to the workflows folder
    /// (`rules/mopti/koro.rhai`).
    shown: String,
    pub functions: BTreeMap<String, ScriptFunction>,
    ast: AST,
    fingerprint: u64,
}

impl Script {
    fn display(&self) -> String {
        self.shown.clone()
    }
}

/// A rule that failed, located in its script.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {function}: {message}")]
pub struct RuleError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub function: String,
    pub message: String,
}

/// A failure kept for the ledger, with what the engine did instead.
#[derive(Debug, Clone)]
pub struct RuleFailure {
    pub workflow: String,
    pub occurrence: Option<DateTime<Utc>>,
    pub hook: &'static str,
    pub error: RuleError,
    /// The default that was applied instead.
    pub fallback: &'static str,
}

impl RuleFailure {
    fn new<D: Decision>(subject: Subject<'_>, error: RuleError) -> RuleFailure {
        RuleFailure {
            workflow: subject.workflow.to_owned(),
            occurrence: subject.occurrence,
            hook: D::HOOK.name,
            error,
            fallback: D::HOOK.default,
        }
    }
}

impl fmt::Display for RuleFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

/// What a decision is about, for the ledger.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub workflow: &'a str,
    pub occurrence: Option<DateTime<Utc>>,
}

/// A decision, who took it, and the failure if the default had to be used.
#[derive(Debug, Clone)]
pub struct Answer<D> {
    pub decision: D,
    /// The script whose function answered; `None` for the built-in default.
    pub by: Option<String>,
    pub failure: Option<RuleFailure>,
}

/// The scripts that answer one function at one place, most local first.
type Chain = Arc<[Arc<Script>]>;

/// The chain of scripts a call walks, carried in Rhai's call tag so that
/// `parent()` knows where it stands.
#[derive(Clone)]
pub(crate) struct ChainTag {
    chain: Chain,
    level: usize,
    function: rhai::ImmutableString,
    default: fn(&Map) -> Dynamic,
    /// The contact directory this decision reads (`contacts_with_role`).
    pub(crate) directory: Arc<Vec<Contact>>,
}

thread_local! {
    /// The innermost script a failing decision failed in. Rhai re-positions a limit
    /// error at each call it crosses, so the error alone cannot say which script of
    /// the chain hit the limit.
    static FAILED_IN: RefCell<Option<Arc<Script>>> = const { RefCell::new(None) };
}

impl ChainTag {
    fn call(&self, engine: &Engine, input: Map) -> Result<Dynamic, Box<EvalAltResult>> {
        let script = &self.chain[self.level];
        let options = CallFnOptions::new()
            .eval_ast(false)
            .rewind_scope(true)
            .with_tag(self.clone());
        engine
            .call_fn_with_options::<Dynamic>(
                options,
                &mut Scope::new(),
                &script.ast,
                &self.function,
                (Dynamic::from_map(input),),
            )
            .inspect_err(|_| {
                FAILED_IN.with(|f| {
                    f.borrow_mut().get_or_insert_with(|| script.clone());
                });
            })
    }

    /// The next script up, or the built-in default when there is none.
    pub(crate) fn call_next(
        self,
        engine: &Engine,
        input: Map,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        if self.level + 1 >= self.chain.len() {
            return Ok((self.default)(&input));
        }
        ChainTag {
            level: self.level + 1,
            ..self
        }
        .call(engine, input)
    }
}

/// Every level a hook is looked up at, for `palabre rules explain`.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub place: String,
    pub function: String,
    /// From the most local place up to the national script.
    pub levels: Vec<ExplainedLevel>,
    pub default: Option<&'static str>,
}

#[derive(Debug, Clone)]
pub struct ExplainedLevel {
    /// `""` for national.
    pub place: String,
    pub file: PathBuf,
    pub exists: bool,
    pub defines: Option<ScriptFunction>,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} at {}:", self.function, self.place)?;
        let mut answered = false;
        let mut reached = true;
        for level in &self.levels {
            let file = level.file.display();
            let note = match (&level.defines, level.exists) {
                (_, false) => "no such script".to_owned(),
                (None, true) => format!("does not define {}", self.function),
                (Some(f), true) => {
                    let role = if !answered {
                        "answers"
                    } else if reached {
                        "reached through parent()"
                    } else {
                        "not reached (the rule below does not call parent())"
                    };
                    format!("line {}: defines it; {role}", f.line)
                }
            };
            writeln!(f, "  {file}: {note}")?;
            if let Some(defined) = &level.defines {
                reached = (!answered || reached) && defined.calls_parent;
                answered = true;
            }
        }
        let default = self.default.unwrap_or("none: this is not a hook name");
        let role = if !answered {
            "answers"
        } else if reached {
            "reached through parent()"
        } else {
            "not reached"
        };
        write!(f, "  built-in default ({role}): {default}")
    }
}

/// Every rule script of a workflows folder, compiled, with the engine that runs them.
pub struct Rules {
    engine: Engine,
    world: Arc<World>,
    limits: Limits,
    root: PathBuf,
    scripts: BTreeMap<String, Arc<Script>>,
    /// For every place (and `""`) and every function some script defines: the
    /// scripts that answer, most local first. Built once at load.
    chains: HashMap<String, HashMap<String, Chain>>,
}

impl fmt::Debug for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rules")
            .field("scripts", &self.scripts.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Default for Rules {
    fn default() -> Self {
        Rules::new(
            World::default(),
            &[],
            Limits::default(),
            PathBuf::from(RULES_DIR),
        )
    }
}

impl Rules {
    fn new(world: World, extensions: &[RuleFunction], limits: Limits, root: PathBuf) -> Rules {
        let world = Arc::new(world);
        let mut engine = sandbox::engine(limits);
        functions::register(&mut engine, &world);
        register_plugin_functions(&mut engine, extensions);
        Rules {
            engine,
            world,
            limits,
            root,
            scripts: BTreeMap::new(),
            chains: HashMap::new(),
        }
    }

    /// Compiles every script below `workflows/rules/`, reporting problems with positions.
    pub fn load(
        workflows: &Path,
        world: World,
        extensions: &[RuleFunction],
        limits: Limits,
        diagnostics: &mut Diagnostics,
    ) -> Rules {
        let root = workflows.join(RULES_DIR);
        let mut rules = Rules::new(world, extensions, limits, root.clone());
        if !root.is_dir() {
            return rules;
        }
        let known = check::known_functions(&rules.engine);
        for file in check::script_files(&root, diagnostics) {
            if let Some(script) = check::compile(
                &rules.engine,
                &rules.world,
                &known,
                &root,
                &file,
                diagnostics,
            ) {
                rules.scripts.insert(script.place.clone(), Arc::new(script));
            }
        }
        let functions: BTreeSet<&String> = rules
            .scripts
            .values()
            .flat_map(|s| s.functions.keys())
            .collect();
        let places = rules.world.places.paths().chain([""]);
        rules.chains = places
            .map(|place| {
                let by_function = functions
                    .iter()
                    .map(|f| ((*f).clone(), rules.resolve(place, f).into()))
                    .collect();
                (place.to_owned(), by_function)
            })
            .collect();
        rules
    }

    pub fn world(&self) -> &World {
        &self.world
    }

    pub fn scripts(&self) -> impl Iterator<Item = &Script> {
        self.scripts.values().map(|s| &**s)
    }

    /// The places a hook is looked up at, most local first, national last.
    fn levels(place: &str) -> Vec<String> {
        Places::upwards(place)
            .chain([""])
            .map(str::to_owned)
            .collect()
    }

    /// The scripts along `place` that define `function`, most local first.
    fn chain(&self, place: &str, function: &str) -> Chain {
        match self.chains.get(place) {
            Some(by_function) => by_function.get(function).cloned().unwrap_or_default(),
            None => self.resolve(place, function).into(),
        }
    }

    fn resolve(&self, place: &str, function: &str) -> Vec<Arc<Script>> {
        Rules::levels(place)
            .iter()
            .filter_map(|level| self.scripts.get(level))
            .filter(|s| s.functions.contains_key(function))
            .cloned()
            .collect()
    }

    /// The file a level's script is (or would be) in.
    fn file_of(&self, level: &str) -> PathBuf {
        let name = if level.is_empty() { NATIONAL } else { level };
        self.root.join(format!("{name}.rhai"))
    }

    /// Whether any script along `place` defines `function`, and with how many parameters.
    pub fn defined_along(&self, place: &str, function: &str) -> Option<(PathBuf, &ScriptFunction)> {
        Rules::levels(place).iter().find_map(|level| {
            let script = self.scripts.get(level)?;
            script
                .functions
                .get(function)
                .map(|f| (script.file.clone(), f))
        })
    }

    /// A fingerprint of the scripts `place` can reach and of the calendars:
    /// when it changes, that place's plans are redone.
    pub fn fingerprint(&self, place: &str) -> u64 {
        let parts: Vec<[u8; 8]> = Rules::levels(place)
            .iter()
            .filter_map(|level| self.scripts.get(level))
            .map(|s| s.fingerprint.to_le_bytes())
            .chain([self.world.calendars.fingerprint().to_le_bytes()])
            .collect();
        palabre_core::fingerprint::fnv1a(parts.iter().map(|p| p.as_slice()))
    }

    /// How `function` is resolved at `place`.
    pub fn explain(&self, place: &str, function: &str) -> Explanation {
        let levels = Rules::levels(place)
            .into_iter()
            .map(|level| {
                let script = self.scripts.get(&level);
                ExplainedLevel {
                    file: script.map_or_else(|| self.file_of(&level), |s| s.file.clone()),
                    exists: script.is_some(),
                    defines: script.and_then(|s| s.functions.get(function).cloned()),
                    place: level,
                }
            })
            .collect();
        Explanation {
            place: place.to_owned(),
            function: function.to_owned(),
            levels,
            default: spec(function).map(|h| h.default),
        }
    }

    /// Asks the hook `D` at `place` (through `function` when a workflow names
    /// another one), reading `directory` for `contacts_with_role`. `input` is only
    /// built when a script will read it. Never fails: a failing rule gives the
    /// default, and the answer carries the failure, about `subject`, for the
    /// caller's ledger.
    pub fn decide<D: Decision>(
        &self,
        place: &str,
        function: Option<&str>,
        input: impl FnOnce() -> Map,
        subject: Subject<'_>,
        directory: &Arc<Vec<Contact>>,
    ) -> Answer<D> {
        let (decision, by, error) = self.ask_with::<D>(place, function, input, directory);
        if let Some(error) = &error {
            tracing::warn!(workflow = subject.workflow, hook = D::HOOK.name, %error, "rule failed; default applied");
        }
        Answer {
            decision,
            by,
            failure: error.map(|error| RuleFailure::new::<D>(subject, error)),
        }
    }

    /// The failure of a decision the engine could not use (a move to a time that
    /// is not in the future ...), placed at the line of `script`'s function.
    pub fn reject<D: Decision>(
        &self,
        script: &str,
        subject: Subject<'_>,
        message: String,
    ) -> RuleFailure {
        let function = D::HOOK.name;
        let line = self
            .scripts
            .values()
            .find(|s| s.display() == script)
            .and_then(|s| s.functions.get(function))
            .map_or(1, |f| f.line);
        let error = RuleError {
            file: script.to_owned(),
            line,
            column: 1,
            function: function.to_owned(),
            message,
        };
        tracing::warn!(workflow = subject.workflow, hook = function, %error, "rule decision refused; default applied");
        RuleFailure::new::<D>(subject, error)
    }

    /// [`Rules::decide`] about nothing in particular (rule tests).
    pub fn ask<D: Decision>(
        &self,
        place: &str,
        function: Option<&str>,
        input: Map,
        directory: &Arc<Vec<Contact>>,
    ) -> Answer<D> {
        let subject = Subject {
            workflow: "",
            occurrence: None,
        };
        let (decision, by, error) = self.ask_with::<D>(place, function, || input, directory);
        Answer {
            decision,
            by,
            failure: error.map(|error| RuleFailure::new::<D>(subject, error)),
        }
    }

    fn ask_with<D: Decision>(
        &self,
        place: &str,
        function: Option<&str>,
        input: impl FnOnce() -> Map,
        directory: &Arc<Vec<Contact>>,
    ) -> (D, Option<String>, Option<RuleError>) {
        let function = function.unwrap_or(D::HOOK.name);
        let chain = self.chain(place, function);
        if chain.is_empty() && !D::DEFAULT_READS_INPUT {
            return (D::fallback(&Map::new()), None, None);
        }
        let input = input();
        let fallback = D::fallback(&input);
        let Some(first) = chain.first().cloned() else {
            return (fallback, None, None);
        };
        let tag = ChainTag {
            chain,
            level: 0,
            function: function.into(),
            default: D::default_value,
            directory: directory.clone(),
        };
        FAILED_IN.with(|f| f.borrow_mut().take());
        let result = sandbox::with_deadline(self.limits.time, || tag.call(&self.engine, input));
        let failure = match result {
            Ok(value) => match D::parse(value, &self.world) {
                Ok(decision) => return (decision, Some(first.display()), None),
                Err(message) => {
                    let line = first.functions.get(function).map_or(0, |f| f.line);
                    RuleError {
                        file: first.display(),
                        line,
                        column: 1,
                        function: function.to_owned(),
                        message: format!("returned a wrong value: {message}"),
                    }
                }
            },
            Err(error) => {
                let origin = FAILED_IN.with(|f| f.borrow_mut().take()).unwrap_or(first);
                self.locate(&origin, function, &error)
            }
        };
        (fallback, None, Some(failure))
    }

    /// Turns a Rhai error into a rule error at the innermost script position; an
    /// error without one (a limit) is placed at the line of the function that
    /// `origin`, the innermost failing script, defines.
    fn locate(&self, origin: &Script, function: &str, error: &EvalAltResult) -> RuleError {
        let mut source = origin.display();
        let mut current = error;
        while let EvalAltResult::ErrorInFunctionCall(_, src, inner, _) = current {
            if !src.is_empty() {
                source.clone_from(src);
            }
            current = inner;
        }
        let position = current.position();
        let message = match current {
            EvalAltResult::ErrorTooManyOperations(_) => format!(
                "stopped after {} operations (an endless loop?)",
                self.limits.operations
            ),
            EvalAltResult::ErrorStackOverflow(_) => {
                "too many nested calls (endless recursion?)".to_owned()
            }
            EvalAltResult::ErrorDataTooLarge(what, _) => {
                format!("{what} grew past its limit")
            }
            EvalAltResult::ErrorTerminated(token, _)
                if token.clone().into_string().ok().as_deref() == Some(sandbox::OUT_OF_TIME) =>
            {
                format!("took longer than {} ms", self.limits.time.as_millis())
            }
            other => {
                let text = other.to_string();
                let suffix = format!(" ({position})");
                text.strip_suffix(&suffix).unwrap_or(&text).to_owned()
            }
        };
        let fallback_line = origin.functions.get(function).map_or(0, |f| f.line);
        RuleError {
            file: source,
            line: position.line().unwrap_or(fallback_line),
            column: position.position().unwrap_or(1),
            function: function.to_owned(),
            message,
        }
    }

    /// Every registered function's signature and doc, for `palabre rules docs`.
    pub fn function_docs(&self) -> Vec<FunctionDoc> {
        check::function_docs(&self.engine)
    }
}

/// One registered function, as the reference shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionDoc {
    pub signature: String,
    pub doc: String,
}

/// The rule language reference (Markdown): layout, hooks, every function the
/// engine and `extensions` register, and the limits. `palabre rules docs` prints it.
pub fn reference(extensions: &[RuleFunction]) -> String {
    use std::fmt::Write as _;
    let rules = Rules::new(
        World::default(),
        extensions,
        Limits::default(),
        PathBuf::from(RULES_DIR),
    );
    let limits = rules.limits;
    let mut out = String::new();
    let _ = write!(
        out,
        "# palabre rule reference\n\n\
         Generated by `palabre rules docs`; a test keeps this file current.\n\n\
         ## Where rules live\n\n\
         Scripts are in `workflows/rules/`: `national.rhai`, then one per place named after\n\
         its path: `mopti.rhai` (region), `mopti/djenne.rhai` (cercle),\n\
         `mopti/djenne/djenne.rhai` (commune). A hook asked at a place is answered by the\n\
         most local script that defines its function; that function may call\n\
         `parent(input)` for the answer of the next script up, and above the national\n\
         script `parent` gives the built-in default. `palabre rules explain PLACE HOOK`\n\
         shows the chain. Only `fn` definitions belong in a script.\n\n\
         Rule tests are `*.test.yaml` files beside the scripts, run by `palabre test`\n\
         (see [Rule tests](#rule-tests) below).\n\n\
         ## Hooks\n\n\
         Each hook is a function of one argument, a map. Every meeting hook gets {COMMON_INPUT}.\n\
         What a hook returns is checked: a wrong shape is a rule error (script and line\n\
         in the ledger and in `palabre status`) and the default applies.\n"
    );
    for hook in &HOOKS {
        let _ = write!(
            out,
            "\n### `{name}(input)`\n\n\
             - **Asked** {when}.\n\
             - **Input**: {input}.\n\
             - **Returns** {returns}\n\
             - **Default**: {default}.\n\
             - A workflow may name another function for it: `rules: {{ {slot}: my_function }}`.\n",
            name = hook.name,
            when = hook.when,
            input = hook.input,
            returns = hook.returns,
            default = hook.default,
            slot = hook.slot,
        );
    }
    out.push_str(
        "\n## Functions\n\nBesides Rhai's own (strings, arrays, maps, arithmetic), rules can call:\n",
    );
    for function in rules.function_docs() {
        let _ = write!(out, "\n### `{}`\n\n{}\n", function.signature, function.doc);
    }
    let _ = write!(
        out,
        "\n## Limits\n\n\
         Every decision runs in a sandbox: at most {ops} operations, {calls} nested calls,\n\
         expressions {depth} deep ({fdepth} inside functions), strings of {string} bytes,\n\
         arrays of {array} items, maps of {map} entries, and {ms} ms of wall-clock time\n\
         (`parent()` calls included). There is no `eval`, no `import`, no clock, no file\n\
         and no network: a rule sees only its input and the functions above. A rule that\n\
         hits a limit fails; its hook's default applies and the ledger says why.\n",
        ops = limits.operations,
        calls = limits.call_levels,
        depth = limits.expression_depth,
        fdepth = limits.function_expression_depth,
        string = limits.string_bytes,
        array = limits.array_items,
        map = limits.map_entries,
        ms = limits.time.as_millis(),
    );
    out.push_str(RULE_TESTS_REFERENCE);
    out
}

/// The rule test format (`rule_tests`), as the reference documents it.
const RULE_TESTS_REFERENCE: &str = r#"
## Rule tests

A rule test, or *case*, asks one hook at one place with an input written by hand
and compares the decision with the one expected. Cases are YAML lists in
`*.test.yaml` files beside the scripts, named after the script they exercise:
`rules/mopti.test.yaml` beside `rules/mopti.rhai`,
`rules/mopti/djenne/djenne.test.yaml` beside `rules/mopti/djenne/djenne.rhai`.
A file's cases are asked at the place it is named after, unless a case names
another `place`; each case of `national.test.yaml` must name one. The hook is
answered as it is in service: by the most local script along the place that
defines it, `parent()` reaching up to the built-in default, so a case also checks
what the scripts above a place answer there.

`palabre test` runs every case file below the workflows folder's `rules/`;
`palabre test PATH` runs one case file, or those below a folder (`--workflows DIR`
for another workflows folder, which is checked first, as by `palabre validate`).

Each case is a map of these fields:

| field | | what |
|---|---|---|
| `name` | required | what the case checks; the report names the case by it, after its file and line |
| `hook` | required | the hook asked: `meeting_schedule`, `meeting_invitees`, `meeting_quorum`, `meeting_reminders`, `milestone_overdue`, `escalation_entry`, `escalation_deadlines` or `escalation_missed` |
| `function` | optional | the function asked instead of the hook's own name, as a workflow's `rules:` may name one |
| `place` | optional | where the hook is asked (a place path); default: the place the file is named after |
| `date` | required | the occurrence's local date, `YYYY-MM-DD` |
| `time` | optional | its local time, `"HH:MM"` in quotes; default `"09:00"` |
| `timezone` | optional | an IANA time zone; default `Africa/Bamako` |
| `now` | optional | the engine's clock, RFC 3339 in UTC (`2027-03-10T08:00:00Z`); default: seven days before the occurrence |
| `participants` | optional | the contacts the workflow's groups reach, for `meeting_invitees` and `meeting_quorum`: `{ id, name, roles, place, language, response }`, with `id` required, `place` defaulting to the case's place, `language` to `fra` and `response` (`yes`, `no` or `none`, what `meeting_quorum` counts) to `none`. They are also the directory `contacts_with_role` reads. |
| `input` | optional | fields merged into the hook's input over the common ones, maps key by key: what the milestone and escalation hooks read (`input: { milestone: { days_late: 20 } }`, `input: { dispute: { category: violence, severity: 4 } }`) |
| `expect` | optional | the decision expected, written as the rule returns it, in YAML: a map for `#{ ... }` (`{ skip: "reason" }`), a list for an array, `true`. `~`, or no `expect`, is `()`: hold the meeting, nobody extra, no extra reminder, the first level, the level's deadlines. The expected decision goes through the same check as a rule's answer, so a case cannot expect what no rule could return: that is an error at its `expect`. |
| `expect_error` | optional | instead of a decision, a text the rule's error must contain: the case passes when the rule fails with it |

An example, `rules/mopti/djenne/djenne.test.yaml`:

```yaml
# Cases for rules/mopti/djenne/djenne.rhai, asked at mopti/djenne/djenne.
- name: a meeting on market Monday moves to Tuesday, same time
  hook: meeting_schedule
  date: 2027-03-15
  time: "09:00"
  expect:
    move_to: "2027-03-16 09:00"
    reason: "Jour de foire à Djenné : la réunion a lieu le lendemain"

- name: a Tuesday meeting is held
  hook: meeting_schedule
  date: 2026-12-15
  expect: ~

- name: the national quorum holds here, with a majority and an official
  hook: meeting_quorum
  date: 2026-12-02
  participants:
    - { id: c-1, roles: [leader], response: "yes" }
    - { id: c-2, roles: [mayor], response: "yes" }
    - { id: c-3, roles: [leader], response: "no" }
  expect: { reached: true, reason: "2 confirmations sur 3, dont 1 de l'État" }

- name: violence goes straight to the prefect
  hook: escalation_entry
  date: 2026-12-02
  input: { dispute: { category: violence, severity: 2 } }
  expect: { level: prefet, reason: "violence ou gravité élevée : directement au préfet" }
```

`palabre test` reports like a test runner: `running N rule case(s)`, a line
`case FILE:LINE NAME ... ok` (or `FAILED`) per case, then for each failed case
what was expected and what came, with the script that answered (or the built-in
default), and last `test result: ok. N passed; 0 failed`, or `FAILED` with the
number of failed cases. A case file that cannot be read (a YAML mistake) is an
error at its position, and `test result: error` says how many there were. The
exit code is 0 when every case passed, 1 when a case failed or a file is broken,
2 for a usage or I/O error.
"#;
