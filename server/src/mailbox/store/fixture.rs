//! A fresh store on a fresh site database for the store's unit tests (SQLite, or
//! PostgreSQL with `MAILSITE_TEST_POSTGRES=1`), and test messages to put in it.

use std::path::PathBuf;
use std::sync::Arc;

use mailsite_shared::SiteConfig;

use super::Store;
use crate::directory::Directory;

pub(super) async fn store() -> (Store, PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "mailsite-store-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let mut config = SiteConfig::embedded();
    config.data_dir = dir.clone();
    // The same tests run on PostgreSQL (a fresh database each) with MAILSITE_TEST_POSTGRES=1.
    config.database = crate::test_postgres::database_for_test();
    let directory = Directory::open(&Arc::new(config)).await.unwrap();
    (Store::new(dir.join("mail"), directory.pool().clone()), dir)
}

pub(super) fn msg(n: u32) -> Vec<u8> {
    format!("From: a@example.test\r\nSubject: {n}\r\n\r\nbody {n}\r\n").into_bytes()
}
