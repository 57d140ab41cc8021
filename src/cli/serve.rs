//! `palabre serve`: the engine at work until SIGINT or SIGTERM. Wires the
//! connectors (SMTP or `.eml` files, an SMS gateway or text files), the HTTP API
//! with the gateway's webhooks, the retry settings, the `--demo` meeting, the
//! shutdown signals, and the hot reload of the workflows folder into a runtime.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{DateTime, Datelike, Timelike, Utc};
use palabre_core::clock::{Clock, SystemClock};
use palabre_core::connector::{Connector, Connectors};
use palabre_core::diagnostic::Diagnostics;
use palabre_email::{EmailConnector, Security, SmtpConfig};
use palabre_engine::answer_links::AnswerLinkSigner;
use palabre_engine::runtime::{Runtime, RuntimeConfig};
use palabre_lang::files::{files_below, folder_fingerprint};
use palabre_plan::definitions::Definitions;
use palabre_sms::SmsOutbox;
use palabre_sms::gateways::SmsGatewayFile;
use palabre_sms::voice::VoiceGatewayFile;
use palabre_store::{DefinitionFile, Store};

use super::args::{ServeArgs, SmtpSecurity};
use super::context::{
    LOG_TARGET, RULE_EXTENSIONS, load_definitions, open_store, parse_directory, read_file, report,
};

