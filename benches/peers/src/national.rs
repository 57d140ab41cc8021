//! National scale: a generated map the size of Mali's (19 regions, 156 cercles,
//! 819 communes), a monthly dialogue in every commune, a reminders rule per
//! region and a market-day rule per commune, and a directory of invented
//! people (five per commune, reached by email at example.org). Then it times
//! `palabre validate` and `palabre preview --days 366` on it (the release
//! binary, as a coordinator runs them), and the worker's first planning pass
//! (time and memory) in this process.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use chrono::{TimeDelta, Utc};
use palabre_core::clock::VirtualClock;
use palabre_core::connector::Connectors;
use palabre_engine::runtime::{Runtime, RuntimeConfig};
use palabre_plan::definitions::Definitions;
use palabre_store::Store;

use crate::measure;

pub const REGIONS: usize = 19;
pub const CERCLES: usize = 156;
pub const COMMUNES: usize = 819;
const PEOPLE_PER_COMMUNE: usize = 5;
const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// `count` items spread over `groups` as evenly as can be: the sizes.
fn spread(count: usize, groups: usize) -> Vec<usize> {
    (0..groups)
        .map(|g| count / groups + usize::from(g < count % groups))
        .collect()
}

/// A commune's path and name.
struct Commune {
    path: String,
    name: String,
}

/// Writes the generated workflows folder and directory under `dir`; returns
/// the folder, the directory file and the communes.
fn generate(dir: &Path) -> (PathBuf, PathBuf, usize) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows");
    let root = dir.join("workflows");
    for sub in ["templates", "calendars", "meetings", "rules"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    for file in ["roles.yaml", "replies.yaml", "retention.yaml"] {
        std::fs::copy(repo.join(file), root.join(file)).unwrap();
    }
    for entry in std::fs::read_dir(repo.join("templates")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), root.join("templates").join(entry.file_name())).unwrap();
    }
    for file in ["holidays.yaml", "alerts.yaml"] {
        std::fs::copy(
            repo.join("calendars").join(file),
            root.join("calendars").join(file),
        )
        .unwrap();
    }
    std::fs::copy(
        repo.join("rules/national.rhai"),
        root.join("rules/national.rhai"),
    )
    .unwrap();

    let mut places = String::from(
        "version: \"bench\"\nsource: \"Carte générée pour la mesure : 19 régions, 156 cercles, 819 communes\"\nregions:\n",
    );
    let mut markets = String::from("markets:\n");
    let mut communes = Vec::new();
    let cercles_per_region = spread(CERCLES, REGIONS);
    let communes_per_cercle = spread(COMMUNES, CERCLES);
    let mut cercle_index = 0;
    for (r, &cercles) in cercles_per_region.iter().enumerate() {
        let region = format!("r{:02}", r + 1);
        writeln!(
            places,
            "  - id: {region}\n    name: Région {}\n    cercles:",
            r + 1
        )
        .unwrap();
        std::fs::create_dir_all(root.join("rules").join(&region)).unwrap();
        std::fs::write(
            root.join("rules").join(format!("{region}.rhai")),
            "// A region: one more SMS reminder three days before every meeting.\n\
             fn meeting_reminders(input) {\n    \
             parent(input) + [#{ at: \"-3d\", template: \"meeting-reminder\", channels: [\"sms\"] }]\n}\n",
        )
        .unwrap();
        for c in 0..cercles {
            let cercle = format!("c{:02}", c + 1);
            writeln!(
                places,
                "      - id: {cercle}\n        name: Cercle {}-{}\n        communes:",
                r + 1,
                c + 1
            )
            .unwrap();
            let rules_dir = root.join("rules").join(&region).join(&cercle);
            std::fs::create_dir_all(&rules_dir).unwrap();
            for k in 0..communes_per_cercle[cercle_index] {
                let id = format!("k{}", k + 1);
                let name = format!("Commune {}-{}-{}", r + 1, c + 1, k + 1);
                writeln!(places, "          - {{ id: {id}, name: \"{name}\" }}").unwrap();
                let path = format!("{region}/{cercle}/{id}");
                writeln!(
                    markets,
                    "  {path}: [{}]",
                    WEEKDAYS[communes.len() % WEEKDAYS.len()]
                )
                .unwrap();
                std::fs::write(
                    rules_dir.join(format!("{id}.rhai")),
                    format!(
                        "// {name}: a meeting on market day moves to the next day.\n\
                         fn meeting_schedule(input) {{\n    \
                         let decision = parent(input);\n    \
                         if type_of(decision) != \"()\" {{ return decision; }}\n    \
                         let date = input.occurrence.date;\n    \
                         if is_market_day(date, input.workflow.place) {{\n        \
                         return #{{ move_to: `${{add_days(date, 1)}} ${{input.occurrence.time}}`, \
                         reason: \"Jour de foire : la réunion a lieu le lendemain\" }};\n    \
                         }}\n    ()\n}}\n"
                    ),
                )
                .unwrap();
                communes.push(Commune { path, name });
            }
            cercle_index += 1;
        }
    }
    std::fs::write(root.join("places.yaml"), places).unwrap();
    std::fs::write(root.join("calendars/markets.yaml"), markets).unwrap();

    let mut directory = String::from("id,name,roles,place,phone,email,language,channels\n");
    for (i, commune) in communes.iter().enumerate() {
        let id = format!("commune-{:03}", i + 1);
        std::fs::write(
            root.join("meetings").join(format!("{id}.yaml")),
            format!(
                "kind: meeting\nid: {id}\ntitle: \"Dialogue communal de {name}\"\nplace: {path}\n\
                 recurrence: \"0 9 15 * *\"\ntimezone: Africa/Bamako\nduration: 3h\n\
                 venue: \"Mairie de {name}\"\nrecipients:\n  - role: leader\n  - role: mayor\n\
                 steps:\n  - {{ id: invitation, at: -7d, template: meeting-invitation, channels: [email], calendar: true }}\n\
                 \x20 - {{ id: reminder-1d, at: -1d, template: meeting-reminder, channels: [email] }}\n",
                name = commune.name,
                path = commune.path,
            ),
        )
        .unwrap();
        for p in 0..PEOPLE_PER_COMMUNE {
            let role = if p == 0 { "mayor" } else { "leader" };
            let n = i * PEOPLE_PER_COMMUNE + p + 1;
            writeln!(
                directory,
                "p-{n:05},Personne {n:05},{role},{},,p{n:05}@example.org,fra,email",
                commune.path
            )
            .unwrap();
        }
    }
    let directory_file = dir.join("directory.csv");
    std::fs::write(&directory_file, directory).unwrap();
    (root, directory_file, communes.len())
}

