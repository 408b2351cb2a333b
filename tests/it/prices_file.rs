//! The `file` source: the shared CSV format, consumer CSV, JSON, and
//! re-reading when the file changes.

use std::time::Duration;

use chrono::{DateTime, Utc};
use smartcharged::prices::file::FileSource;
use smartcharged::prices::{Basis, PriceSource, SourceError};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[tokio::test]
async fn reads_the_shared_day_ahead_csv() {
    let path = format!(
        "{}/tests/data/prices/DE-LU-2024-10-05_07.csv",
        env!("CARGO_MANIFEST_DIR")
    );
    let src = FileSource::new(&path, "EUR", Duration::from_secs(60));
    let q = src
        .fetch(t("2024-10-05T22:00:00Z"), t("2024-10-06T22:00:00Z"))
        .await
        .unwrap();
    assert_eq!((q.basis, q.slots.len()), (Basis::SpotPerMwh, 24));
    assert_eq!(q.slots[14].start, t("2024-10-06T12:00:00Z"));
    assert_eq!(q.slots[14].price, -0.01);
    assert_eq!(src.poll_every(), Some(Duration::from_secs(60)));
}

#[tokio::test]
async fn re_reads_when_the_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prices.csv");
    std::fs::write(
        &path,
        "start,end,price_per_kwh\n2024-06-14T10:00:00Z,2024-06-14T10:30:00Z,0.31\n",
    )
    .unwrap();
    let src = FileSource::new(&path, "EUR", Duration::from_secs(60));
    let (from, to) = (t("2024-06-14T00:00:00Z"), t("2024-06-15T00:00:00Z"));
    let q = src.fetch(from, to).await.unwrap();
    assert_eq!(
        (q.basis, q.slots.len(), q.slots[0].price),
        (Basis::ConsumerPerKwh, 1, 0.31)
    );
    std::fs::write(
        &path,
        "start,end,price_per_kwh\n2024-06-14T10:00:00Z,2024-06-14T10:30:00Z,0.29\n2024-06-14T10:30:00Z,2024-06-14T11:30:00Z,0.12\n",
    )
    .unwrap();
    let q = src.fetch(from, to).await.unwrap();
    assert_eq!(
        q.slots.iter().map(|s| s.price).collect::<Vec<_>>(),
        vec![0.29, 0.12]
    );
    // JSON, with overlapping slots refused.
    let json = dir.path().join("prices.json");
    std::fs::write(
        &json,
        r#"{"basis":"spot_per_mwh","currency":"EUR","slots":[
        {"start":"2024-06-14T10:00:00Z","end":"2024-06-14T11:00:00Z","price":80.5},
        {"start":"2024-06-14T10:30:00Z","end":"2024-06-14T11:30:00Z","price":70.0}]}"#,
    )
    .unwrap();
    let e = FileSource::new(&json, "EUR", Duration::from_secs(60))
        .fetch(from, to)
        .await
        .unwrap_err();
    assert!(
        matches!(e, SourceError::Malformed(ref m) if m.contains("overlap")),
        "{e}"
    );
    let e = FileSource::new(dir.path().join("none.csv"), "EUR", Duration::from_secs(60))
        .fetch(from, to)
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("cannot read "), "{e}");
}