/// Plans, fires and delivers until SIGINT or SIGTERM, answering the HTTP API and
/// taking up edits of the workflows folder meanwhile.
pub async fn run(mut args: ServeArgs) -> anyhow::Result<()> {
    if args.demo {
        keep_the_demo_apart(&mut args)?;
    }
    let fingerprint = folder_fingerprint(&args.sources.workflows);
    let store = open_store(&args.sources).await?;
    let mut definitions =
        definitions_in_force(&store, &args.sources.workflows, fingerprint).await?;
    let mut demo = None;
    if args.demo {
        let csv = Path::new("examples/directory.csv");
        let bytes = read_file(csv)?;
        let contacts = parse_directory(csv, &bytes, &definitions, &mut Diagnostics::default());
        store.upsert_contacts(&contacts).await?;
        let file = demo_workflow(SystemClock.now())?;
        report(definitions.add_workflow_file(&file))?;
        demo = Some(file);
        tracing::info!(
            target: LOG_TARGET,
            "demo: {} invented contacts imported into {DEMO_FOLDER}/palabre.db (the real database is not touched); \
             meeting 'demo' starts in 5 minutes, invitations in about a minute, written to {DEMO_FOLDER}/outbox/",
            contacts.len()
        );
    }
    let gateway = sms_gateway_file(&args)?;
    let mut connectors = connectors(&args, gateway.as_ref())?;
    let inbound_secret = std::env::var(&args.inbound_secret_env)
        .ok()
        .filter(|s| !s.is_empty());
    let voice = voice_gateway(&args, inbound_secret.as_deref())?;
    if let Some((connector, _)) = &voice {
        connectors = connectors.with(connector.clone());
    }
    let webhooks = palabre_sms::gateways::webhooks(gateway.as_ref().map(|g| &g.gateway))?;
    tracing::info!(
        target: LOG_TARGET,
        workflows = definitions.workflow_ids().count(),
        email = if args.smtp_host.is_some() { "smtp" } else { "file outbox" },
        sms = if args.sms_gateway.is_some() { "gateway" } else { "file outbox" },
        outbox = %args.outbox.display(),
        "palabre serving"
    );
    let mut config = RuntimeConfig::default();
    if args.retry_first_delay.seconds() <= 0 || args.retry_max_attempts < 1 {
        bail!("--retry-first-delay must be positive and --retry-max-attempts at least 1");
    }
    config.retry.first_delay = args.retry_first_delay.as_delta();
    config.retry.max_attempts = args.retry_max_attempts;
    if let Some(worker) = &args.worker {
        config.owner.clone_from(worker);
    }
    let signal = shutdown_signal()?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        signal.await;
        let _ = stop.send(true);
    });
    let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    // The demo's links point at its own API, for the coordinator to try them.
    let public_url = match (&args.public_url, args.demo && args.http != "off") {
        (Some(url), _) => Some(url.clone()),
        (None, true) => Some(format!("http://{}", args.http)),
        (None, false) => None,
    };
    let signer = match &public_url {
        Some(url) if !(url.starts_with("https://") || url.starts_with("http://")) => {
            anyhow::bail!(
                "--public-url '{url}': write the address people open, starting with https:// (or http://)"
            )
        }
        Some(url) => Some(AnswerLinkSigner::load(&store, url).await?),
        None => None,
    };
    let runtime = Arc::new(Runtime::new(
        store,
        definitions,
        connectors,
        Arc::new(SystemClock),
        config,
    ));
    // Texts past their keeping time (retention.yaml) go at start, then daily.
    let purger = runtime.commands().clone();
    tokio::spawn(async move {
        loop {
            match purger.purge_expired().await {
                Ok(done) if done != Default::default() => tracing::info!(
                    message_texts = done.message_texts,
                    ledger_details = done.ledger_details,
                    case_descriptions = done.case_descriptions,
                    "texts past their keeping time removed"
                ),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "removing expired texts failed; tried again tomorrow")
                }
            }
            tokio::time::sleep(std::time::Duration::from_secs(24 * 3600)).await;
        }
    });
    if let Some(signer) = signer {
        runtime.commands().set_answer_links(signer);
        tracing::info!(
            public_url = public_url.as_deref().unwrap_or_default(),
            "meeting emails carry answer links"
        );
    }
    if args.http != "off" {
        let listener = match tokio::net::TcpListener::bind(&args.http).await {
            Ok(listener) => listener,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => bail!(
                "the HTTP API's address {} is taken (another palabre serve on this machine?): \
                 give this worker another one (--http 127.0.0.1:8081) or none (--http off)",
                args.http
            ),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("listening on {} for the HTTP API", args.http));
            }
        };
        tracing::info!(
            target: LOG_TARGET,
            address = %listener.local_addr()?,
            "HTTP API listening"
        );
        let state = palabre_api::ApiState {
            commands: runtime.commands().clone(),
            inbound_secret,
            webhooks,
            voice: voice.map(|(_, calls)| calls),
        };
        let dashboard = palabre_web::DashboardConfig {
            secure_cookies: public_url
                .as_deref()
                .is_some_and(|url| url.starts_with("https://")),
        };
        if args.demo {
            demo_sign_in(runtime.store(), &listener.local_addr()?.to_string()).await?;
        }
        let api = palabre_api::serve_router(
            listener,
            palabre_web::app(state, dashboard),
            palabre_api::ServeConfig::default(),
            until_stopped(stopped.clone()),
        );
        tokio::spawn(async move {
            if let Err(error) = api.await {
                tracing::warn!(target: LOG_TARGET, %error, "the HTTP API stopped");
            }
        });
    }
    let reload_every = args.reload_every.as_delta().to_std().unwrap_or_default();
    let reload = reload_on_change(
        &runtime,
        &args.sources.workflows,
        demo.as_deref(),
        reload_every,
        fingerprint,
    );
    let ran = tokio::select! {
        result = runtime.run(until_stopped(stopped)) => result,
        () = reload => Ok(()),
    };
    // Closing writes what the WAL holds into the database file: after a stop,
    // palabre.db alone holds everything.
    runtime.store().close().await;
    ran?;
    tracing::info!(target: LOG_TARGET, "stopped");
    Ok(())
}

/// How long the demo's sign-in token lasts.
const DEMO_SIGN_IN_HOURS: i64 = 24;

