//! Password policy and argon2id hashing, off the async executor with bounded concurrency and memory.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Once};

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier as _, Version,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::http::error::ApiError;
use crate::platform::metrics::HashInFlight;

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 128;

static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("common_passwords.txt").lines().collect());

/// Checks a new password against the policy: 8 to 128 characters, not only whitespace,
/// not a common password.
pub fn check_policy(password: &str) -> Result<(), String> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err(format!("must be at least {MIN_LEN} characters"));
    }
    if len > MAX_LEN {
        return Err(format!("must be at most {MAX_LEN} characters"));
    }
    if password.trim().is_empty() {
        return Err("must not be only whitespace".into());
    }
    if COMMON_PASSWORDS.contains(password.to_lowercase().as_str()) {
        return Err("is too common; choose a less guessable password".into());
    }
    Ok(())
}

/// The result of checking a password against a stored hash.
pub struct Verified {
    pub matches: bool,
    /// A fresh hash with the current parameters, when the stored one used others.
    pub rehashed: Option<String>,
}

/// Hashes and verifies passwords on blocking threads, a bounded number at a time.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// Verified against when the account does not exist, so timing reveals nothing.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    pub fn new(params: Params, concurrency: usize) -> anyhow::Result<PasswordHasher> {
        return_freed_memory_to_the_system();
        let dummy_hash = hash_blocking(&params, "not a real password, only for timing")?;
        Ok(PasswordHasher {
            params,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy_hash: dummy_hash.into(),
        })
    }

    pub async fn hash(&self, password: SecretString) -> Result<String, ApiError> {
        let params = self.params.clone();
        self.run(move || hash_blocking(&params, password.expose_secret()))
            .await
    }

    /// Verifies `password` against `stored`, or against a dummy hash when there is no account.
    pub async fn verify(
        &self,
        password: SecretString,
        stored: Option<String>,
    ) -> Result<Verified, ApiError> {
        let params = self.params.clone();
        let exists = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        self.run(move || {
            let parsed = PasswordHash::new(&stored)
                .map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
            let matches = argon2_with(&params)
                .verify_password(password.expose_secret().as_bytes(), &parsed)
                .is_ok()
                && exists;
            let current = Params::try_from(&parsed).ok();
            let outdated = current.as_ref().is_none_or(|p| {
                p.m_cost() != params.m_cost()
                    || p.t_cost() != params.t_cost()
                    || p.p_cost() != params.p_cost()
            }) || parsed.algorithm.as_str() != argon2::ARGON2ID_IDENT.as_str();
            let rehashed = if matches && outdated {
                Some(hash_blocking(&params, password.expose_secret())?)
            } else {
                None
            };
            Ok(Verified { matches, rehashed })
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, ApiError> {
        // The permit moves into the blocking job: if the request is dropped, the hash
        // still holds its slot until it really finishes.
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::Unavailable("shutting down".into()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _counted = HashInFlight::start();
            work()
        })
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(ApiError::Internal)
    }
}

fn argon2_with(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

/// Hashes on the calling thread; for the CLI, which has no executor to protect.
pub fn hash_blocking(params: &Params, password: &str) -> anyhow::Result<String> {
    argon2_with(params)
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
}

/// Each argon2 hash allocates its whole memory cost (19 MiB by default) and frees it.
/// glibc raises its mmap threshold after such a free and then keeps later buffers in
/// per-thread arenas, so a login storm would keep hundreds of MiB. A fixed threshold
/// makes every large buffer its own mapping, returned to the system when freed.
fn return_freed_memory_to_the_system() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only adjusts allocator tuning; it is called once, before hashing starts.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_rejects_short_long_and_common_passwords() {
        assert!(check_policy("short").is_err());
        assert!(check_policy(&"x".repeat(129)).is_err());
        assert!(check_policy("password").is_err());
        assert!(check_policy("PassWord").is_err());
        assert!(check_policy("correct horse battery staple").is_ok());
        assert!(check_policy(&"é".repeat(8)).is_ok());
        assert!(check_policy(&" ".repeat(12)).is_err());
        assert!(check_policy("\t\n \u{a0}\u{2003}   \t ").is_err());
        assert!(COMMON_PASSWORDS.len() > 3000);
    }

    #[tokio::test]
    async fn verify_accepts_the_right_password_and_rehashes_on_new_params() {
        let old = PasswordHasher::new(Params::new(1024, 1, 1, None).unwrap(), 2).unwrap();
        let hash = old
            .hash(SecretString::from("a fine password"))
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        let same = old
            .verify(SecretString::from("a fine password"), Some(hash.clone()))
            .await
            .unwrap();
        assert!(same.matches && same.rehashed.is_none());
        let wrong = old
            .verify(SecretString::from("another password"), Some(hash.clone()))
            .await
            .unwrap();
        assert!(!wrong.matches);

        let new = PasswordHasher::new(Params::new(2048, 2, 1, None).unwrap(), 2).unwrap();
        let upgraded = new
            .verify(SecretString::from("a fine password"), Some(hash))
            .await
            .unwrap();
        assert!(upgraded.matches);
        assert!(
            upgraded
                .rehashed
                .unwrap()
                .starts_with("$argon2id$v=19$m=2048,t=2,p=1$")
        );
        let nobody = new
            .verify(SecretString::from("a fine password"), None)
            .await
            .unwrap();
        assert!(!nobody.matches);
    }
}