/// Runs the palabre binary with `args`, its output going to a file as a
/// coordinator's would (`> plan.json`); the wall time, what it printed and
/// what it said on standard error (warnings, verdicts).
fn timed(palabre: &Path, dir: &Path, args: &[&str]) -> (f64, String, String) {
    let printed = dir.join("printed.txt");
    let start = Instant::now();
    let output = Command::new(palabre)
        .current_dir(dir)
        .args(args)
        .stdout(std::fs::File::create(&printed).unwrap())
        .output()
        .unwrap();
    let seconds = start.elapsed().as_secs_f64();
    assert!(
        output.status.code().is_some_and(|c| c <= 1),
        "palabre {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let said = String::from_utf8_lossy(&output.stderr).into_owned();
    (seconds, std::fs::read_to_string(&printed).unwrap(), said)
}

/// Generates the map in `keep` (kept after) or in a temporary folder, and measures.
pub async fn run(palabre: &Path, keep: Option<&Path>) {
    let temporary = tempfile::tempdir().unwrap();
    let dir = keep.unwrap_or(temporary.path());
    let (workflows, directory, communes) = generate(dir);
    println!(
        "\n## National scale: {REGIONS} regions, {CERCLES} cercles, {communes} communes, \
         a monthly meeting and a market rule each, {} people\n",
        communes * PEOPLE_PER_COMMUNE
    );
    let workflows_arg = workflows.display().to_string();
    let directory_arg = directory.display().to_string();
    let (validate, _, said) = timed(palabre, dir, &["validate", "--workflows", &workflows_arg]);
    let verdict = said.lines().last().unwrap_or_default().to_owned();
    println!("| command | wall time (s) |\n|---|---|");
    println!("| `palabre validate` | {validate:.2} |");
    let (preview, listed, _) = timed(
        palabre,
        dir,
        &[
            "preview",
            "--workflows",
            &workflows_arg,
            "--directory",
            &directory_arg,
            "--from",
            "2027-01-01",
            "--days",
            "366",
            "--format",
            "json",
        ],
    );
    let fires = serde_json::from_str::<serde_json::Value>(&listed)
        .ok()
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or_default();
    println!("| `palabre preview --days 366` | {preview:.2} |");
    println!("\nvalidate said: {verdict}; preview listed {fires} messages");

    // The worker's first planning pass over the whole map, on a fresh SQLite file.
    let (definitions, diagnostics) =
        Definitions::load(&workflows, None, palabre_sms::RULE_FUNCTIONS);
    assert!(!diagnostics.has_errors(), "{:?}", diagnostics.sorted());
    let db = dir.join("national.db");
    for file in [
        db.clone(),
        db.with_extension("db-wal"),
        db.with_extension("db-shm"),
    ] {
        // A kept folder holds the last run's database: start from none.
        let _ = std::fs::remove_file(file);
    }
    let url = format!("sqlite://{}", db.display());
    let store = Store::connect(&url, &palabre_store::Key::from_bytes([7; 32]))
        .await
        .unwrap();
    let rules = palabre_lang::contacts::DirectoryRules {
        places: &definitions.places,
        roles: &definitions.roles,
    };
    let contacts = palabre_lang::contacts::parse_csv(
        &directory,
        &std::fs::read(&directory).unwrap(),
        &rules,
        &mut Default::default(),
    );
    store.upsert_contacts(&contacts).await.unwrap();
    let runtime = Runtime::new(
        store,
        definitions,
        Connectors::default(),
        Arc::new(VirtualClock::new(Utc::now())),
        RuntimeConfig {
            owner: "bench".into(),
            horizon: TimeDelta::days(40),
            ..RuntimeConfig::default()
        },
    );
    let start = Instant::now();
    let mut planned = 0;
    let mut ticks = 0;
    loop {
        let report = runtime.tick().await.unwrap();
        planned += report.planned;
        ticks += 1;
        if report.planning_behind == 0 {
            break;
        }
    }
    println!(
        "\nserve's first planning pass (40-day horizon): {planned} timers in {:.2} s over {ticks} tick(s), RSS {:.0} MiB",
        start.elapsed().as_secs_f64(),
        measure::resident_mib()
    );
}