/// A sign-in token for the demo's own database (administrator, national,
/// expiring), printed once on standard output for the coordinator trying the
/// dashboard; never logged. A real database gets its tokens from `palabre token create`.
async fn demo_sign_in(store: &Store, address: &str) -> anyhow::Result<()> {
    let now = SystemClock.now();
    let token = palabre_api::auth::create_token_expiring(
        store,
        palabre_api::auth::Role::Administrator,
        palabre_api::auth::NATIONAL,
        "demo dashboard sign-in",
        now,
        Some(now + chrono::TimeDelta::hours(DEMO_SIGN_IN_HOURS)),
    )
    .await?;
    println!(
        "\nTableau de bord / dashboard: http://{address}/\n\
         Jeton de connexion de la démo (valable {DEMO_SIGN_IN_HOURS} h, pour {DEMO_FOLDER}/palabre.db seulement):\n\
         demo sign-in token ({DEMO_SIGN_IN_HOURS} h, for {DEMO_FOLDER}/palabre.db only):\n  {token}\n"
    );
    Ok(())
}

/// The SMS gateway file `--sms-gateway` names, read and checked.
fn sms_gateway_file(args: &ServeArgs) -> anyhow::Result<Option<SmsGatewayFile>> {
    args.sms_gateway
        .as_ref()
        .map(|file| {
            palabre_lang::yaml::parse_file::<SmsGatewayFile>(file)
                .map(|parsed| parsed.value)
                .map_err(|d| anyhow::anyhow!("{d}"))
        })
        .transpose()
}

/// The connectors `serve` delivers through: SMTP if configured, else `.eml` files;
/// The voice gateway `--voice-gateway` names: the connector placing calls and
/// what the API answers the provider with.
fn voice_gateway(
    args: &ServeArgs,
    secret: Option<&str>,
) -> anyhow::Result<Option<(Arc<dyn Connector>, palabre_api::VoiceCalls)>> {
    let Some(file) = &args.voice_gateway else {
        return Ok(None);
    };
    let Some(secret) = secret else {
        bail!(
            "--voice-gateway needs the webhook secret in {}: the provider fetches each call's clips and posts its keys under it",
            args.inbound_secret_env
        );
    };
    let parsed = palabre_lang::yaml::parse_file::<VoiceGatewayFile>(file)
        .map_err(|d| anyhow::anyhow!("{d}"))?;
    let calling = parsed
        .value
        .gateway(secret)
        .with_context(|| format!("setting up the voice gateway of {}", file.display()))?;
    Ok(Some((
        calling.connector,
        palabre_api::VoiceCalls {
            gateway: calling.gateway,
            public_url: calling.public_url,
        },
    )))
}

/// SMS through the gateway if one is configured, else into the SMS outbox.
fn connectors(args: &ServeArgs, gateway: Option<&SmsGatewayFile>) -> anyhow::Result<Connectors> {
    let email = match &args.smtp_host {
        Some(host) => EmailConnector::smtp(&SmtpConfig {
            host: host.clone(),
            port: args.smtp_port,
            security: match args.smtp_security {
                SmtpSecurity::Starttls => Security::StartTls,
                SmtpSecurity::Tls => Security::Tls,
                SmtpSecurity::Plain => Security::Plain,
            },
            username: args.smtp_user.clone(),
            password: std::env::var(&args.smtp_password_env).ok(),
            from: args.from.clone(),
            timeout: std::time::Duration::from_secs(30),
            ca_certificate_pem: args
                .smtp_ca_file
                .as_ref()
                .map(|f| read_file(f))
                .transpose()?,
        })?,
        None => EmailConnector::files(args.outbox.clone(), &args.from)?,
    };
    let sms: Arc<dyn Connector> = match gateway {
        Some(file) => file.connector()?,
        None => Arc::new(SmsOutbox::new(args.outbox.join("sms"))?),
    };
    Ok(Connectors::default().with(Arc::new(email)).with(sms))
}

/// Where `serve --demo` keeps all it writes: its own database, outbox and demo
/// meeting, never the real ones.
const DEMO_FOLDER: &str = "demo";

