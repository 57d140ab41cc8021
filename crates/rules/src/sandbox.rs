//! The Rhai engine rules run in, and the limits that keep a rule from hurting the
//! process.
//!
//! The engine is built once per [`super::Rules`] from Rhai's raw engine plus the
//! packages a rule needs (arithmetic, logic, strings, arrays, maps, math): no
//! time package (rules read `now` from their input, never a clock), no module
//! resolver (no `import`), no `eval`. Every call is bounded in operations, call
//! depth, expression depth, string, array and map sizes, and wall-clock time; a
//! rule that exceeds any of them fails with an error, and its caller falls back
//! to the hook's documented default.

use std::cell::Cell;
use std::time::{Duration, Instant};

use rhai::packages::{
    BasicArrayPackage, BasicMapPackage, BasicMathPackage, CorePackage, LogicPackage,
    MoreStringPackage, Package,
};
use rhai::{Dynamic, Engine};

/// The limits every rule call runs under.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Rhai operations per call (a typical hook needs a few hundred).
    pub operations: u64,
    /// Nested function calls.
    pub call_levels: usize,
    /// Nesting of expressions, at top level and inside functions.
    pub expression_depth: usize,
    pub function_expression_depth: usize,
    /// Longest string, in bytes.
    pub string_bytes: usize,
    pub array_items: usize,
    pub map_entries: usize,
    /// Wall-clock time one decision may take, `parent()` calls included.
    pub time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            operations: 100_000,
            call_levels: 24,
            expression_depth: 64,
            function_expression_depth: 32,
            string_bytes: 16 * 1024,
            array_items: 10_000,
            map_entries: 1_000,
            time: Duration::from_millis(50),
        }
    }
}

thread_local! {
    /// When the decision being computed on this thread must stop. Rhai evaluates
    /// on the calling thread, so the deadline of the outermost call applies to
    /// everything it triggers, `parent()` included.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// How often (in operations) the wall clock is looked at.
const CLOCK_CHECK_EVERY: u64 = 256;

/// The marker a call stopped by its time budget ends with.
pub const OUT_OF_TIME: &str = "out of time";

/// Runs `call` with a time budget, unless a budget is already running on this thread.
pub fn with_deadline<T>(budget: Duration, call: impl FnOnce() -> T) -> T {
    let outermost = DEADLINE.with(|d| d.get().is_none());
    if outermost {
        DEADLINE.with(|d| d.set(Some(Instant::now() + budget)));
    }
    let result = call();
    if outermost {
        DEADLINE.with(|d| d.set(None));
    }
    result
}

/// A Rhai engine with the rule packages and every limit set; functions are added by the caller.
pub fn engine(limits: Limits) -> Engine {
    let mut engine = Engine::new_raw();
    for package in [
        CorePackage::new().as_shared_module(),
        LogicPackage::new().as_shared_module(),
        BasicMathPackage::new().as_shared_module(),
        BasicArrayPackage::new().as_shared_module(),
        BasicMapPackage::new().as_shared_module(),
        MoreStringPackage::new().as_shared_module(),
    ] {
        engine.register_global_module(package);
    }
    engine
        .set_max_operations(limits.operations)
        .set_max_call_levels(limits.call_levels)
        .set_max_expr_depths(limits.expression_depth, limits.function_expression_depth)
        .set_max_string_size(limits.string_bytes)
        .set_max_array_size(limits.array_items)
        .set_max_map_size(limits.map_entries)
        .set_strict_variables(true);
    for symbol in ["eval", "import", "export"] {
        engine.disable_symbol(symbol);
    }
    engine.on_progress(|operations| {
        if operations % CLOCK_CHECK_EVERY != 0 {
            return None;
        }
        let late = DEADLINE.with(|d| d.get().is_some_and(|at| Instant::now() > at));
        late.then(|| Dynamic::from(OUT_OF_TIME))
    });
    // A rule's print and debug output may hold personal data: debug level only.
    engine.on_print(|text| tracing::debug!(target: "palabre::rules", "{text}"));
    engine.on_debug(|text, source, position| {
        tracing::debug!(target: "palabre::rules", source, %position, "{text}");
    });
    engine
}
