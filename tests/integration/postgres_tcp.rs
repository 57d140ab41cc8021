//! PostgreSQL reached over TCP answers without Nagle's stalls: sqlx 0.9.0 left
//! `TCP_NODELAY` off, and a statement larger than one TCP segment (a batch of
//! outbox or ledger rows) then waited ~40 ms for the server's delayed
//! acknowledgement. The workspace patches sqlx-core (vendor/README.md); this
//! test is what tells when the patch, or a released sqlx, is missing.
//!
//! It is not a speed target: without the fix a round trip takes 40 ms or more,
//! with it about one, and the bound sits far from both.

use std::time::{Duration, Instant};

use sqlx::Connection;

use crate::util;

#[tokio::test]
async fn a_batch_sent_over_tcp_takes_no_tens_of_milliseconds() {
    let Some(url) = util::postgres_url() else {
        return;
    };
    assert!(
        url.contains("127.0.0.1") || url.contains("localhost"),
        "PALABRE_TEST_POSTGRES_URL must reach the server over TCP: {url}"
    );
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    // The size of a batch the worker writes: some hundred kilobytes, several
    // TCP segments, whose last one Nagle's algorithm holds back.
    let batch = "x".repeat(200_000);
    let mut samples = Vec::new();
    for _ in 0..21 {
        let start = Instant::now();
        let (length,): (i32,) = sqlx::query_as("SELECT length($1)")
            .bind(&batch)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        samples.push(start.elapsed());
        assert_eq!(length, 200_000);
    }
    samples.sort();
    let median = samples[samples.len() / 2];
    eprintln!("a batch sent over TCP: {median:?} (median of 21)");
    assert!(
        median < Duration::from_millis(20),
        "a batch sent over TCP took {median:?} (median of 21 round trips): \
         TCP_NODELAY is off (see vendor/README.md)"
    );
}