/// Points the demo at its own database and outbox under [`DEMO_FOLDER`], whatever
/// `--db`, `--outbox` or their environment variables say, so that invented
/// people never reach a real database; and refuses a real SMTP server or SMS
/// gateway, which would send to the invented addresses and numbers, unless
/// asked for with `--demo-with-real-connectors`.
fn keep_the_demo_apart(args: &mut ServeArgs) -> anyhow::Result<()> {
    let real: Vec<&str> = [
        args.smtp_host
            .as_ref()
            .map(|_| "an SMTP server (--smtp-host, PALABRE_SMTP_HOST)"),
        args.sms_gateway
            .as_ref()
            .map(|_| "an SMS gateway (--sms-gateway, PALABRE_SMS_GATEWAY)"),
        args.voice_gateway
            .as_ref()
            .map(|_| "a voice gateway (--voice-gateway, PALABRE_VOICE_GATEWAY)"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !real.is_empty() && !args.demo_with_real_connectors {
        bail!(
            "serve --demo writes to invented people, into files under {DEMO_FOLDER}/; it will not \
             send through {}. Unset it for the demo, or add --demo-with-real-connectors to send \
             the demo's messages to the invented addresses and numbers of examples/directory.csv",
            real.join(" or ")
        );
    }
    std::fs::create_dir_all(DEMO_FOLDER)
        .with_context(|| format!("creating the demo's folder {DEMO_FOLDER}/"))?;
    args.sources.db = Some(format!("sqlite://{DEMO_FOLDER}/palabre.db"));
    let key = Path::new(DEMO_FOLDER).join("palabre.key");
    super::key::demo_key(&key)?;
    args.sources.key_file = Some(key);
    args.outbox = Path::new(DEMO_FOLDER).join("outbox");
    Ok(())
}

/// A meeting starting a few minutes from `now`, with steps one to four minutes
/// before, written to a file in the demo's folder so that it goes through the
/// same loader as any other.
fn demo_workflow(now: DateTime<Utc>) -> anyhow::Result<PathBuf> {
    let start = now + chrono::TimeDelta::minutes(5);
    let yaml = format!(
        "kind: meeting\nid: demo\ntitle: \"Démonstration palabre\"\nplace: mopti/mopti\n\
         recurrence: \"{} {} {} {} *\"\ntimezone: Africa/Bamako\nduration: 1h\nvenue: \"Salle de démonstration\"\n\
         recipients:\n  - role: leader\n  - role: mayor\n  - role: prefect\n\
         steps:\n  - {{ id: invitation, at: -4m, template: meeting-invitation, channels: [email, sms], calendar: true }}\n\
         \x20 - {{ id: reminder, at: -2m, template: meeting-reminder, channels: [sms, email] }}\n",
        // Bamako keeps UTC all year: the UTC fields are its local time.
        start.minute(),
        start.hour(),
        start.day(),
        start.month()
    );
    let file = Path::new(DEMO_FOLDER).join("demo-meeting.yaml");
    std::fs::write(&file, yaml)?;
    Ok(file)
}

/// The definitions to start on: the workflows folder when it is valid (its copy
/// kept in the database as the last good one), or else, loudly, the last good
/// copy: one broken file saved before a power cut must not stop every commune.
/// With no copy to fall back on (a first start), an invalid folder is refused.
async fn definitions_in_force(
    store: &Store,
    root: &Path,
    fingerprint: u64,
) -> anyhow::Result<Definitions> {
    if !root.is_dir() {
        // The same refusal as every command's.
        return load_definitions(root);
    }
    let (definitions, diagnostics) = Definitions::load(root, None, RULE_EXTENSIONS);
    let now = SystemClock.now();
    if !diagnostics.has_errors() {
        store
            .keep_valid_definitions(
                &format!("{fingerprint:016x}"),
                &definition_files(root)?,
                now,
            )
            .await?;
        report(diagnostics)?;
        return Ok(definitions);
    }
    let Some(copy) = store.valid_definitions().await? else {
        report(diagnostics)?;
        bail!("the workflows folder is invalid");
    };
    let problems = log_problems(&diagnostics);
    store.mark_definitions_invalid(&problems, now).await?;
    let folder = std::env::temp_dir().join(format!("palabre-last-good-{}", std::process::id()));
    for file in &copy.files {
        let path = folder.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, &file.text)?;
    }
    let (last_good, again) = Definitions::load(&folder, None, RULE_EXTENSIONS);
    let _ = std::fs::remove_dir_all(&folder);
    if again.has_errors() {
        report(diagnostics)?;
        bail!("the workflows folder is invalid, and so is its last good copy for this version");
    }
    tracing::warn!(
        target: LOG_TARGET,
        errors = diagnostics.error_count(),
        kept = %copy.taken.to_rfc3339(),
        "the workflows folder is invalid (see above): running on the last good definitions, \
         kept at that time; they are replaced as soon as the folder is valid again"
    );
    Ok(last_good)
}

/// Every definition file of the workflows folder, as text, for the last good copy.
fn definition_files(root: &Path) -> anyhow::Result<Vec<DefinitionFile>> {
    let mut diagnostics = Diagnostics::default();
    let mut files = Vec::new();
    for path in files_below(root, &["yaml", "yml", "rhai"], &mut diagnostics) {
        let relative = path.strip_prefix(root).unwrap_or(&path);
        files.push(DefinitionFile {
            path: relative.to_string_lossy().into_owned(),
            text: String::from_utf8_lossy(&read_file(&path)?).into_owned(),
        });
    }
    Ok(files)
}

/// Logs each error of `diagnostics` as a warning (the log stays one format,
/// text or JSON) and gives them as text, one per line, for `status`.
fn log_problems(diagnostics: &Diagnostics) -> String {
    let mut problems = Vec::new();
    for d in diagnostics.clone().sorted().iter().filter(|d| d.is_error()) {
        tracing::warn!(
            target: LOG_TARGET,
            file = %d.file.display(),
            line = d.position.line,
            column = d.position.column,
            problem = %d.message,
            "invalid definition"
        );
        problems.push(format!(
            "{}:{}:{}: {}",
            d.file.display(),
            d.position.line,
            d.position.column,
            d.message
        ));
    }
    problems.join("\n")
}

/// Reloads the definitions whenever a file of the workflows folder changes: a valid
/// new version replaces the running one, an invalid one is logged and ignored.
async fn reload_on_change(
    runtime: &Runtime,
    root: &Path,
    demo: Option<&Path>,
    every: std::time::Duration,
    mut known: u64,
) {
    if every.is_zero() {
        return std::future::pending().await;
    }
    loop {
        tokio::time::sleep(every).await;
        let fingerprint = folder_fingerprint(root);
        if fingerprint == known {
            continue;
        }
        known = fingerprint;
        let (mut loaded, mut diagnostics) = Definitions::load(root, None, RULE_EXTENSIONS);
        if let Some(demo) = demo {
            diagnostics.extend(loaded.add_workflow_file(demo));
        }
        if diagnostics.has_errors() {
            let problems = log_problems(&diagnostics);
            tracing::warn!(
                target: LOG_TARGET,
                "the edited definitions are invalid; the last good ones keep running"
            );
            if let Err(error) = runtime
                .store()
                .mark_definitions_invalid(&problems, SystemClock.now())
                .await
            {
                tracing::warn!(target: LOG_TARGET, %error, "could not record that the folder is invalid");
            }
        } else {
            match definition_files(root) {
                Ok(files) => {
                    if let Err(error) = runtime
                        .store()
                        .keep_valid_definitions(
                            &format!("{fingerprint:016x}"),
                            &files,
                            SystemClock.now(),
                        )
                        .await
                    {
                        tracing::warn!(target: LOG_TARGET, %error, "could not keep a copy of the definitions");
                    }
                }
                Err(error) => {
                    tracing::warn!(target: LOG_TARGET, %error, "could not keep a copy of the definitions");
                }
            }
            tracing::info!(
                target: LOG_TARGET,
                workflows = loaded.meetings.len(),
                rule_scripts = loaded.rules.scripts().count(),
                "definitions reloaded"
            );
            runtime.commands().replace_definitions(loaded);
        }
    }
}

/// A future that completes on SIGINT or SIGTERM. The handlers are installed now,
/// before the engine starts, so a signal that comes during the first tick is not
/// lost (nor does it kill the process outright).
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate =
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut interrupt =
            signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        Ok(async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            tracing::info!(
                target: LOG_TARGET,
                "shutting down: finishing the work in hand"
            );
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
