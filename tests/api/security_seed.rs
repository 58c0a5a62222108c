//! `audiostudio seed`: new social tasks wait for review (issue 10, item 4).

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
