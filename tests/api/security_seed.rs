//! `audiostudio seed`: new social tasks wait for review (issue 10, item 4), and demo users,
//! who share a published password, never land in a database with real accounts (item 10).

use std::path::Path;
use std::process::Output;

use crate::helpers::*;

fn seed(dir: &Path, args: &[&str]) -> Output {
    audiostudio_command(dir)
        .arg("seed")
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[rocket::async_test]
async fn seeded_social_tasks_wait_for_review_and_existing_tasks_are_left_alone() {
    let app = spawn_app().await;
    // A task an operator (or an older seed) set to pay at once.
    app.db()
        .execute(
            "INSERT INTO social_tasks (id, platform, action, title, reward_tokens, auto_approve, created_at)
             VALUES ('task_x_follow', 'x', 'follow', 'Follow us on X', 50, 1, 0)",
            [],
        )
        .unwrap();
    let out = seed(app.dir.path(), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let auto: Vec<String> =
        app.column("SELECT id FROM social_tasks WHERE auto_approve = 1 ORDER BY id");
    assert_eq!(auto, ["task_x_follow"]);
    let seeded = app.count("SELECT COUNT(*) FROM social_tasks");
    assert!(seeded >= 4, "{seeded}");
}

#[rocket::async_test]
async fn seed_demo_refuses_a_database_with_real_users() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;

    let out = seed(app.dir.path(), &["--demo", "--demo-users", "2"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("refusing"), "{stderr}");
    assert!(stderr.contains("1 account"), "{stderr}");
    assert!(!stderr.contains("ada@example.com"), "{stderr}");
    // Nothing was written: no demo users, no catalogue, no grants.
    assert_eq!(app.count("SELECT COUNT(*) FROM users"), 1);
    for table in [
        "subscription_plans",
        "token_packs",
        "social_tasks",
        "token_lots",
    ] {
        let rows = app.count(&format!("SELECT COUNT(*) FROM {table}"));
        assert_eq!(rows, 0, "{table}");
    }
}

#[rocket::async_test]
async fn seed_demo_fills_a_fresh_database_and_can_run_again() {
    let app = spawn_app().await;
    for _ in 0..2 {
        let out = seed(app.dir.path(), &["--demo", "--demo-users", "2"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let emails: Vec<String> = app.column("SELECT email FROM users ORDER BY email");
    assert_eq!(emails, ["demo1@example.com", "demo2@example.com"]);
}
