//! `audiostudio check`: verify the money invariants for every user.

use std::io::Write;
use std::process::ExitCode;

use super::Cli;
use crate::platform::db::DbError;
use crate::tokens::ops;

pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let (users, mismatches) = cli
        .db()?
        .read_blocking(|c| Ok::<_, DbError>(ops::check(c)?))?;
    if mismatches.is_empty() {
        writeln!(
            std::io::stdout(),
            "ledger consistent: {users} users; balance == ledger == lots and held == open holds for each"
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut err = std::io::stderr().lock();
    for m in &mismatches {
        writeln!(
            err,
            "MISMATCH {} ({}): cached balance {}, ledger sum {}, lots remaining {}, last balance_after {:?}, cached held {}, open holds {}, lifetime earned {} (ledger {}), lifetime spent {} (ledger {})",
            m.email,
            m.user_id,
            m.cached_balance,
            m.ledger_sum,
            m.lots_remaining,
            m.last_balance_after,
            m.cached_held,
            m.open_holds,
            m.cached_earned,
            m.ledger_earned,
            m.cached_spent,
            m.ledger_spent
        )?;
    }
    writeln!(err, "{} of {users} users inconsistent", mismatches.len())?;
    Ok(ExitCode::from(2))
}
