use std::os::unix::fs::PermissionsExt;

use chrono::{TimeZone, Utc};

use super::*;
use crate::secret::Secret;

fn tokens(n: u32) -> TokenSet {
    TokenSet {
        access_token: Secret::new(format!("at-{n}")),
        refresh_token: Some(Secret::new(format!("rt-{n}"))),
        expires_at: Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap(),
        scopes: vec!["offline_access".into(), "all".into()],
    }
}

fn user(id: &str) -> User {
    User {
        id: uid(id),
        status: UserStatus::Active,
        linked_at: Utc.with_ymd_and_hms(2024, 3, 1, 11, 0, 0).unwrap(),
        vendor: Some("TESLA".into()),
    }
}

#[test]
fn users_and_tokens_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Store::open(dir.path()).unwrap();
        s.save_linked_user(&user("u1"), &tokens(1)).unwrap();
        s.rotate_tokens(&uid("u1"), &tokens(2)).unwrap();
        s.set_status(&uid("u1"), UserStatus::NeedsRelink).unwrap();
    }
    let s = Store::open(dir.path()).unwrap();
    let u = s.user(&uid("u1")).unwrap().unwrap();
    assert_eq!(u.status, UserStatus::NeedsRelink);
    let t = s.tokens(&uid("u1")).unwrap().unwrap();
    assert_eq!(t.refresh_token.unwrap().expose(), "rt-2");
    assert_eq!(s.users().unwrap().len(), 1);
}

#[test]
fn rotation_for_unknown_user_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let e = s.rotate_tokens(&uid("ghost"), &tokens(1)).unwrap_err();
    assert!(matches!(e, StoreError::UnknownUser(_)), "{e}");
}

#[test]
fn remove_user_drops_its_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    s.save_linked_user(&user("u1"), &tokens(1)).unwrap();
    assert!(s.remove_user(&uid("u1")).unwrap());
    assert!(!s.remove_user(&uid("u1")).unwrap());
    assert!(s.tokens(&uid("u1")).unwrap().is_none());
}

#[test]
fn link_sessions_are_single_use_and_expire() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let t0 = Utc.with_ymd_and_hms(2024, 3, 1, 11, 0, 0).unwrap();
    let session = LinkSession {
        user_id: uid("u1"),
        vendor: None,
        pkce_verifier: Some(Secret::new("v")),
        created_at: t0,
        expires_at: t0 + chrono::TimeDelta::minutes(30),
    };
    s.put_link_session("state-a", &session).unwrap();
    s.put_link_session("state-b", &session).unwrap();
    assert_eq!(s.take_link_session("state-a").unwrap(), Some(session));
    assert_eq!(s.take_link_session("state-a").unwrap(), None);
    assert_eq!(
        s.purge_link_sessions(t0 + chrono::TimeDelta::hours(1))
            .unwrap(),
        1
    );
    assert_eq!(s.take_link_session("state-b").unwrap(), None);
}

#[test]
fn second_open_names_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let _s = Store::open(dir.path()).unwrap();
    let e = Store::open(dir.path()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("in use by pid {}", std::process::id())),
        "{msg}"
    );
}

#[test]
fn directory_is_private_and_files_are_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let s = Store::open(&path).unwrap();
    s.save_linked_user(&user("u1"), &tokens(1)).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o700);
    fn walk(p: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(p).unwrap() {
            let e = e.unwrap().path();
            if e.is_dir() {
                walk(&e, out);
            }
            out.push(e);
        }
    }
    let mut all = Vec::new();
    walk(&path, &mut all);
    assert!(!all.is_empty());
    for p in all {
        let want = if p.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&p), want, "{}", p.display());
    }
}

#[test]
fn new_store_is_stamped_and_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path().join("db")).unwrap();
    assert_eq!(migrate::version(&db).unwrap(), 0);
    migrate::run(&db, migrate::MIGRATIONS).unwrap();
    assert_eq!(migrate::version(&db).unwrap(), 1);
    db.open_tree("meta")
        .unwrap()
        .insert("schema_version", &7u32.to_be_bytes())
        .unwrap();
    let e = migrate::run(&db, migrate::MIGRATIONS).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::TooNew {
                found: 7,
                supported: 1
            }
        ),
        "{e}"
    );
}

#[test]
fn migrations_run_in_order_once_and_resume() {
    // A two-step chain as a future schema change would add it: step 1->2
    // renames a key in the users tree; running the chain twice is harmless.
    const STEPS: &[migrate::Migration] = &[
        migrate::Migration {
            from: 0,
            what: "stamp",
            apply: |_| Ok(()),
        },
        migrate::Migration {
            from: 1,
            what: "rename legacy key",
            apply: |db| {
                let t = db.open_tree("users")?;
                if let Some(v) = t.remove("legacy")? {
                    t.insert("renamed", v)?;
                }
                Ok(())
            },
        },
    ];
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path().join("db")).unwrap();
    migrate::run(&db, migrate::MIGRATIONS).unwrap();
    db.open_tree("users")
        .unwrap()
        .insert("legacy", "x")
        .unwrap();
    migrate::run(&db, STEPS).unwrap();
    assert_eq!(migrate::version(&db).unwrap(), 2);
    let users = db.open_tree("users").unwrap();
    assert_eq!(users.get("renamed").unwrap().as_deref(), Some(&b"x"[..]));
    assert!(users.get("legacy").unwrap().is_none());
    migrate::run(&db, STEPS).unwrap();
    assert_eq!(migrate::version(&db).unwrap(), 2);
}

#[tokio::test]
async fn grouped_rotations_are_durable_and_share_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let s = Store::open(&path).unwrap();
        for i in 0..8 {
            s.save_linked_user(&user(&format!("u{i}")), &tokens(0))
                .unwrap();
        }
        let before = s.flush_count();
        let set = tokio::task::LocalSet::new();
        set.run_until(async {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let s = s.clone();
                    tokio::task::spawn_local(async move {
                        let id = UserId::new(format!("u{i}")).unwrap();
                        s.rotate_tokens_grouped(&id, &tokens(i + 1)).await.unwrap();
                    })
                })
                .collect();
            for h in handles {
                h.await.unwrap();
            }
        })
        .await;
        // Eight rotations ready together: one flush covered them all.
        assert_eq!(s.flush_count() - before, 1);
        // A lone rotation flushes by itself.
        s.rotate_tokens_grouped(&uid("u0"), &tokens(9))
            .await
            .unwrap();
        assert_eq!(s.flush_count() - before, 2);
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(
        s.tokens(&uid("u0"))
            .unwrap()
            .unwrap()
            .refresh_token
            .unwrap()
            .expose(),
        "rt-9"
    );
    for i in 1..8u32 {
        let t = s
            .tokens(&UserId::new(format!("u{i}")).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(t.refresh_token.unwrap().expose(), format!("rt-{}", i + 1));
    }
}

fn uid(s: &str) -> UserId {
    UserId::new(s).unwrap()
}

#[test]
fn a_stored_user_with_an_invalid_id_is_skipped_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    s.save_linked_user(&user("good"), &tokens(1)).unwrap();
    // As an older version without the id grammar could have written it.
    let text = String::from_utf8(records::encode(&user("x"))).unwrap();
    let bad = text.replace("\"x\"", "\"../evil\\n\"");
    assert_ne!(bad, text);
    s.users.insert("../evil\n", bad.as_bytes()).unwrap();
    let users = s.users().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].id.as_str(), "good");
}

#[tokio::test]
async fn the_journal_is_pruned_to_its_retention() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let t0 = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
    for h in 0..10 {
        let entry = crate::store::JournalEntry {
            at: t0 + chrono::TimeDelta::hours(h),
            user: "u".into(),
            vehicle: "v".into(),
            action: "START".into(),
            reason: "block starts".into(),
            price: None,
            result: "ok".into(),
        };
        s.journal(&entry).await.unwrap();
    }
    assert_eq!(
        s.prune_journal(t0 + chrono::TimeDelta::hours(4)).unwrap(),
        4
    );
    let left = s.journal_entries().unwrap();
    assert_eq!(left.len(), 6);
    assert_eq!(left[0].at, t0 + chrono::TimeDelta::hours(4));
    assert_eq!(s.prune_journal(t0).unwrap(), 0);
}

#[test]
fn many_users_are_saved_with_one_flush() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Store::open(dir.path()).unwrap();
        let users: Vec<(User, TokenSet)> = (0..50)
            .map(|n| (user(&format!("u{n}")), tokens(n)))
            .collect();
        let before = s.flush_count();
        s.save_linked_users(users.iter().map(|(u, t)| (u, t)))
            .unwrap();
        assert_eq!(s.flush_count(), before + 1);
    }
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.users().unwrap().len(), 50);
    let t = s.tokens(&uid("u49")).unwrap().unwrap();
    assert_eq!(t.access_token.expose(), "at-49");
}

#[test]
fn active_users_come_with_their_tokens_in_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    for (i, id) in ["a", "b", "c", "d"].iter().enumerate() {
        s.save_linked_user(&user(id), &tokens(i as u32)).unwrap();
    }
    s.set_status(&uid("b"), UserStatus::NeedsRelink).unwrap();
    // A token record without its user (not written by the store, but a
    // merge of the two trees must step over it).
    s.tokens
        .insert("bb", s.tokens.get("a").unwrap().unwrap())
        .unwrap();
    // An active user without tokens (neither).
    s.users.insert("e", records::encode(&user("e"))).unwrap();
    let got: Vec<(String, String)> = s
        .active_users_with_tokens()
        .unwrap()
        .into_iter()
        .map(|(u, t)| (u.id.to_string(), t.access_token.expose().to_owned()))
        .collect();
    let want = [("a", "at-0"), ("c", "at-2"), ("d", "at-3")];
    assert_eq!(
        got,
        want.map(|(u, t)| (u.to_owned(), t.to_owned())).to_vec()
    );
}
